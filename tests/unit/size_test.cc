#include "daxstore/size.h"

#include <gtest/gtest.h>

namespace daxstore {
namespace {

TEST(ParseSize, AcceptsBytesAndBinarySuffixes) {
  EXPECT_EQ(*ParseSize("4096"), 4096u);
  EXPECT_EQ(*ParseSize("4k"), 4096u);
  EXPECT_EQ(*ParseSize("4K"), 4096u);
  EXPECT_EQ(*ParseSize("512m"), 512ull << 20);
  EXPECT_EQ(*ParseSize("1536M"), 1536ull << 20);
  EXPECT_EQ(*ParseSize("1.5G"), 3ull << 29);
  EXPECT_EQ(*ParseSize("2TiB"), 2ull << 40);
  EXPECT_EQ(*ParseSize("3gb"), 3ull << 30);
  EXPECT_EQ(*ParseSize("10b"), 10u);
}

TEST(ParseSize, RejectsMalformedInputWithAHint) {
  for (const char* bad : {"", "1.5x", "-5G", "G", "1.3", "12 34", "1kk",
                          "99999999999999999999", "16777216T", "1.0000001k"}) {
    auto r = ParseSize(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().kind(), ErrorKind::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find("e.g. 4096, 512m or 1.5g"),
              std::string::npos)
        << r.status().message();
  }
  EXPECT_NE(ParseSize("-5G").status().message().find("negative"),
            std::string::npos);
}

TEST(FormatSizeHuman, MatchesNdctlUnits) {
  EXPECT_EQ(FormatSizeHuman(512), "512 B");
  EXPECT_EQ(FormatSizeHuman(4096), "4.00 KiB");
  EXPECT_EQ(FormatSizeHuman(1006ull << 20), "1006.00 MiB");
  EXPECT_EQ(FormatSizeHuman((1021ull << 20) + (97ull << 20) / 100),
            "1021.97 MiB");
  EXPECT_EQ(FormatSizeHuman(1ull << 30), "1.00 GiB");
}

}  // namespace
}  // namespace daxstore
