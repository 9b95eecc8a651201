// DirtyBlocks and Image::TrackWrites / Fence: which blocks each kind of
// write marks, fences, and a drainer that copies the marked blocks while
// writers run ends with an exact copy (what a mirror relies on).
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "daxstore/dirty_blocks.h"
#include "daxstore/image.h"
#include "testing/temp_dir.h"

namespace daxstore {
namespace {

using testing::TempDir;

constexpr uint64_t kBs = 4096;

TEST(DirtyBlocksTest, MarksAcrossWordsAndTakesInOrder) {
  DirtyBlocks d(200);
  d.Mark(60, 70);    // across the first word boundary
  d.Mark(130, 131);  // one bit
  d.Mark(199, 500);  // capped at the end
  d.Mark(62, 64);    // again: no double count
  EXPECT_EQ(d.Count(), 12u);
  std::vector<uint64_t> want;
  for (uint64_t b = 60; b < 70; b++) want.push_back(b);
  want.push_back(130);
  want.push_back(199);
  EXPECT_EQ(d.Take(), want);
  EXPECT_EQ(d.Count(), 0u);
  EXPECT_TRUE(d.Take().empty());
  d.Mark(0, 200);
  EXPECT_EQ(d.Count(), 200u);
  EXPECT_EQ(d.Take().size(), 200u);
}

class ImageTrackingTest : public ::testing::Test {
 protected:
  Image Make(uint64_t blocks, uint32_t max_volumes = 1) {
    ImageOptions o;
    o.virtual_size = blocks * kBs;
    o.lanes = 8;
    o.max_volumes = max_volumes;
    MapOptions mo;
    mo.emulate = PersistenceDomain::kMemoryController;
    auto img = Image::Create(dir_.path() + "/img", o, mo);
    EXPECT_TRUE(img.ok()) << img.status().ToString();
    return std::move(img).value();
  }
  TempDir dir_;
};

TEST_F(ImageTrackingTest, EveryKindOfWriteMarksTheBlocksItTouches) {
  Image img = Make(64);
  auto d = std::make_shared<DirtyBlocks>(64);
  ASSERT_TRUE(img.TrackWrites(d).ok());
  std::vector<uint8_t> buf(2 * kBs, 7);
  ASSERT_TRUE(img.Write(3 * kBs + 100, buf.data(), kBs).ok());  // 3 and 4
  ASSERT_TRUE(img.WriteZeroes(10 * kBs, 2 * kBs).ok());         // 10, 11
  ASSERT_TRUE(img.Discard(20 * kBs + 512, 512).ok());           // 20
  EXPECT_EQ(d->Take(), (std::vector<uint64_t>{3, 4, 10, 11, 20}));
  // Reads mark nothing.
  ASSERT_TRUE(img.Read(0, buf.data(), buf.size()).ok());
  EXPECT_EQ(d->Count(), 0u);
  // One tracker per volume; one bit per block.
  EXPECT_EQ(img.TrackWrites(std::make_shared<DirtyBlocks>(64)).kind(),
            ErrorKind::kBusy);
  img.StopTrackingWrites();
  EXPECT_EQ(img.TrackWrites(std::make_shared<DirtyBlocks>(63)).kind(),
            ErrorKind::kInvalidArgument);
  ASSERT_TRUE(img.Write(0, buf.data(), kBs).ok());
  EXPECT_EQ(d->Count(), 0u);  // detached
}

TEST_F(ImageTrackingTest, AFenceRefusesWritesOfItsVolumeOnly) {
  Image img = Make(16, 3);
  std::vector<uint8_t> buf(kBs, 9);
  ASSERT_TRUE(img.Write(0, buf.data(), kBs).ok());
  ASSERT_TRUE(img.Snapshot("s").ok());
  ASSERT_TRUE(img.Clone("s", "c").ok());
  auto clone = img.OpenVolume("c");
  ASSERT_TRUE(clone.ok()) << clone.status().ToString();
  img.Fence("handed over");
  // The clone is another volume: it takes writes.
  ASSERT_TRUE(clone->Write(kBs, buf.data(), kBs).ok());
  for (Status st : {img.Write(0, buf.data(), kBs), img.WriteZeroes(0, kBs),
                    img.Discard(0, kBs)}) {
    EXPECT_EQ(st.sys_errno(), EROFS);
    EXPECT_NE(st.message().find("handed over"), std::string::npos);
  }
  std::vector<uint8_t> got(kBs);
  ASSERT_TRUE(img.Read(0, got.data(), kBs).ok());
  EXPECT_EQ(got, buf);
  img.Unfence();
  std::vector<uint8_t> other(kBs, 3);
  ASSERT_TRUE(img.Write(0, other.data(), kBs).ok());
  ASSERT_TRUE(img.Read(0, got.data(), kBs).ok());
  EXPECT_EQ(got, other);
}

// Writers stamp random blocks while a drainer takes the marks and copies
// the marked blocks; after the writers stop, one last drain leaves the
// copy equal to the image. A mark set before the write landed would let
// the drainer copy old data and lose the new. Ten rounds, each from a
// full copy and a new tracker, since such a loss needs the drainer in a
// short window.
TEST_F(ImageTrackingTest, ConcurrentWritersAndADrainerEndInAnExactCopy) {
  constexpr uint64_t kBlocks = 256;
  Image img = Make(kBlocks);
  std::atomic<uint64_t> stamp{1};
  for (int round = 0; round < 10; round++) {
    std::vector<std::vector<uint8_t>> copy(kBlocks, std::vector<uint8_t>(kBs));
    for (uint64_t b = 0; b < kBlocks; b++) {
      ASSERT_TRUE(img.Read(b * kBs, copy[b].data(), kBs).ok());
    }
    auto d = std::make_shared<DirtyBlocks>(kBlocks);
    ASSERT_TRUE(img.TrackWrites(d).ok());
    auto drain = [&] {
      for (uint64_t b : d->Take()) {
        ASSERT_TRUE(img.Read(b * kBs, copy[b].data(), kBs).ok());
      }
    };
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int t = 0; t < 3; t++) {
      writers.emplace_back([&, t] {
        std::mt19937_64 rnd(round * 3 + t);
        std::vector<uint8_t> buf(kBs);
        for (int i = 0; i < 3000; i++) {
          uint64_t b = rnd() % kBlocks;
          if (i % 5 == 4) {
            ASSERT_TRUE(img.WriteZeroes(b * kBs, kBs).ok());
            continue;
          }
          uint64_t s = stamp.fetch_add(1);
          for (size_t k = 0; k < kBs; k += 8) std::memcpy(&buf[k], &s, 8);
          ASSERT_TRUE(img.Write(b * kBs, buf.data(), kBs).ok());
        }
      });
    }
    std::thread drainer([&] {
      while (!stop.load()) drain();
    });
    for (auto& w : writers) w.join();
    stop.store(true);
    drainer.join();
    drain();  // the last marks, with no writer left
    img.StopTrackingWrites();
    std::vector<uint8_t> got(kBs);
    for (uint64_t b = 0; b < kBlocks; b++) {
      ASSERT_TRUE(img.Read(b * kBs, got.data(), kBs).ok());
      ASSERT_EQ(got, copy[b]) << "round " << round << ", block " << b;
    }
  }
}

}  // namespace
}  // namespace daxstore
