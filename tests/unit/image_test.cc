// Image engine: I/O against an in-memory model, thin provisioning, reopen.
#include "daxstore/image.h"

#include <gtest/gtest.h>

#include <random>
#include <thread>
#include <vector>

#include "testing/image_model.h"
#include "testing/temp_dir.h"

namespace daxstore {
namespace {

using testing::DiskModel;
using testing::RandomBytes;
using testing::TempDir;

MapOptions Emulated() {
  MapOptions o;
  o.emulate = PersistenceDomain::kMemoryController;
  return o;
}

class ImageTest : public ::testing::Test {
 protected:
  Image MakeImage(const ImageOptions& o, MapOptions mo = Emulated()) {
    auto img = Image::Create(path_, o, mo);
    EXPECT_TRUE(img.ok()) << img.status().ToString();
    return std::move(img).value();
  }
  Image Reopen(MapOptions mo = Emulated()) {
    auto img = Image::Open(path_, mo);
    EXPECT_TRUE(img.ok()) << img.status().ToString();
    return std::move(img).value();
  }
  static void ExpectMatches(const Image& img, const DiskModel& model) {
    std::vector<uint8_t> buf(model.size());
    ASSERT_TRUE(img.Read(0, buf.data(), buf.size()).ok());
    for (uint64_t i = 0; i < model.size(); i++) {
      ASSERT_EQ(buf[i], *model.at(i)) << "byte " << i;
    }
  }
  static void ExpectClean(Image& img) {
    auto r = img.Check();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->clean()) << r->findings.front();
  }
  static uint64_t Allocated(const Image& img) {
    auto info = img.Info();
    EXPECT_TRUE(info.ok());
    return info->allocated_blocks;
  }

  TempDir dir_;
  std::string path_ = dir_ / "disk.img";
};

TEST_F(ImageTest, CreateReportsSizesAndSmallOverhead) {
  ImageOptions o;
  o.virtual_size = 1ull << 30;
  Image img = MakeImage(o);
  auto info = img.Info();
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->virtual_size, 1ull << 30);
  EXPECT_EQ(info->block_size, 4096u);
  EXPECT_EQ(info->logical_block_size, 512u);
  EXPECT_EQ(info->virtual_blocks, (1ull << 30) / 4096);
  // Room for every volume slot to be rewritten whole, plus a spare per lane.
  EXPECT_EQ(info->data_blocks, info->virtual_blocks * o.max_volumes + o.lanes);
  EXPECT_EQ(info->allocated_bytes, 0u);
  // Metadata is at most 0.3% of the virtual size per volume slot: a block
  // map entry (8 bytes) and the refcounts of its share of data blocks
  // (4 bytes) per 4 KiB block, plus the fixed headers.
  EXPECT_LE(info->metadata_bytes * 1000,
            info->virtual_size * 3 * o.max_volumes);
}

TEST_F(ImageTest, RejectsBadOptions) {
  ImageOptions o;
  o.virtual_size = 1 << 20;
  o.logical_block_size = 1024;
  EXPECT_EQ(Image::Create(path_, o, Emulated()).status().kind(),
            ErrorKind::kInvalidArgument);
  o.logical_block_size = 4096;
  o.virtual_size = 1000;
  EXPECT_EQ(Image::Create(path_, o, Emulated()).status().kind(),
            ErrorKind::kInvalidArgument);
  o.virtual_size = 1 << 20;
  o.block_size = 6000;
  EXPECT_EQ(Image::Create(path_, o, Emulated()).status().kind(),
            ErrorKind::kInvalidArgument);
}

TEST_F(ImageTest, CreateRefusesAnExistingImage) {
  ImageOptions o;
  o.virtual_size = 1 << 20;
  { Image img = MakeImage(o); }
  EXPECT_EQ(Image::Create(path_, o, Emulated()).status().kind(),
            ErrorKind::kBusy);
}

TEST_F(ImageTest, HolesReadAsZerosAndTakeNoSpace) {
  ImageOptions o;
  o.virtual_size = 8 << 20;
  Image img = MakeImage(o);
  std::vector<uint8_t> buf(12345, 0xaa);
  ASSERT_TRUE(img.Read(777, buf.data(), buf.size()).ok());
  for (uint8_t b : buf) ASSERT_EQ(b, 0);
  EXPECT_EQ(Allocated(img), 0u);
}

TEST_F(ImageTest, ReadAfterWriteAtOddOffsetsMatchesModel) {
  ImageOptions o;
  o.virtual_size = 2 << 20;
  Image img = MakeImage(o);
  DiskModel model(o.virtual_size);
  std::mt19937_64 rng(42);
  for (int i = 0; i < 400; i++) {
    uint64_t off = rng() % o.virtual_size;
    size_t n = 1 + rng() % std::min<uint64_t>(20000, o.virtual_size - off);
    int kind = rng() % 10;
    if (kind == 0) {
      ASSERT_TRUE(img.WriteZeroes(off, n).ok());
      model.Zero(off, n);
    } else if (kind == 1) {
      std::vector<uint8_t> zeros(n, 0);
      ASSERT_TRUE(img.Write(off, zeros.data(), n).ok());
      model.Zero(off, n);
    } else {
      auto data = RandomBytes(rng, n);
      ASSERT_TRUE(img.Write(off, data.data(), n).ok());
      model.Write(off, data.data(), n);
    }
    uint64_t roff = rng() % o.virtual_size;
    size_t rn = 1 + rng() % std::min<uint64_t>(9000, o.virtual_size - roff);
    std::vector<uint8_t> got(rn);
    ASSERT_TRUE(img.Read(roff, got.data(), rn).ok());
    ASSERT_EQ(0, std::memcmp(got.data(), model.at(roff), rn)) << "op " << i;
  }
  ExpectMatches(img, model);
  EXPECT_EQ(Allocated(img), model.NonZeroBlocks(4096));
  ExpectClean(img);
  { Image closed = std::move(img); }  // one open per image at a time
  Image again = Reopen();
  ExpectMatches(again, model);
  EXPECT_EQ(Allocated(again), model.NonZeroBlocks(4096));
  ExpectClean(again);
}

TEST_F(ImageTest, IovecsScatterAndGather) {
  ImageOptions o;
  o.virtual_size = 1 << 20;
  Image img = MakeImage(o);
  DiskModel model(o.virtual_size);
  std::mt19937_64 rng(7);
  auto a = RandomBytes(rng, 100), b = RandomBytes(rng, 5000),
       c = RandomBytes(rng, 3000);
  iovec w[] = {{a.data(), a.size()},
               {b.data(), b.size()},
               {c.data(), 0},
               {c.data(), c.size()}};
  ASSERT_TRUE(img.Writev(4000, w).ok());
  model.Write(4000, a.data(), a.size());
  model.Write(4100, b.data(), b.size());
  model.Write(9100, c.data(), c.size());
  std::vector<uint8_t> x(7), y(8093);
  iovec r[] = {{x.data(), x.size()}, {y.data(), y.size()}};
  ASSERT_TRUE(img.Readv(4000, r).ok());
  EXPECT_EQ(0, std::memcmp(x.data(), model.at(4000), x.size()));
  EXPECT_EQ(0, std::memcmp(y.data(), model.at(4007), y.size()));
  ExpectMatches(img, model);
}

TEST_F(ImageTest, ZeroWriteBecomesAHole) {
  ImageOptions o;
  o.virtual_size = 1 << 20;
  Image img = MakeImage(o);
  std::vector<uint8_t> ones(4096, 1), zeros(4096, 0);
  ASSERT_TRUE(img.Write(8192, ones.data(), 4096).ok());
  EXPECT_EQ(Allocated(img), 1u);
  ASSERT_TRUE(img.Write(8192, zeros.data(), 4096).ok());
  EXPECT_EQ(Allocated(img), 0u);
  // A partial write that leaves the block all zeros also frees it.
  ASSERT_TRUE(img.Write(8192 + 100, ones.data(), 10).ok());
  EXPECT_EQ(Allocated(img), 1u);
  ASSERT_TRUE(img.Write(8192 + 100, zeros.data(), 10).ok());
  EXPECT_EQ(Allocated(img), 0u);
  ExpectClean(img);
}

TEST_F(ImageTest, ZeroDetectionSeesTheLastByteAndCanBeTurnedOff) {
  ImageOptions o;
  o.virtual_size = 1 << 20;
  Image img = MakeImage(o);
  // Zero in its first bytes, not zero at the end: data, read back whole.
  std::vector<uint8_t> late(4096, 0), zeros(4096, 0), got(4096);
  late[4095] = 7;
  ASSERT_TRUE(img.Write(0, late.data(), 4096).ok());
  EXPECT_EQ(Allocated(img), 1u);
  ASSERT_TRUE(img.Read(0, got.data(), 4096).ok());
  EXPECT_EQ(got, late);
  // Off: zeros are stored like any data, whole and partial.
  img.set_detect_zeroes(false);
  ASSERT_TRUE(img.Write(4096, zeros.data(), 4096).ok());
  EXPECT_EQ(Allocated(img), 2u);
  ASSERT_TRUE(img.Write(0, zeros.data(), 4096).ok());
  ASSERT_TRUE(img.Write(8192 + 5, zeros.data(), 10).ok());
  EXPECT_EQ(Allocated(img), 3u);
  ASSERT_TRUE(img.Read(0, got.data(), 4096).ok());
  EXPECT_EQ(got, zeros);
  img.set_detect_zeroes(true);
  ASSERT_TRUE(img.Write(0, zeros.data(), 4096).ok());
  EXPECT_EQ(Allocated(img), 2u);
  ExpectClean(img);
}

TEST_F(ImageTest, FullImageTakesZeroWrites) {
  ImageOptions o;
  o.virtual_size = 64 << 10;
  o.data_blocks = 2;
  Image img = MakeImage(o);
  std::vector<uint8_t> ones(4096, 1), zeros(4096, 0), late(4096, 0);
  late[4095] = 1;
  ASSERT_TRUE(img.Write(0, ones.data(), 4096).ok());
  ASSERT_TRUE(img.Write(4096, ones.data(), 4096).ok());
  // No block to copy into: a zero block still becomes a hole, and a block
  // that is not zero fails with kNoSpace and changes nothing.
  EXPECT_EQ(img.Write(8192, late.data(), 4096).kind(), ErrorKind::kNoSpace);
  ASSERT_TRUE(img.Write(0, zeros.data(), 4096).ok());
  EXPECT_EQ(Allocated(img), 1u);
  ExpectClean(img);
}

TEST_F(ImageTest, ALaneTakesAnIdleLanesSpareWhenNothingElseIsFree) {
  ImageOptions o;
  o.virtual_size = 8 * 4096;
  o.lanes = 4;
  o.data_blocks = 8 + 1;  // one free block once the image is full
  Image img = MakeImage(o);
  std::vector<uint8_t> d(8 * 4096, 3);
  ASSERT_TRUE(img.Write(0, d.data(), d.size()).ok());
  // Each thread is another lane. The first overwrite keeps the block it
  // freed as its lane's spare; the next lanes find nothing else free.
  for (int t = 0; t < 4; t++) {
    std::thread([&] {
      std::vector<uint8_t> b(4096, static_cast<uint8_t>(10 + t));
      Status st = img.Write(t * 4096, b.data(), b.size());
      EXPECT_TRUE(st.ok()) << st.ToString();
    }).join();
  }
  std::vector<uint8_t> got(4096);
  for (int t = 0; t < 4; t++) {
    ASSERT_TRUE(img.Read(t * 4096, got.data(), got.size()).ok());
    EXPECT_EQ(got[0], 10 + t);
  }
  EXPECT_EQ(Allocated(img), 8u);
  ExpectClean(img);
}

TEST_F(ImageTest, CheckReportsProgressUpTo100Percent) {
  ImageOptions o;
  o.virtual_size = 64 << 20;  // 16384 blocks: several progress steps
  Image img = MakeImage(o);
  std::vector<uint8_t> ones(4096, 1);
  ASSERT_TRUE(img.Write(0, ones.data(), 4096).ok());
  ASSERT_TRUE(img.Snapshot("snap").ok());
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  auto r = img.Check(false, [&](uint64_t done, uint64_t total) {
    calls.emplace_back(done, total);
  });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->clean());
  ASSERT_GE(calls.size(), 10u);
  const uint64_t total = calls.front().second;
  // Two live volumes' maps, then every refcount.
  auto info = img.Info();
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(total, 2 * info->virtual_blocks + info->data_blocks);
  EXPECT_EQ(calls.front().first, 0u);
  EXPECT_EQ(calls.back().first, total);
  for (size_t i = 1; i < calls.size(); i++) {
    EXPECT_EQ(calls[i].second, total);
    EXPECT_GT(calls[i].first, calls[i - 1].first) << i;
  }
  // Without a callback, Check still works.
  ASSERT_TRUE(img.Check().ok());
}

TEST_F(ImageTest, ExtentsReportHolesAndDataMerged) {
  ImageOptions o;
  o.virtual_size = 1 << 20;  // 256 blocks
  Image img = MakeImage(o);
  std::vector<uint8_t> ones(3 * 4096, 1);
  ASSERT_TRUE(img.Write(4 * 4096, ones.data(), ones.size()).ok());  // 4..6
  ASSERT_TRUE(img.Write(10 * 4096 + 7, ones.data(), 1).ok());       // 10
  auto ex = img.Extents(0, o.virtual_size);
  ASSERT_TRUE(ex.ok()) << ex.status().ToString();
  ASSERT_EQ(ex->size(), 5u);
  const uint64_t want[5][3] = {{0, 4 * 4096, 1},
                               {4 * 4096, 3 * 4096, 0},
                               {7 * 4096, 3 * 4096, 1},
                               {10 * 4096, 4096, 0},
                               {11 * 4096, (256 - 11) * 4096, 1}};
  for (size_t i = 0; i < 5; i++) {
    EXPECT_EQ((*ex)[i].offset, want[i][0]) << i;
    EXPECT_EQ((*ex)[i].length, want[i][1]) << i;
    EXPECT_EQ((*ex)[i].hole, want[i][2] == 1) << i;
  }
  // An unaligned range is clipped to itself; max_extents stops early.
  ex = img.Extents(6 * 4096 + 100, 4096, 1);  // data, then a hole
  ASSERT_TRUE(ex.ok());
  ASSERT_EQ(ex->size(), 1u);
  EXPECT_EQ((*ex)[0].offset, 6 * 4096 + 100u);
  EXPECT_EQ((*ex)[0].length, 4096 - 100u);
  EXPECT_FALSE((*ex)[0].hole);
  EXPECT_FALSE(img.Extents(o.virtual_size - 1, 2).ok());
  // Discard turns the data back into one hole.
  ASSERT_TRUE(img.Discard(0, o.virtual_size).ok());
  ex = img.Extents(0, o.virtual_size);
  ASSERT_TRUE(ex.ok());
  ASSERT_EQ(ex->size(), 1u);
  EXPECT_TRUE((*ex)[0].hole);
}

TEST_F(ImageTest, DiscardFreesWholeBlocksAndZeroesPartialOnes) {
  ImageOptions o;
  o.virtual_size = 1 << 20;
  Image img = MakeImage(o);
  DiskModel model(o.virtual_size);
  std::mt19937_64 rng(3);
  auto data = RandomBytes(rng, 10 * 4096);
  ASSERT_TRUE(img.Write(0, data.data(), data.size()).ok());
  model.Write(0, data.data(), data.size());
  EXPECT_EQ(Allocated(img), 10u);
  ASSERT_TRUE(img.Discard(4096 + 1000, 3 * 4096).ok());
  model.Zero(4096 + 1000, 3 * 4096);
  EXPECT_EQ(Allocated(img), 8u);  // blocks 2 and 3 freed, 1 and 4 partial
  ExpectMatches(img, model);
  ASSERT_TRUE(img.WriteZeroes(0, o.virtual_size).ok());
  EXPECT_EQ(Allocated(img), 0u);
  ExpectClean(img);
}

TEST_F(ImageTest, FullImageCanStillBeOverwritten) {
  ImageOptions o;
  o.virtual_size = 256 << 10;
  o.lanes = 2;
  Image img = MakeImage(o);
  std::mt19937_64 rng(5);
  for (int round = 0; round < 3; round++) {
    auto data = RandomBytes(rng, o.virtual_size);
    ASSERT_TRUE(img.Write(0, data.data(), data.size()).ok());
    std::vector<uint8_t> got(o.virtual_size);
    ASSERT_TRUE(img.Read(0, got.data(), got.size()).ok());
    ASSERT_EQ(got, data);
  }
  ExpectClean(img);
}

TEST_F(ImageTest, RunsOutOfSpaceCleanly) {
  ImageOptions o;
  o.virtual_size = 64 << 10;
  o.data_blocks = 4;
  Image img = MakeImage(o);
  std::vector<uint8_t> ones(4096, 1);
  for (int i = 0; i < 4; i++) {
    ASSERT_TRUE(img.Write(i * 4096, ones.data(), 4096).ok());
  }
  Status st = img.Write(5 * 4096, ones.data(), 4096);
  EXPECT_EQ(st.kind(), ErrorKind::kNoSpace) << st.ToString();
  ASSERT_TRUE(img.Discard(0, 4096).ok());
  EXPECT_TRUE(img.Write(5 * 4096, ones.data(), 4096).ok());
  ExpectClean(img);
}

TEST_F(ImageTest, RejectsIoBeyondTheEnd) {
  ImageOptions o;
  o.virtual_size = 1 << 20;
  Image img = MakeImage(o);
  char b[16] = {};
  EXPECT_EQ(img.Read(o.virtual_size - 8, b, 16).kind(),
            ErrorKind::kInvalidArgument);
  EXPECT_EQ(img.Write(o.virtual_size, b, 1).kind(),
            ErrorKind::kInvalidArgument);
  EXPECT_EQ(img.Discard(~0ull - 2, 8).kind(), ErrorKind::kInvalidArgument);
  EXPECT_TRUE(img.Read(o.virtual_size - 16, b, 16).ok());
}

TEST_F(ImageTest, WorksOnAnOrdinaryFileAndWith4KLogicalBlocks) {
  ImageOptions o;
  o.virtual_size = 512 << 10;
  o.logical_block_size = 4096;
  o.lanes = 4;
  DiskModel model(o.virtual_size);
  {
    Image img = MakeImage(o, MapOptions{});
    std::mt19937_64 rng(11);
    for (int i = 0; i < 20; i++) {
      uint64_t off = rng() % o.virtual_size;
      size_t n = 1 + rng() % std::min<uint64_t>(9000, o.virtual_size - off);
      auto data = RandomBytes(rng, n);
      ASSERT_TRUE(img.Write(off, data.data(), n).ok());
      model.Write(off, data.data(), n);
    }
    ASSERT_TRUE(img.Flush().ok());
  }
  Image img = Reopen(MapOptions{});
  EXPECT_EQ(img.logical_block_size(), 4096u);
  ExpectMatches(img, model);
  ExpectClean(img);
}

TEST_F(ImageTest, FormatUsesTheWholeTargetOrSaysItIsTooSmall) {
  MapOptions mo = Emulated();
  mo.create_size = 16 << 10;
  auto small = Mapping::Open(dir_ / "small", mo);
  ASSERT_TRUE(small.ok());
  ImageOptions o;
  o.virtual_size = 1 << 20;
  auto img = Image::Format(std::move(small).value(), o);
  EXPECT_EQ(img.status().kind(), ErrorKind::kNoSpace)
      << img.status().ToString();

  mo.create_size = 4 << 20;
  auto big = Mapping::Open(dir_ / "big", mo);
  ASSERT_TRUE(big.ok());
  img = Image::Format(std::move(big).value(), o);
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  auto info = img->Info();
  // More data blocks than virtual blocks: room for snapshots later.
  EXPECT_GT(info->data_blocks, 900u);
  EXPECT_EQ(info->metadata_bytes + info->data_blocks * 4096, 4u << 20);
}

TEST_F(ImageTest, ReadOnlyOpenReadsButRefusesWrites) {
  ImageOptions o;
  o.virtual_size = 1 << 20;
  std::vector<uint8_t> ones(5000, 1);
  {
    Image img = MakeImage(o);
    ASSERT_TRUE(img.Write(100, ones.data(), ones.size()).ok());
  }
  MapOptions ro = Emulated();
  ro.access = Access::kReadOnly;
  Image img = Reopen(ro);
  std::vector<uint8_t> got(5000);
  ASSERT_TRUE(img.Read(100, got.data(), got.size()).ok());
  EXPECT_EQ(got, ones);
  EXPECT_EQ(img.Write(0, ones.data(), 1).kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(img.Discard(0, 4096).kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(img.Check(true).status().kind(), ErrorKind::kInvalidArgument);
  ExpectClean(img);
}

TEST_F(ImageTest, OpensASparse64GiBImage) {
  ImageOptions o;
  o.virtual_size = 64ull << 30;
  {
    Image img = MakeImage(o);
    std::vector<uint8_t> ones(4096, 1);
    ASSERT_TRUE(img.Write(40ull << 30, ones.data(), 4096).ok());
  }
  Image img = Reopen();
  std::vector<uint8_t> got(4096);
  ASSERT_TRUE(img.Read(40ull << 30, got.data(), 4096).ok());
  EXPECT_EQ(got, std::vector<uint8_t>(4096, 1));
}

}  // namespace
}  // namespace daxstore
