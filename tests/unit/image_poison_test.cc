// Poison the kernel has not listed: a page of the image whose file is gone
// from under the mapping raises SIGBUS on access, as poisoned pmem does.
// The image turns it into a failed request, not a dead process.
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "daxstore/image.h"
#include "daxstore/mapping.h"
#include "image/format.h"
#include "testing/temp_dir.h"

namespace daxstore {
namespace {

using testing::TempDir;

constexpr uint64_t kBs = 4096;
constexpr uint64_t kBlocks = 32;

std::vector<uint8_t> Pattern(uint64_t lba, size_t n = kBs) {
  return std::vector<uint8_t>(n, static_cast<uint8_t>(0x40 + lba));
}

class ImagePoisonTest : public ::testing::Test {
 protected:
  // An image of kBlocks blocks on an ordinary file, each written with
  // Pattern(lba), then opened over a Mapping whose address we keep.
  void Make(uint64_t data_blocks = 0) {
    ImageOptions o;
    o.virtual_size = kBlocks * kBs;
    o.data_blocks = data_blocks;
    {
      auto img = Image::Create(path_, o);
      ASSERT_TRUE(img.ok()) << img.status().ToString();
      for (uint64_t lba = 0; lba < kBlocks; lba++) {
        ASSERT_TRUE(img->Write(lba * kBs, Pattern(lba).data(), kBs).ok());
      }
    }
    auto m = Mapping::Open(path_);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    base_ = m->bytes();
    std::memcpy(&sb_, base_, sizeof sb_);
    mapping_ = std::move(m).value();
  }
  Result<Image> OpenImage() { return Image::Open(std::move(*mapping_)); }
  uint64_t PbaOf(uint64_t lba) const {
    uint64_t e;
    std::memcpy(&e, base_ + sb_.map_offset + lba * sizeof e, sizeof e);
    return image::EntryPba(e);
  }
  uint32_t RefOf(uint64_t pba) const {
    uint32_t r;
    std::memcpy(&r, base_ + sb_.ref_offset + pba * sizeof r, sizeof r);
    return r;
  }
  // From now on the page at image byte `off` raises SIGBUS: it is mapped
  // from an empty file, as a page truncated away under a mapping is.
  void Poison(uint64_t off) {
    int fd = ::open((dir_ / "empty").c_str(), O_RDWR | O_CREAT, 0644);
    ASSERT_GE(fd, 0);
    void* p = ::mmap(base_ + off, 4096, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_FIXED, fd, 0);
    ASSERT_EQ(p, base_ + off);
    ::close(fd);
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
  std::optional<Mapping> mapping_;
  uint8_t* base_ = nullptr;
  image::Superblock sb_{};
};

TEST_F(ImagePoisonTest, PoisonedBlockFailsItsReadsAndAWholeWriteReplacesIt) {
  Make();
  auto img = OpenImage();
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  const uint64_t bad = PbaOf(4);
  Poison(sb_.data_offset + bad * kBs);

  std::vector<uint8_t> buf(kBs);
  Status s = img->Read(4 * kBs + 8, buf.data(), 100);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.kind(), ErrorKind::kIoError);
  EXPECT_EQ(s.sys_errno(), EIO);
  EXPECT_NE(s.message().find("guest bytes [16384, 20480)"), std::string::npos)
      << s.message();
  for (uint64_t lba = 0; lba < kBlocks; lba++) {
    if (lba != 4) ExpectBlock(*img, lba, Pattern(lba));
  }
  auto r = img->Check();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->media_errors, (std::vector<BadRange>{{"base", 4 * kBs, kBs}}));
  EXPECT_EQ(img->Write(4 * kBs + 512, buf.data(), 512).sys_errno(), EIO);

  ASSERT_TRUE(img->Write(4 * kBs, Pattern(44).data(), kBs).ok());
  ExpectBlock(*img, 4, Pattern(44));
  EXPECT_EQ(RefOf(bad), image::kRefRetired);
  // Churn: a write landing on the poisoned block would kill the process.
  for (int round = 0; round < 3; round++) {
    for (uint64_t lba = 0; lba < kBlocks; lba++) {
      ASSERT_TRUE(img->Write(lba * kBs, Pattern(lba + round).data(), kBs).ok());
    }
    ASSERT_TRUE(img->Discard(0, kBlocks * kBs / 2).ok());
  }
  r = img->Check();
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->clean()) << (r->findings.empty() ? "" : r->findings[0]);
  EXPECT_EQ(img->Info()->retired_blocks, 1u);
}

TEST_F(ImagePoisonTest, FileTruncatedUnderTheImage) {
  Make(kBlocks);  // no spare: the last lba's block is the last data block
  const uint64_t last = PbaOf(kBlocks - 1);
  ASSERT_EQ(last, kBlocks - 1);
  ASSERT_EQ(::truncate(path_.c_str(), sb_.data_offset + last * kBs), 0);
  auto img = OpenImage();
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  std::vector<uint8_t> buf(kBs);
  EXPECT_EQ(img->Read((kBlocks - 1) * kBs, buf.data(), kBs).sys_errno(), EIO);
  ExpectBlock(*img, kBlocks - 2, Pattern(kBlocks - 2));
  // Check reads the backup superblock, which is gone too: an error, not a
  // crash.
  auto r = img->Check();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().kind(), ErrorKind::kIoError);
  ExpectBlock(*img, 0, Pattern(0));
}

TEST_F(ImagePoisonTest, PoisonedMetadataFailsTheOpen) {
  struct Case {
    uint64_t page;
    const char* region;
  };
  Make();
  const Case cases[] = {{0, "primary superblock"},
                        {sb_.lane_offset, "redo record of lane 0"},
                        {sb_.volume_offset, "volume table"}};
  for (const Case& c : cases) {
    if (!mapping_) {
      ASSERT_EQ(::unlink(path_.c_str()), 0);
      Make();
    }
    Poison(c.page);
    auto img = OpenImage();
    mapping_.reset();
    ASSERT_FALSE(img.ok()) << c.region;
    EXPECT_EQ(img.status().kind(), ErrorKind::kIoError);
    EXPECT_EQ(img.status().sys_errno(), EIO);
    EXPECT_NE(img.status().message().find(c.region), std::string::npos)
        << img.status().message();
  }
}

}  // namespace
}  // namespace daxstore
