// Media errors through the image engine, with the emulated namespace's
// list of bad ranges: a read of a bad block fails that request with EIO,
// a whole-block write replaces and retires it, check lists the guest
// ranges lost, and metadata on a bad block fails the open cleanly.
#include <errno.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "daxstore/daxstore.h"
#include "daxstore/image.h"
#include "image/format.h"
#include "testing/temp_dir.h"

namespace daxstore {
namespace {

using testing::TempDir;
using testing::WriteText;

constexpr uint64_t kBs = 4096;
constexpr uint64_t kBlocks = 32;

MapOptions Emulated() {
  MapOptions o;
  o.emulate = PersistenceDomain::kMemoryController;
  return o;
}

std::vector<uint8_t> Pattern(uint64_t lba, size_t n = kBs) {
  return std::vector<uint8_t>(n, static_cast<uint8_t>(0x40 + lba));
}

bool Has(const Status& s, const std::string& what) {
  return s.message().find(what) != std::string::npos;
}

class ImageMediaTest : public ::testing::Test {
 protected:
  // An image of kBlocks blocks, each written with Pattern(lba).
  void SetUp() override {
    ImageOptions o;
    o.virtual_size = kBlocks * kBs;
    o.max_volumes = 4;
    auto img = Image::Create(path_, o, Emulated());
    ASSERT_TRUE(img.ok()) << img.status().ToString();
    for (uint64_t lba = 0; lba < kBlocks; lba++) {
      ASSERT_TRUE(img->Write(lba * kBs, Pattern(lba).data(), kBs).ok());
    }
  }

  image::Superblock Super() const {
    image::Superblock sb{};
    std::ifstream f(path_, std::ios::binary);
    f.read(reinterpret_cast<char*>(&sb), sizeof sb);
    return sb;
  }
  template <typename T>
  T ReadAt(uint64_t off) const {
    T v{};
    std::ifstream f(path_, std::ios::binary);
    f.seekg(static_cast<std::streamoff>(off));
    f.read(reinterpret_cast<char*>(&v), sizeof v);
    return v;
  }
  // The data block map slot `slot` names for lba (the image is closed).
  uint64_t PbaOf(uint64_t lba, uint32_t slot = 0) const {
    image::Superblock sb = Super();
    uint64_t e = ReadAt<uint64_t>(sb.map_offset + slot * sb.map_slot_bytes +
                                  lba * sizeof(uint64_t));
    EXPECT_TRUE(image::EntryPresent(e)) << "lba " << lba;
    return image::EntryPba(e);
  }
  uint32_t RefOf(uint64_t pba) const {
    return ReadAt<uint32_t>(Super().ref_offset + pba * sizeof(uint32_t));
  }
  uint64_t DataOffset(uint64_t pba) const {
    return Super().data_offset + pba * kBs;
  }
  // Lists [offset, offset + length) of the image file as bad.
  void MarkBad(uint64_t offset, uint64_t length) {
    bad_ += std::to_string(offset) + " " + std::to_string(length) + "\n";
    WriteText(path_ + ".badblocks", bad_);
  }
  Image Open(const std::string& volume = "") {
    auto img = Image::Open(path_, volume, Emulated());
    EXPECT_TRUE(img.ok()) << img.status().ToString();
    return std::move(img).value();
  }
  static void ExpectBlock(const Image& img, uint64_t lba,
                          const std::vector<uint8_t>& want) {
    std::vector<uint8_t> got(kBs);
    Status s = img.Read(lba * kBs, got.data(), kBs);
    ASSERT_TRUE(s.ok()) << "lba " << lba << ": " << s.ToString();
    EXPECT_EQ(got, want) << "lba " << lba;
  }

  TempDir dir_;
  std::string path_ = dir_ / "disk.img";
  std::string bad_;
};

TEST_F(ImageMediaTest, ReadOfABadBlockFailsThatRequestOnly) {
  // 512 bytes in the middle of lba 5's data block.
  MarkBad(DataOffset(PbaOf(5)) + 1024, 512);
  Image img = Open();
  std::vector<uint8_t> buf(3 * kBs);
  Status s = img.Read(5 * kBs + 100, buf.data(), 10);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.kind(), ErrorKind::kIoError);
  EXPECT_EQ(s.sys_errno(), EIO);
  EXPECT_TRUE(Has(s, "guest bytes [20480, 24576)")) << s.message();
  EXPECT_TRUE(Has(s, "volume 'base'")) << s.message();
  EXPECT_TRUE(Has(s, "daxstore image check")) << s.message();
  // A read spanning the bad block fails too, through the iovec path.
  EXPECT_EQ(img.Read(4 * kBs, buf.data(), 3 * kBs).kind(), ErrorKind::kIoError);
  std::vector<uint8_t> a(kBs + 7), b(2 * kBs - 7);
  iovec iov[2] = {{a.data(), a.size()}, {b.data(), b.size()}};
  EXPECT_EQ(img.Readv(4 * kBs, iov).sys_errno(), EIO);
  // Every other block reads as written, before and after.
  for (uint64_t lba = 0; lba < kBlocks; lba++) {
    if (lba != 5) ExpectBlock(img, lba, Pattern(lba));
  }
  // The failure changes nothing: it fails again, the same way.
  EXPECT_EQ(img.Read(5 * kBs, buf.data(), kBs).sys_errno(), EIO);
}

TEST_F(ImageMediaTest, OtherVolumesKeepWorking) {
  {
    Image img = Open();
    ASSERT_TRUE(img.Snapshot("gold").ok());
    ASSERT_TRUE(img.Clone("gold", "vm1").ok());
    Image vm1 = std::move(img.OpenVolume("vm1")).value();
    ASSERT_TRUE(vm1.Write(7 * kBs, Pattern(99).data(), kBs).ok());
  }
  MarkBad(DataOffset(PbaOf(7)), kBs);  // base's (and gold's) lba 7
  Image base = Open();
  Image gold = std::move(base.OpenVolume("gold")).value();
  Image vm1 = std::move(base.OpenVolume("vm1")).value();
  std::vector<uint8_t> buf(kBs);
  EXPECT_EQ(base.Read(7 * kBs, buf.data(), kBs).sys_errno(), EIO);
  Status s = gold.Read(7 * kBs, buf.data(), kBs);
  EXPECT_TRUE(Has(s, "volume 'gold'")) << s.message();
  ExpectBlock(vm1, 7, Pattern(99));
  ExpectBlock(vm1, 6, Pattern(6));
  ExpectBlock(gold, 8, Pattern(8));

  auto r = base.Check();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->clean());
  EXPECT_TRUE(r->findings.empty());
  EXPECT_EQ(r->media_errors, (std::vector<BadRange>{{"base", 7 * kBs, kBs},
                                                    {"gold", 7 * kBs, kBs}}));
  // Rewriting base's copy leaves the block mapped in gold: not retired.
  ASSERT_TRUE(base.Write(7 * kBs, Pattern(7).data(), kBs).ok());
  ExpectBlock(base, 7, Pattern(7));
  EXPECT_EQ(base.Info()->retired_blocks, 0u);
  EXPECT_EQ(base.Check()->media_errors,
            (std::vector<BadRange>{{"gold", 7 * kBs, kBs}}));
  // Deleting gold frees it; the next open retires it.
  gold = std::move(vm1);  // closes gold's handle
  ASSERT_TRUE(base.DeleteVolume("gold").ok());
  EXPECT_TRUE(base.Check()->clean());
  { Image closed = std::move(base), closed_too = std::move(gold); }
  EXPECT_EQ(Open().Info()->retired_blocks, 1u);
}

TEST_F(ImageMediaTest, WholeBlockWriteReplacesAndRetiresTheBadBlock) {
  const uint64_t bad = PbaOf(3);
  MarkBad(DataOffset(bad), kBs);
  {
    Image img = Open();
    ASSERT_TRUE(img.Write(3 * kBs, Pattern(77).data(), kBs).ok());
    ExpectBlock(img, 3, Pattern(77));
    EXPECT_EQ(img.Info()->retired_blocks, 1u);
    // Churn: every block rewritten and discarded many times over; the bad
    // block is never handed out again.
    for (int round = 0; round < 6; round++) {
      for (uint64_t lba = 0; lba < kBlocks; lba++) {
        auto data = Pattern(lba + round);
        ASSERT_TRUE(img.Write(lba * kBs, data.data(), kBs).ok());
        ExpectBlock(img, lba, data);
      }
      ASSERT_TRUE(img.Discard(0, kBlocks * kBs / 2).ok());
    }
    auto r = img.Check();
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->clean()) << (r->findings.empty() ? "" : r->findings[0]);
  }
  EXPECT_EQ(RefOf(bad), image::kRefRetired);
  for (uint64_t lba = kBlocks / 2; lba < kBlocks; lba++) {
    EXPECT_NE(PbaOf(lba), bad);
  }
  Image img = Open();
  EXPECT_EQ(img.Info()->retired_blocks, 1u);
  EXPECT_TRUE(img.Check()->clean());
}

TEST_F(ImageMediaTest, PartialWriteOverABadBlockFailsAndSaysWhy) {
  MarkBad(DataOffset(PbaOf(2)), 512);
  Image img = Open();
  std::vector<uint8_t> part(512, 0x11);
  Status s = img.Write(2 * kBs + 512, part.data(), part.size());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.sys_errno(), EIO);
  EXPECT_TRUE(Has(s, "write all of [8192, 12288)")) << s.message();
  EXPECT_EQ(img.WriteZeroes(2 * kBs, 512).sys_errno(), EIO);
  // Whole-block zeroing replaces it with a hole.
  ASSERT_TRUE(img.WriteZeroes(2 * kBs, kBs).ok());
  ExpectBlock(img, 2, std::vector<uint8_t>(kBs, 0));
  EXPECT_EQ(img.Info()->retired_blocks, 1u);
  ASSERT_TRUE(img.Write(2 * kBs + 512, part.data(), part.size()).ok());
}

TEST_F(ImageMediaTest, CheckListsTheLostRangesMerged) {
  MarkBad(DataOffset(PbaOf(10)), kBs);
  MarkBad(DataOffset(PbaOf(11)) + 4000, 10);
  MarkBad(DataOffset(PbaOf(20)), 1);
  Image img = Open();
  auto r = img.Check();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->media_errors, (std::vector<BadRange>{{"base", 10 * kBs, 2 * kBs},
                                                    {"base", 20 * kBs, kBs}}));
  EXPECT_FALSE(r->clean());
  EXPECT_FALSE(r->repaired);
  ASSERT_TRUE(img.Write(10 * kBs, Pattern(1, 2 * kBs).data(), 2 * kBs).ok());
  ASSERT_TRUE(img.Discard(20 * kBs, kBs).ok());
  r = img.Check();
  EXPECT_TRUE(r->media_errors.empty());
  EXPECT_TRUE(r->clean());
}

TEST_F(ImageMediaTest, FreeBadBlocksAreRetiredAtOpen) {
  const uint64_t data_blocks = Super().data_blocks;
  ASSERT_GT(data_blocks, kBlocks + 1);  // spare blocks past the written ones
  ASSERT_EQ(RefOf(kBlocks), 0u);
  ASSERT_EQ(RefOf(kBlocks + 1), 0u);
  MarkBad(DataOffset(kBlocks), 2 * kBs);
  {
    Image img = Open();
    EXPECT_EQ(img.Info()->retired_blocks, 2u);
    EXPECT_TRUE(img.Check()->clean());
  }
  EXPECT_EQ(RefOf(kBlocks), image::kRefRetired);
  EXPECT_EQ(RefOf(kBlocks + 1), image::kRefRetired);
}

TEST_F(ImageMediaTest, MetadataOnABadBlockFailsTheOpen) {
  const image::Superblock sb = Super();
  struct Case {
    uint64_t offset;
    const char* region;
  } cases[] = {
      {100, "primary superblock"},
      {sb.lane_offset + 3 * image::kLaneSlot, "redo record of lane 3"},
      {sb.volume_offset + 8, "volume table"},
      {sb.map_offset + 8 * 4, "block map of volume slot 0"},
      {sb.map_offset + sb.map_slot_bytes, "block map of volume slot 1"},
      {sb.ref_offset, "refcount table"},
      {sb.backup_offset + 16, "backup superblock"},
  };
  for (const Case& c : cases) {
    WriteText(path_ + ".badblocks", std::to_string(c.offset) + " 8\n");
    auto img = Image::Open(path_, Emulated());
    ASSERT_FALSE(img.ok()) << c.region;
    EXPECT_EQ(img.status().kind(), ErrorKind::kIoError) << c.region;
    EXPECT_EQ(img.status().sys_errno(), EIO);
    EXPECT_TRUE(Has(img.status(), c.region)) << img.status().message();
    EXPECT_TRUE(Has(img.status(), "restore it from a backup"))
        << img.status().message();
  }
  // Nothing was changed: with the list gone the image opens as before.
  WriteText(path_ + ".badblocks", "");
  Image img = Open();
  ExpectBlock(img, 0, Pattern(0));
  EXPECT_TRUE(img.Check()->clean());
}

TEST_F(ImageMediaTest, ConcurrentReadsWhileTheBadBlockIsRewritten) {
  MarkBad(DataOffset(PbaOf(3)), kBs);
  Image img = Open();
  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; t++) {
    readers.emplace_back([&] {
      std::vector<uint8_t> buf(kBs);
      while (!stop.load()) {
        Status s = img.Read(3 * kBs, buf.data(), kBs);
        if (!s.ok()) {
          wrong += s.sys_errno() != EIO;
        } else if (buf != Pattern(77)) {
          wrong++;  // never the bad block's content
        }
        if (!img.Read(4 * kBs, buf.data(), kBs).ok() || buf != Pattern(4)) {
          wrong++;
        }
      }
    });
  }
  std::vector<uint8_t> probe(kBs);
  while (img.Read(3 * kBs, probe.data(), kBs).ok()) {
  }
  ASSERT_TRUE(img.Write(3 * kBs, Pattern(77).data(), kBs).ok());
  for (int i = 0; i < 200; i++) ExpectBlock(img, 3, Pattern(77));
  stop = true;
  for (auto& r : readers) r.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(img.Info()->retired_blocks, 1u);
}

TEST_F(ImageMediaTest, CapiReadReturnsEio) {
  MarkBad(DataOffset(PbaOf(1)), kBs);
  daxstore_image* img = nullptr;
  ASSERT_EQ(
      daxstore_image_open(path_.c_str(), nullptr, DAXSTORE_EMULATED_PMEM, &img),
      0)
      << daxstore_last_error();
  std::vector<uint8_t> buf(kBs);
  EXPECT_EQ(daxstore_image_pread(img, buf.data(), kBs, kBs), -EIO);
  EXPECT_NE(std::string(daxstore_last_error()).find("bad block"),
            std::string::npos)
      << daxstore_last_error();
  EXPECT_EQ(daxstore_image_pread(img, buf.data(), kBs, 2 * kBs),
            static_cast<ssize_t>(kBs));
  EXPECT_EQ(buf, Pattern(2));
  // Partial write: -EIO; whole block: replaces it.
  EXPECT_EQ(daxstore_image_pwrite(img, buf.data(), 512, kBs), -EIO);
  EXPECT_EQ(daxstore_image_pwrite(img, buf.data(), kBs, kBs),
            static_cast<ssize_t>(kBs));
  std::vector<uint8_t> back(kBs);
  EXPECT_EQ(daxstore_image_pread(img, back.data(), kBs, kBs),
            static_cast<ssize_t>(kBs));
  EXPECT_EQ(back, buf);
  daxstore_image_close(img);
}

}  // namespace
}  // namespace daxstore
