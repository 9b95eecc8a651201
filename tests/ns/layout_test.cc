// The size model against the numbers a real kernel gives (KERNEL-TIER.md),
// size requests, and the messages for sizes that do not fit.
#include "ns/layout.h"

#include <gtest/gtest.h>

#include "daxstore/size.h"
#include "ns/names.h"

namespace daxstore::ns {
namespace {

TEST(UsableSize, MatchesTheKernelOnOneGiB) {
  // fsdax/devdax map=dev align 2M: 1006 MiB of 1 GiB.
  EXPECT_EQ(
      UsableSize(NamespaceMode::kFsdax, MapLocation::kDev, kGiB, 2 * kMiB, 512),
      1006 * kMiB);
  EXPECT_EQ(
      UsableSize(NamespaceMode::kDevdax, MapLocation::kDev, kGiB, 2 * kMiB, 0),
      1006 * kMiB);
  EXPECT_EQ(
      UsableSize(NamespaceMode::kFsdax, MapLocation::kMem, kGiB, 2 * kMiB, 512),
      1022 * kMiB);
  // sector, 4096-byte sectors: "1021.97 MiB".
  uint64_t sector =
      UsableSize(NamespaceMode::kSector, MapLocation::kDev, kGiB, 0, 4096);
  EXPECT_EQ(sector, 261624ull * 4096);
  EXPECT_EQ(FormatSizeHuman(sector), "1021.97 MiB");
  // Measured: the guest kernel's BTT on a 256 MiB namespace.
  EXPECT_EQ(BttUsableSize(256 * kMiB, 4096), 267091968u);
  EXPECT_EQ(UsableSize(NamespaceMode::kRaw, MapLocation::kDev, kGiB, 0, 512),
            kGiB);
}

// Measured in the guest: 4 KiB pages still reserve a multiple of 2 MiB.
TEST(UsableSize, SmallPagesReserveWholeTwoMiBUnits) {
  EXPECT_EQ(UsableSize(NamespaceMode::kDevdax, MapLocation::kDev, 256 * kMiB,
                       4096, 0),
            250 * kMiB);
  EXPECT_EQ(UsableSize(NamespaceMode::kFsdax, MapLocation::kMem, 256 * kMiB,
                       4096, 512),
            254 * kMiB);
}

TEST(UsableSize, TooSmallGivesZero) {
  EXPECT_EQ(
      UsableSize(NamespaceMode::kDevdax, MapLocation::kDev, kGiB, kGiB, 0), 0u);
  EXPECT_EQ(BttUsableSize(8 * kMiB, 4096), 0u);
}

TEST(SizeRequest, ParsesPercentBytesAndAll) {
  auto all = ParseSizeRequest("");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->kind, SizeRequest::Kind::kAll);
  auto pct = ParseSizeRequest("50%");
  ASSERT_TRUE(pct.ok());
  EXPECT_EQ(pct->kind, SizeRequest::Kind::kPercent);
  EXPECT_EQ(pct->value, 50u);
  auto bytes = ParseSizeRequest("1536M");
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(bytes->value, 1536 * kMiB);
  for (const char* bad : {"1.5x", "-5G", "0", "150%", "0%", "x%", "1.5%"}) {
    auto r = ParseSizeRequest(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().kind(), ErrorKind::kInvalidArgument) << bad;
  }
}

Region TwoWayRegion() {
  Region r;
  r.dev = "region0";
  r.size = 2 * kGiB;
  r.align = 16 * kMiB;
  r.mappings = {{"nmem0", 0, kGiB, 0}, {"nmem1", 0, kGiB, 1}};
  r.available_size = 1536 * kMiB;
  r.max_available_extent = kGiB;
  return r;
}

TEST(ResolveSize, MisalignedSizeNamesTheNearestValidOnes) {
  Region r = TwoWayRegion();
  uint64_t g = SizeGranule(r, 2 * kMiB);
  EXPECT_EQ(g, 32 * kMiB);
  auto s = ResolveSize(r, {SizeRequest::Kind::kBytes, 100 * kMiB}, g);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("try --size 96M or --size 128M"),
            std::string::npos)
      << s.status().message();
  EXPECT_NE(s.status().message().find("2 interleave ways"), std::string::npos);
}

TEST(ResolveSize, ExplainsTheLargestExtent) {
  Region r = TwoWayRegion();
  auto s = ResolveSize(r, {SizeRequest::Kind::kBytes, 1280 * kMiB}, 32 * kMiB);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().kind(), ErrorKind::kNoSpace);
  EXPECT_NE(s.status().message().find("largest free extent is 1G"),
            std::string::npos)
      << s.status().message();
  s = ResolveSize(r, {SizeRequest::Kind::kBytes, 2 * kGiB}, 32 * kMiB);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("1536M available"), std::string::npos);
}

TEST(ResolveSize, PercentAndAll) {
  Region r = TwoWayRegion();
  auto half = ResolveSize(r, {SizeRequest::Kind::kPercent, 50}, 32 * kMiB);
  ASSERT_TRUE(half.ok());
  EXPECT_EQ(*half, 768 * kMiB);
  auto all = ResolveSize(r, {}, 32 * kMiB);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, kGiB);  // the largest extent
}

TEST(NormalizeRequest, DefaultsAndRejections) {
  CreateRequest r;
  r.mode = NamespaceMode::kFsdax;
  ASSERT_TRUE(NormalizeRequest(r).ok());
  EXPECT_EQ(r.align, 2 * kMiB);
  EXPECT_EQ(r.sector_size, 512u);
  EXPECT_EQ(*r.map, MapLocation::kDev);

  CreateRequest bad_align;
  bad_align.align = 3 * kMiB;
  EXPECT_FALSE(NormalizeRequest(bad_align).ok());
  CreateRequest long_name;
  long_name.name = std::string(64, 'n');
  auto st = NormalizeRequest(long_name);
  EXPECT_NE(st.message().find("at most 63 bytes"), std::string::npos);
  CreateRequest ok_name;
  ok_name.name = std::string(63, 'n');
  EXPECT_TRUE(NormalizeRequest(ok_name).ok());
  CreateRequest bad_uuid;
  bad_uuid.uuid = "not-a-uuid";
  EXPECT_FALSE(NormalizeRequest(bad_uuid).ok());
  CreateRequest sector_align;
  sector_align.mode = NamespaceMode::kSector;
  sector_align.align = 2 * kMiB;
  EXPECT_FALSE(NormalizeRequest(sector_align).ok());
}

TEST(Names, OldKernelModeNamesAndDeviceNames) {
  EXPECT_EQ(*ParseNamespaceMode("memory"), NamespaceMode::kFsdax);
  EXPECT_EQ(*ParseNamespaceMode("dax"), NamespaceMode::kDevdax);
  EXPECT_EQ(*ParseNamespaceMode("safe"), NamespaceMode::kSector);
  EXPECT_FALSE(ParseNamespaceMode("blk").ok());
  EXPECT_EQ(BlockDevName(0, 0, NamespaceMode::kFsdax), "pmem0");
  EXPECT_EQ(BlockDevName(1, 2, NamespaceMode::kSector), "pmem1.2s");
  EXPECT_EQ(DaxDevName(0, 1), "dax0.1");
  int r, i;
  EXPECT_TRUE(ParseNamespaceName("namespace3.1", &r, &i));
  EXPECT_EQ(r, 3);
  EXPECT_EQ(i, 1);
  EXPECT_EQ(ParseRegionName("region2"), 2);
  EXPECT_EQ(ParseRegionName("2"), 2);
  EXPECT_EQ(ParseRegionName("regionx"), -1);
  EXPECT_TRUE(ValidUuid(NewUuid()));
}

}  // namespace
}  // namespace daxstore::ns
