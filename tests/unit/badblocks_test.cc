// Bad blocks on emulated pmem, and reads of poisoned memory that return an
// error instead of killing the process.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "daxstore/mapping.h"
#include "map/impl.h"
#include "testing/temp_dir.h"

namespace daxstore {
namespace {

using testing::TempDir;
using testing::WriteText;

Mapping OpenEmulated(const std::string& path, uint64_t size) {
  MapOptions o;
  o.create_size = size;
  o.emulate = PersistenceDomain::kMemoryController;
  auto m = Mapping::Open(path, o);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return std::move(m).value();
}

TEST(BadBlocks, EmulatedPoisonIsListedAndReadsFail) {
  TempDir d;
  std::string path = d / "ns.img";
  { OpenEmulated(path, 1 << 20); }
  WriteText(path + ".badblocks", "# offset length\n8192 512\n2097152 4096\n");
  Mapping m = OpenEmulated(path, 1 << 20);
  auto bad = m.BadBlocks();
  ASSERT_TRUE(bad.ok());
  // The second range lies beyond the mapping and is not reported.
  EXPECT_EQ(*bad, (std::vector<ByteRange>{{8192, 512}}));

  char buf[1024];
  Status s = m.Read(8000, buf, 300);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.kind(), ErrorKind::kIoError);
  EXPECT_NE(s.message().find("media error at offset 8192"), std::string::npos)
      << s.message();
  EXPECT_TRUE(m.Read(0, buf, 1024).ok());
  EXPECT_TRUE(m.Read(8192 + 512, buf, 1024).ok());
}

TEST(BadBlocks, ClearingZeroesTheRangeAndForgetsIt) {
  TempDir d;
  std::string path = d / "ns.img";
  {
    Mapping m = OpenEmulated(path, 1 << 20);
    m.MemsetPersist(m.data(), 0xee, 1 << 20);
  }
  WriteText(path + ".badblocks", "4096 8192\n");
  Mapping m = OpenEmulated(path, 1 << 20);
  // Clearing the middle leaves two pieces.
  ASSERT_TRUE(m.ClearBadBlock({6144, 2048}).ok());
  EXPECT_EQ(*m.BadBlocks(),
            (std::vector<ByteRange>{{4096, 2048}, {8192, 4096}}));
  std::vector<uint8_t> buf(2048);
  ASSERT_TRUE(m.Read(6144, buf.data(), buf.size()).ok());
  EXPECT_EQ(std::count(buf.begin(), buf.end(), 0), 2048);
  EXPECT_EQ(m.bytes()[6143], 0xee);  // outside the cleared range: untouched
  ASSERT_TRUE(m.ClearBadBlock({4096, 2048}).ok());
  ASSERT_TRUE(m.ClearBadBlock({8192, 4096}).ok());
  EXPECT_TRUE(m.BadBlocks()->empty());
  EXPECT_FALSE(std::filesystem::exists(path + ".badblocks"));
  // A reopen sees the same: nothing bad.
  Mapping again = OpenEmulated(path, 1 << 20);
  EXPECT_TRUE(again.BadBlocks()->empty());
}

TEST(BadBlocks, MalformedListIsACorruptionError) {
  TempDir d;
  std::string path = d / "ns.img";
  { OpenEmulated(path, 4096); }
  WriteText(path + ".badblocks", "12 zero\n");
  MapOptions o;
  o.emulate = PersistenceDomain::kMemoryController;
  auto m = Mapping::Open(path, o);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().kind(), ErrorKind::kCorruption);
  EXPECT_NE(m.status().message().find(".badblocks:1"), std::string::npos);
}

TEST(BadBlocks, RangesOutsideTheMappingAreRefused) {
  TempDir d;
  Mapping m = OpenEmulated(d / "ns.img", 4096);
  char c;
  EXPECT_EQ(m.Read(4096, &c, 1).kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(m.Read(UINT64_MAX, &c, 2).kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(m.ClearBadBlock({4000, 200}).kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(m.ClearBadBlock({0, 0}).kind(), ErrorKind::kInvalidArgument);
}

TEST(BadBlocks, PageCacheFilesHaveNone) {
  TempDir d;
  MapOptions o;
  o.create_size = 4096;
  auto m = Mapping::Open(d / "plain", o);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->BadBlocks()->empty());
  EXPECT_EQ(m->ClearBadBlock({0, 512}).kind(), ErrorKind::kUnsupported);
}

TEST(PoisonedRead, SigbusBecomesAnErrorNotACrash) {
  // A mapping past the end of its file raises SIGBUS on access, exactly as
  // poisoned pmem does.
  TempDir d;
  std::string path = d / "short";
  MapOptions o;
  o.create_size = 3 * 4096;
  auto m = Mapping::Open(path, o);
  ASSERT_TRUE(m.ok());
  m->MemsetPersist(m->data(), 9, 3 * 4096);
  ASSERT_EQ(::truncate(path.c_str(), 4096), 0);
  std::vector<uint8_t> buf(4096);
  ASSERT_TRUE(m->Read(0, buf.data(), 4096).ok());
  EXPECT_EQ(buf[4095], 9);
  Status s = m->Read(4000, buf.data(), 200);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.kind(), ErrorKind::kIoError);
  EXPECT_NE(s.message().find("media error at offset 4096"), std::string::npos)
      << s.message();
  // The process lives on and the handler keeps working.
  EXPECT_FALSE(m->Read(2 * 4096, buf.data(), 1).ok());
  EXPECT_TRUE(m->Read(100, buf.data(), 100).ok());
}

TEST(PoisonedRead, ForeignSigbusStillKills) {
  TempDir d;
  std::string path = d / "short";
  MapOptions o;
  o.create_size = 2 * 4096;
  auto m = Mapping::Open(path, o);
  ASSERT_TRUE(m.ok());
  char c;
  ASSERT_TRUE(m->Read(0, &c, 1).ok());  // handler installed
  ASSERT_EQ(::truncate(path.c_str(), 4096), 0);
  EXPECT_DEATH({ (void)static_cast<volatile char*>(m->data())[4096]; }, "");
}

TEST(RangeMath, SubtractAndOverlap) {
  EXPECT_TRUE(map::Overlaps({0, 10}, {9, 1}));
  EXPECT_FALSE(map::Overlaps({0, 10}, {10, 1}));
  EXPECT_EQ(map::Subtract({0, 10}, {20, 5}), (std::vector<ByteRange>{{0, 10}}));
  EXPECT_EQ(map::Subtract({0, 10}, {0, 10}), (std::vector<ByteRange>{}));
  EXPECT_EQ(map::Subtract({0, 10}, {3, 4}),
            (std::vector<ByteRange>{{0, 3}, {7, 3}}));
  EXPECT_EQ(map::Subtract({5, 10}, {0, 8}), (std::vector<ByteRange>{{8, 7}}));
}

}  // namespace
}  // namespace daxstore
