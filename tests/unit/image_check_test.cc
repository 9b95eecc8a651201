// Check's repair levels and reports: kLeaks never changes what the guest
// reads, kAll lists exactly the guest LBAs it drops, and CheckReadOnly
// reports what crash recovery will do without writing.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "daxstore/image.h"
#include "image/format.h"
#include "testing/temp_dir.h"

namespace daxstore {
namespace {

using testing::TempDir;

constexpr uint32_t kBlock = 4096;
constexpr uint64_t kPerBlock = kBlock / 512;  // guest LBAs per image block

class ImageCheckTest : public ::testing::Test {
 protected:
  // A 1 MiB image (256 blocks) whose blocks 0..5 hold 1..6.
  void SetUp() override {
    ImageOptions o;
    o.virtual_size = 1 << 20;
    o.lanes = 4;
    auto img = Image::Create(path_, o);
    ASSERT_TRUE(img.ok()) << img.status().ToString();
    for (uint8_t b = 0; b < 6; b++) {
      std::vector<uint8_t> fill(kBlock, b + 1);
      ASSERT_TRUE(img->Write(uint64_t{b} * kBlock, fill.data(), kBlock).ok());
    }
    ASSERT_TRUE(img->Snapshot("snap").ok());
  }
  image::Superblock Sb() {
    image::Superblock sb;
    Pread(&sb, sizeof sb, 0);
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
  // Map slot `slot`'s entry for image block `block`.
  uint64_t EntryOffset(uint32_t slot, uint64_t block) {
    image::Superblock sb = Sb();
    return sb.map_offset + slot * sb.map_slot_bytes + 8 * block;
  }
  void DamageEntry(uint32_t slot, uint64_t block) {
    uint64_t e;
    Pread(&e, sizeof e, EntryOffset(slot, block));
    e |= 1ull << 50;  // a reserved bit
    Pwrite(&e, sizeof e, EntryOffset(slot, block));
  }
  std::string Bytes() {
    std::ifstream in(path_, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }
  // What the guest reads from the volume: every block, or "" where a read
  // fails (a damaged entry).
  std::vector<std::string> Guest(Image& img) {
    std::vector<std::string> out;
    std::string buf(kBlock, '\0');
    for (uint64_t off = 0; off < img.virtual_size(); off += kBlock) {
      out.push_back(img.Read(off, buf.data(), kBlock).ok() ? buf : "");
    }
    return out;
  }

  TempDir dir_;
  std::string path_ = dir_ / "disk.img";
};

TEST_F(ImageCheckTest, LeaksLevelFreesLeakedBlocksOnly) {
  uint32_t one = 1;
  Pwrite(&one, 4, Sb().ref_offset + 4 * (Sb().data_blocks - 1));
  auto img = Image::Open(path_);
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  auto before = Guest(*img);
  auto r = img->Check(CheckRepair::kLeaks);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->leaked_blocks, 1u);
  EXPECT_FALSE(r->corrupt());
  EXPECT_TRUE(r->repaired);
  EXPECT_TRUE(r->dropped.empty());
  EXPECT_TRUE(img->Check()->clean());
  EXPECT_EQ(Guest(*img), before);
}

TEST_F(ImageCheckTest, LeaksLevelLeavesDamagedEntriesAndTheirBlocks) {
  DamageEntry(0, 2);
  const std::string bytes = Bytes();
  {
    auto img = Image::Open(path_);
    ASSERT_TRUE(img.ok()) << img.status().ToString();
    auto before = Guest(*img);
    EXPECT_EQ(before[2], "");  // the damaged entry fails to read
    auto r = img->Check(CheckRepair::kLeaks);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->corrupt());
    EXPECT_EQ(r->bad_entries, 1u);
    EXPECT_FALSE(r->repaired);  // the block the entry named stays allocated
    EXPECT_EQ(Guest(*img), before);
    // What kAll would drop.
    EXPECT_EQ(r->dropped,
              (std::vector<LbaRange>{{"base", 2 * kPerBlock, kPerBlock}}));
  }
  EXPECT_EQ(Bytes(), bytes);
}

TEST_F(ImageCheckTest, AllLevelListsExactlyTheDroppedLbas) {
  DamageEntry(0, 1);
  DamageEntry(0, 2);  // adjacent: one range
  DamageEntry(0, 5);
  DamageEntry(1, 3);  // the snapshot's own map
  auto img = Image::Open(path_);
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  auto r = img->Check(CheckRepair::kAll);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->repaired);
  EXPECT_EQ(r->logical_block_size, 512u);
  const std::vector<LbaRange> want = {
      {"base", 1 * kPerBlock, 2 * kPerBlock},
      {"base", 5 * kPerBlock, kPerBlock},
      {"snap", 3 * kPerBlock, kPerBlock},
  };
  EXPECT_EQ(r->dropped, want);
  auto after = img->Check();
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->clean()) << after->findings.front();
  // Dropped blocks read as zeros; every other block kept its data.
  auto guest = Guest(*img);
  for (uint64_t b = 0; b < 6; b++) {
    const bool dropped = b == 1 || b == 2 || b == 5;
    EXPECT_EQ(guest[b], std::string(kBlock, dropped ? 0 : char(b + 1))) << b;
  }
  auto snap = img->OpenVolume("snap");
  ASSERT_TRUE(snap.ok());
  auto snap_guest = Guest(*snap);
  EXPECT_EQ(snap_guest[3], std::string(kBlock, 0));
  EXPECT_EQ(snap_guest[1], std::string(kBlock, 2));
}

TEST_F(ImageCheckTest, RepairNeedsAWritableOpen) {
  MapOptions ro;
  ro.access = Access::kReadOnly;
  auto img = Image::Open(path_, ro);
  ASSERT_TRUE(img.ok());
  EXPECT_EQ(img->Check(CheckRepair::kLeaks).status().kind(),
            ErrorKind::kInvalidArgument);
}

TEST_F(ImageCheckTest, CreateOverAnImageChangesNothing) {
  const std::string bytes = Bytes();
  ImageOptions bigger;
  bigger.virtual_size = 8 << 20;  // would grow the file
  auto img = Image::Create(path_, bigger);
  EXPECT_EQ(img.status().kind(), ErrorKind::kBusy);
  EXPECT_EQ(Bytes(), bytes);
}

// A writer that dies before closing: its second write of block 0 freed a
// block, so its lane keeps a valid redo record, as after a crash.
void CrashAfterRewrite(const std::string& path) {
  pid_t pid = ::fork();
  if (pid == 0) {
    auto img = Image::Open(path);
    if (!img.ok()) ::_exit(2);
    std::vector<uint8_t> a(kBlock, 0xa1), b(kBlock, 0xb2);
    if (!img->Write(0, a.data(), kBlock).ok()) ::_exit(3);
    if (!img->Write(0, b.data(), kBlock).ok()) ::_exit(4);
    ::_exit(0);  // no destructor: the kept record stays valid
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST_F(ImageCheckTest, CheckReadOnlyReportsPendingRecoveryWithoutWriting) {
  // Without the snapshot, block 0's old data block is freed by the write.
  std::string solo = dir_ / "solo.img";
  ImageOptions o;
  o.virtual_size = 1 << 20;
  o.lanes = 4;
  ASSERT_TRUE(Image::Create(solo, o).ok());
  CrashAfterRewrite(solo);
  MapOptions ro;
  ro.access = Access::kReadOnly;
  {
    // The kept record is applied already (map and refcounts hold its
    // values): a read-only open reads the last write without replaying.
    auto applied = Image::Open(solo, ro);
    ASSERT_TRUE(applied.ok()) << applied.status().ToString();
    std::vector<uint8_t> got(kBlock);
    ASSERT_TRUE(applied->Read(0, got.data(), kBlock).ok());
    EXPECT_EQ(got, std::vector<uint8_t>(kBlock, 0xb2));
  }

  path_ = solo;
  const std::string bytes = Bytes();
  auto r = Image::CheckReadOnly(solo);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->pending.size(), 1u);
  EXPECT_EQ(r->pending[0].range, (LbaRange{"base", 0, kPerBlock}));
  EXPECT_EQ(r->pending[0].action, "redo");
  EXPECT_FALSE(r->clean());
  EXPECT_FALSE(r->corrupt());
  EXPECT_EQ(r->leaked_blocks, 0u);  // refcounts as recovery leaves them
  EXPECT_EQ(Bytes(), bytes);

  // Put the old entry back: the write's map update did not reach media
  // (it waits for the lane's next fence), but its data and record did, so
  // the write was acknowledged and recovery redoes it. A read-only open
  // reads what recovery will leave (the new data) and writes nothing.
  image::Superblock sb = Sb();
  image::RedoRecord rec{};
  uint64_t rec_off = 0;
  for (uint32_t i = 0; i < sb.lanes * image::kLaneRecords; i++) {
    image::RedoRecord r{};
    const uint64_t off = sb.lane_offset +
                         i / image::kLaneRecords * image::kLaneSlot +
                         i % image::kLaneRecords * sizeof r;
    Pread(&r, sizeof r, off);
    if (r.valid && r.seq > rec.seq) {
      rec = r;
      rec_off = off;
    }
  }
  ASSERT_TRUE(rec.valid);
  ASSERT_NE(rec_off, 0u);
  Pwrite(&rec.old_entry, 8, EntryOffset(0, 0));
  r = Image::CheckReadOnly(solo);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->pending.size(), 1u);
  EXPECT_EQ(r->pending[0].action, "redo");
  EXPECT_EQ(r->leaked_blocks + r->overcommitted_blocks, 0u);
  const std::string before_ro = Bytes();
  {
    auto ro_img = Image::Open(solo, ro);
    ASSERT_TRUE(ro_img.ok()) << ro_img.status().ToString();
    std::vector<uint8_t> got(kBlock);
    ASSERT_TRUE(ro_img->Read(0, got.data(), kBlock).ok());
    EXPECT_EQ(got, std::vector<uint8_t>(kBlock, 0xb2));
  }
  EXPECT_EQ(Bytes(), before_ro);

  // The same with the new block torn (one byte of the data never reached
  // media): the record fails its data checksum, the write was never
  // acknowledged, and both a read-only open and recovery keep the old data.
  const std::string torn_path = dir_ / "torn.img";
  std::filesystem::copy_file(solo, torn_path);
  path_ = torn_path;
  const uint64_t new_block_off =
      sb.data_offset + image::EntryPba(rec.new_entry) * sb.block_size;
  uint8_t torn = 0x5a;
  Pwrite(&torn, 1, new_block_off + 100);
  // Torn data means the fence after it never completed, so none of the
  // apply's stores (made after that fence) is on media either.
  const uint32_t ref_new = 0, ref_old = 1;
  Pwrite(&ref_new, 4, sb.ref_offset + 4 * image::EntryPba(rec.new_entry));
  Pwrite(&ref_old, 4, sb.ref_offset + 4 * image::EntryPba(rec.old_entry));
  r = Image::CheckReadOnly(torn_path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->pending.empty());  // recovery will not change anything
  EXPECT_EQ(r->leaked_blocks + r->overcommitted_blocks, 0u);
  {
    auto ro_img = Image::Open(torn_path, ro);
    ASSERT_TRUE(ro_img.ok()) << ro_img.status().ToString();
    std::vector<uint8_t> got(kBlock);
    ASSERT_TRUE(ro_img->Read(0, got.data(), kBlock).ok());
    EXPECT_EQ(got, std::vector<uint8_t>(kBlock, 0xa1));
  }
  {
    auto img = Image::Open(torn_path);  // read-write: recovery
    ASSERT_TRUE(img.ok()) << img.status().ToString();
    EXPECT_EQ(img->Info()->recovered_records, 0u);
    EXPECT_TRUE(img->Check()->clean());
    std::vector<uint8_t> got(kBlock);
    ASSERT_TRUE(img->Read(0, got.data(), kBlock).ok());
    EXPECT_EQ(got, std::vector<uint8_t>(kBlock, 0xa1));
  }

  // The complete record: read-write recovery redoes it.
  auto img = Image::Open(solo);  // read-write: recovery
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  EXPECT_EQ(img->Info()->recovered_records, 1u);
  EXPECT_TRUE(img->Check()->clean());
  std::vector<uint8_t> got(kBlock);
  ASSERT_TRUE(img->Read(0, got.data(), kBlock).ok());
  EXPECT_EQ(got, std::vector<uint8_t>(kBlock, 0xb2));
}

TEST_F(ImageCheckTest, CheckReadOnlyOfAnImageInUseIsBusy) {
  auto img = Image::Open(path_);
  ASSERT_TRUE(img.ok());
  pid_t pid = ::fork();
  if (pid == 0) {
    auto r = Image::CheckReadOnly(path_);
    ::_exit(!r.ok() && r.status().kind() == ErrorKind::kBusy ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

}  // namespace
}  // namespace daxstore
