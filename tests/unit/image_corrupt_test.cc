// Malformed and corrupt images give clear errors, never a crash; Check
// finds and repairs metadata damage.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "daxstore/image.h"
#include "image/format.h"
#include "testing/temp_dir.h"

namespace daxstore {
namespace {

using testing::TempDir;

class ImageCorruptTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ImageOptions o;
    o.virtual_size = 1 << 20;
    o.lanes = 4;
    auto img = Image::Create(path_, o);
    ASSERT_TRUE(img.ok()) << img.status().ToString();
    std::vector<uint8_t> ones(3 * 4096, 1);
    ASSERT_TRUE(img->Write(0, ones.data(), ones.size()).ok());
    size_ = img->Info()->metadata_bytes + img->Info()->data_blocks * 4096;
  }
  image::Superblock ReadSb(uint64_t off) {
    image::Superblock sb;
    Pread(&sb, sizeof sb, off);
    return sb;
  }
  void Pread(void* p, size_t n, uint64_t off) {
    int fd = ::open(path_.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pread(fd, p, n, off), static_cast<ssize_t>(n));
    ::close(fd);
  }
  void Pwrite(const void* p, size_t n, uint64_t off) {
    int fd = ::open(path_.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, p, n, off), static_cast<ssize_t>(n));
    ::close(fd);
  }

  TempDir dir_;
  std::string path_ = dir_ / "disk.img";
  uint64_t size_ = 0;
};

TEST_F(ImageCorruptTest, NotAnImage) {
  std::string other = dir_ / "zeros";
  std::vector<uint8_t> junk(64 << 10, 0);
  int fd = ::open(other.c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_EQ(::write(fd, junk.data(), junk.size()), (ssize_t)junk.size());
  ::close(fd);
  auto img = Image::Open(other);
  EXPECT_EQ(img.status().kind(), ErrorKind::kNotFound);
  EXPECT_NE(img.status().message().find("not a daxstore image"),
            std::string::npos)
      << img.status().message();
}

TEST_F(ImageCorruptTest, PrimarySuperblockFallsBackToBackup) {
  uint64_t junk = 0x1234;
  Pwrite(&junk, sizeof junk, offsetof(image::Superblock, virtual_size));
  auto img = Image::Open(path_);
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  std::vector<uint8_t> got(4096);
  ASSERT_TRUE(img->Read(0, got.data(), 4096).ok());
  EXPECT_EQ(got, std::vector<uint8_t>(4096, 1));
  // A read-write open restored the primary; a repair says so.
  EXPECT_TRUE(image::ValidateSuperblock(ReadSb(0), size_).ok());
  auto rep = img->Check(CheckRepair::kLeaks);
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->primary_superblock_restored);
  EXPECT_NE(rep->primary_superblock_damage.find("checksum"), std::string::npos);
  EXPECT_FALSE(rep->corrupt());
}

TEST_F(ImageCorruptTest, BothSuperblocksBadIsCorruption) {
  uint64_t junk = 0x1234;
  image::Superblock sb = ReadSb(0);
  Pwrite(&junk, sizeof junk, offsetof(image::Superblock, virtual_size));
  Pwrite(&junk, sizeof junk,
         sb.backup_offset + offsetof(image::Superblock, data_blocks));
  auto img = Image::Open(path_);
  EXPECT_EQ(img.status().kind(), ErrorKind::kCorruption);
  EXPECT_NE(img.status().message().find("checksum"), std::string::npos)
      << img.status().message();
}

TEST_F(ImageCorruptTest, FuzzedSuperblockFieldsNeverCrash) {
  image::Superblock good = ReadSb(0);
  std::mt19937_64 rng(99);
  for (int i = 0; i < 300; i++) {
    image::Superblock sb = good;
    auto* w = reinterpret_cast<uint64_t*>(&sb);
    size_t word = rng() % (offsetof(image::Superblock, checksum) / 8);
    w[word] = (i % 3 == 0) ? rng() : w[word] ^ (1ull << (rng() % 64));
    image::SealSuperblock(sb);  // well-sealed lies are the hard case
    Pwrite(&sb, sizeof sb, 0);
    Pwrite(&sb, sizeof sb, good.backup_offset);
    auto img = Image::Open(path_);
    if (img.ok()) {
      std::vector<uint8_t> buf(8192);
      (void)img->Read(0, buf.data(), buf.size());
      (void)img->Check();
    } else {
      EXPECT_FALSE(img.status().message().empty());
    }
  }
}

TEST_F(ImageCorruptTest, ForgedHugeSizesAreRejected) {
  image::Superblock good = ReadSb(0);
  auto forge = [&](auto edit) {
    image::Superblock sb = good;
    edit(sb);
    image::SealSuperblock(sb);
    Pwrite(&sb, sizeof sb, 0);
    Pwrite(&sb, sizeof sb, good.backup_offset);
    return Image::Open(path_).status();
  };
  // Sizes whose rounding would overflow to a tiny layout.
  Status st = forge([](image::Superblock& sb) {
    sb.virtual_size = ~0ull & ~4095ull;
    sb.virtual_blocks = 0;
  });
  EXPECT_EQ(st.kind(), ErrorKind::kCorruption) << st.ToString();
  st = forge([](image::Superblock& sb) { sb.data_blocks = 1ull << 47; });
  EXPECT_EQ(st.kind(), ErrorKind::kCorruption) << st.ToString();
  st = forge([](image::Superblock& sb) {
    sb.virtual_size = 1ull << 60;
    sb.virtual_blocks = (1ull << 60) / 4096;
  });
  EXPECT_EQ(st.kind(), ErrorKind::kCorruption) << st.ToString();
}

TEST_F(ImageCorruptTest, MapEntryOutOfRangeIsReportedAndRepaired) {
  image::Superblock sb = ReadSb(0);
  uint64_t bad = image::MakeEntry(sb.data_blocks + 5);
  Pwrite(&bad, sizeof bad, sb.map_offset + 8 * 1);
  auto img = Image::Open(path_);
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  std::vector<uint8_t> buf(4096);
  Status st = img->Read(4096, buf.data(), buf.size());
  EXPECT_EQ(st.kind(), ErrorKind::kCorruption);
  EXPECT_NE(st.message().find("beyond"), std::string::npos) << st.message();
  EXPECT_EQ(img->Write(4096, buf.data(), 10).kind(), ErrorKind::kCorruption);
  auto r = img->Check();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->bad_entries, 1u);
  EXPECT_EQ(r->leaked_blocks, 1u);  // the block entry 1 used to name
  r = img->Check(/*repair=*/true);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->repaired);
  r = img->Check();
  EXPECT_TRUE(r->clean()) << r->findings.front();
  ASSERT_TRUE(img->Read(4096, buf.data(), buf.size()).ok());
  EXPECT_EQ(buf, std::vector<uint8_t>(4096, 0));
  EXPECT_EQ(img->Info()->allocated_blocks, 2u);
}

TEST_F(ImageCorruptTest, RefcountDamageIsReportedAndRepaired) {
  image::Superblock sb = ReadSb(0);
  uint32_t zero = 0, five = 5;
  uint64_t e0;
  Pread(&e0, sizeof e0, sb.map_offset);
  Pwrite(&zero, 4, sb.ref_offset + 4 * image::EntryPba(e0));   // in use, 0
  Pwrite(&five, 4, sb.ref_offset + 4 * (sb.data_blocks - 1));  // leaked
  auto img = Image::Open(path_);
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  auto r = img->Check();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->overcommitted_blocks, 1u);
  EXPECT_EQ(r->leaked_blocks, 1u);
  EXPECT_TRUE(img->Check(true)->repaired);
  EXPECT_TRUE(img->Check()->clean());
  // The block mapped with refcount 0 is not handed out again.
  std::vector<uint8_t> twos(4096, 2), got(4096);
  ASSERT_TRUE(img->Write(8 * 4096, twos.data(), 4096).ok());
  ASSERT_TRUE(img->Read(0, got.data(), 4096).ok());
  EXPECT_EQ(got, std::vector<uint8_t>(4096, 1));
}

TEST_F(ImageCorruptTest, ATornRecordDoesNotReviveAClearedOne) {
  // Two threads (two lanes) write block 5 in turn. Then lane one's next
  // record is torn so that only its `valid` word reaches media: the cleared
  // record underneath must not come back and undo the second write.
  std::string img_path = dir_ / "two.img";
  ImageOptions o;
  o.virtual_size = 1 << 20;
  o.lanes = 64;
  image::Superblock sb;
  {
    auto img = Image::Create(img_path, o);
    ASSERT_TRUE(img.ok());
    for (uint8_t fill : {0xa1, 0xb2}) {
      std::thread([&] {
        std::vector<uint8_t> v(4096, fill);
        ASSERT_TRUE(img->Write(5 * 4096, v.data(), v.size()).ok());
      }).join();
    }
  }
  path_ = img_path;
  sb = ReadSb(0);
  int revived = 0;
  for (uint32_t i = 0; i < sb.lanes * image::kLaneRecords; i++) {
    image::RedoRecord r;
    uint64_t off = sb.lane_offset + i / image::kLaneRecords * image::kLaneSlot +
                   i % image::kLaneRecords * sizeof r;
    Pread(&r, sizeof r, off);
    if (r.seq == 0 || r.lba != 5) continue;
    r.valid = image::kRedoValid;
    Pwrite(&r.valid, sizeof r.valid, off);
    revived++;
  }
  ASSERT_EQ(revived, 2);
  auto img = Image::Open(path_);
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  EXPECT_EQ(img->Info()->recovered_records, 0u);
  std::vector<uint8_t> got(4096);
  ASSERT_TRUE(img->Read(5 * 4096, got.data(), got.size()).ok());
  EXPECT_EQ(got, std::vector<uint8_t>(4096, 0xb2));
  EXPECT_TRUE(img->Check()->clean());
}

// Format 4 changed the record checksum and format 5 the records (a data
// checksum, two slots per lane): a version-3 or version-4 crash image's
// record is checked and replayed the way its version wrote it, the image
// is upgraded, and its data is intact; the same record in a version-5
// image is torn and ignored.
TEST_F(ImageCorruptTest, RecordChecksumFollowsTheImageVersion) {
  image::Superblock sb = ReadSb(0);
  ASSERT_EQ(sb.version, image::kVersion);
  image::RedoRecord r{};
  uint64_t off = 0;
  for (uint32_t i = 0; i < sb.lanes * image::kLaneRecords && r.seq == 0; i++) {
    off = sb.lane_offset + i / image::kLaneRecords * image::kLaneSlot +
          i % image::kLaneRecords * sizeof r;
    Pread(&r, sizeof r, off);
  }
  ASSERT_NE(r.seq, 0u) << "no lane kept the fields of its last record";
  // Older versions' records start a lane slot and name the volume alone.
  off -= (off - sb.lane_offset) % image::kLaneSlot;
  r.valid = image::kRedoValid;
  r.volume = image::RecordSlot(r);
  auto set_version = [&](uint32_t v) {
    sb.version = v;
    image::SealSuperblock(sb);
    Pwrite(&sb, sizeof sb, sb.backup_offset);
    Pwrite(&sb, sizeof sb, 0);
  };
  for (uint32_t v : {3u, 4u}) {
    SCOPED_TRACE("version " + std::to_string(v));
    r.checksum = image::RecordChecksum(r, v);
    ASSERT_NE(r.checksum, image::RecordChecksum(r, v == 3 ? 4 : 3));
    set_version(v);
    Pwrite(&r, sizeof r, off);
    {
      auto img = Image::Open(path_);
      ASSERT_TRUE(img.ok()) << img.status().ToString();
      EXPECT_EQ(img->Info()->recovered_records, 1u);
      std::vector<uint8_t> got(3 * 4096);
      ASSERT_TRUE(img->Read(0, got.data(), got.size()).ok());
      EXPECT_EQ(got, std::vector<uint8_t>(got.size(), 1));
      EXPECT_TRUE(img->Check()->clean());
    }
    EXPECT_EQ(ReadSb(0).version, image::kVersion);
    EXPECT_EQ(ReadSb(sb.backup_offset).version, image::kVersion);
    // Upgraded images take writes the one-fence way.
    auto img = Image::Open(path_);
    ASSERT_TRUE(img.ok()) << img.status().ToString();
    std::vector<uint8_t> ones(4096, 1);
    ASSERT_TRUE(img->Write(4096, ones.data(), ones.size()).ok());
    EXPECT_TRUE(img->Check()->clean());
  }
  r.checksum = image::RecordChecksum(r, 3);
  Pwrite(&r, sizeof r, off);
  auto img = Image::Open(path_);
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  EXPECT_EQ(img->Info()->recovered_records, 0u);
  EXPECT_TRUE(img->Check()->clean());
}

TEST_F(ImageCorruptTest, CorruptRedoRecordIsRejected) {
  image::Superblock sb = ReadSb(0);
  image::RedoRecord r{};
  r.valid = image::kRedoValid;
  r.lba = sb.virtual_blocks + 1;
  r.new_entry = image::MakeEntry(0);
  r.ref_new = 1;
  image::SealRecord(r);
  Pwrite(&r, sizeof r, sb.lane_offset + image::kLaneSlot);
  auto img = Image::Open(path_);
  EXPECT_EQ(img.status().kind(), ErrorKind::kCorruption);
  EXPECT_NE(img.status().message().find("lane 1"), std::string::npos)
      << img.status().message();
  // A torn record (bad checksum) is ignored and cleared.
  r.checksum ^= 1;
  Pwrite(&r, sizeof r, sb.lane_offset + image::kLaneSlot);
  img = Image::Open(path_);
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  EXPECT_TRUE(img->Check()->clean());
}

}  // namespace
}  // namespace daxstore
