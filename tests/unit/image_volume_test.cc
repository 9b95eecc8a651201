// Snapshots and clones: frozen snapshot contents, copy-on-write clones,
// block sharing, space reclaimed by delete, Check over shared blocks, the
// process lock.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "daxstore/image.h"
#include "image/format.h"
#include "testing/temp_dir.h"

namespace daxstore {
namespace {

using testing::TempDir;

constexpr uint64_t kBs = 4096;

std::vector<uint8_t> Fill(uint8_t c, size_t n = kBs) {
  return std::vector<uint8_t>(n, c);
}

// Cache-line flushes instead of msync: fast, and what pmem does.
MapOptions Emulated() {
  MapOptions mo;
  mo.emulate = PersistenceDomain::kMemoryController;
  return mo;
}

class ImageVolumeTest : public ::testing::Test {
 protected:
  Image Make(uint32_t max_volumes = 4, uint64_t blocks = 64,
             uint64_t data_blocks = 0) {
    ImageOptions o;
    o.virtual_size = blocks * kBs;
    o.lanes = 4;
    o.max_volumes = max_volumes;
    o.data_blocks = data_blocks;
    auto img = Image::Create(path_, o, Emulated());
    EXPECT_TRUE(img.ok()) << img.status().ToString();
    return std::move(img).value();
  }
  static uint64_t Allocated(const Image& img) {
    return img.Info()->allocated_blocks;
  }
  static std::vector<uint8_t> ReadBlock(const Image& img, uint64_t b) {
    std::vector<uint8_t> v(kBs);
    EXPECT_TRUE(img.Read(b * kBs, v.data(), kBs).ok());
    return v;
  }
  static void Put(Image& img, uint64_t b, uint8_t c) {
    auto v = Fill(c);
    ASSERT_TRUE(img.Write(b * kBs, v.data(), kBs).ok());
  }
  static VolumeInfo Find(const Image& img, const std::string& name) {
    auto vols = img.Volumes();
    EXPECT_TRUE(vols.ok());
    for (const VolumeInfo& v : *vols) {
      if (v.name == name) return v;
    }
    ADD_FAILURE() << "no volume " << name;
    return {};
  }

  TempDir dir_;
  std::string path_ = dir_ / "disk.img";
};

TEST_F(ImageVolumeTest, DefaultVolumeIsBase) {
  Image img = Make();
  EXPECT_EQ(img.volume(), "base");
  auto vols = img.Volumes();
  ASSERT_TRUE(vols.ok());
  ASSERT_EQ(vols->size(), 1u);
  EXPECT_EQ((*vols)[0].name, "base");
  EXPECT_FALSE((*vols)[0].snapshot);
  EXPECT_EQ((*vols)[0].parent, "");
  EXPECT_GT((*vols)[0].created_unix_ns, 0u);
}

TEST_F(ImageVolumeTest, SnapshotIsFrozenWhileBaseChanges) {
  Image img = Make();
  Put(img, 1, 0xa1);
  Put(img, 2, 0xa2);
  ASSERT_TRUE(img.Snapshot("s1").ok());
  EXPECT_EQ(Allocated(img), 2u);  // nothing copied yet
  Put(img, 1, 0xb1);
  ASSERT_TRUE(img.Discard(2 * kBs, kBs).ok());
  Put(img, 3, 0xb3);
  auto snap = img.OpenVolume("s1");
  ASSERT_TRUE(snap.ok()) << snap.status().ToString();
  EXPECT_EQ(snap->volume(), "s1");
  EXPECT_TRUE(snap->read_only());
  EXPECT_FALSE(img.read_only());
  EXPECT_EQ(ReadBlock(*snap, 1), Fill(0xa1));
  EXPECT_EQ(ReadBlock(*snap, 2), Fill(0xa2));
  EXPECT_EQ(ReadBlock(*snap, 3), Fill(0));
  EXPECT_EQ(ReadBlock(img, 1), Fill(0xb1));
  EXPECT_EQ(ReadBlock(img, 2), Fill(0));
  // a1, a2 (snapshot), b1, b3 (base).
  EXPECT_EQ(Allocated(img), 4u);
  VolumeInfo s1 = Find(img, "s1");
  EXPECT_TRUE(s1.snapshot);
  EXPECT_EQ(s1.parent, "base");
  EXPECT_EQ(s1.mapped_blocks, 2u);
  EXPECT_EQ(s1.unique_blocks, 2u);

  // Writes through a snapshot fail and change nothing.
  auto v = Fill(0xee);
  Status st = snap->Write(kBs, v.data(), kBs);
  EXPECT_EQ(st.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(st.message().find("read-only snapshot"), std::string::npos);
  EXPECT_EQ(snap->WriteZeroes(0, kBs).kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(ReadBlock(*snap, 1), Fill(0xa1));
  EXPECT_TRUE(img.Check()->clean());
}

TEST_F(ImageVolumeTest, CloneReadsSnapshotAndWritesCopyOnWrite) {
  Image img = Make();
  for (uint64_t b = 0; b < 8; b++) Put(img, b, static_cast<uint8_t>(b + 1));
  ASSERT_TRUE(img.Snapshot("gold").ok());
  ASSERT_TRUE(img.Clone("gold", "vm1").ok());
  ASSERT_TRUE(img.Clone("gold", "vm2").ok());
  EXPECT_EQ(Allocated(img), 8u);
  auto vm1 = img.OpenVolume("vm1");
  auto vm2 = img.OpenVolume("vm2");
  ASSERT_TRUE(vm1.ok() && vm2.ok());
  EXPECT_FALSE(vm1->read_only());
  for (uint64_t b = 0; b < 8; b++) {
    EXPECT_EQ(ReadBlock(*vm1, b), Fill(static_cast<uint8_t>(b + 1)));
  }
  // A partial write to a shared block copies the rest of the block.
  std::vector<uint8_t> x(100, 0x77);
  ASSERT_TRUE(vm1->Write(3 * kBs + 10, x.data(), x.size()).ok());
  auto want = Fill(4);
  std::memset(want.data() + 10, 0x77, 100);
  EXPECT_EQ(ReadBlock(*vm1, 3), want);
  EXPECT_EQ(ReadBlock(*vm2, 3), Fill(4));
  EXPECT_EQ(ReadBlock(img, 3), Fill(4));
  EXPECT_EQ(ReadBlock(*img.OpenVolume("gold"), 3), Fill(4));
  EXPECT_EQ(Allocated(img), 9u);
  Put(*vm2, 5, 0x55);
  EXPECT_EQ(ReadBlock(*vm1, 5), Fill(6));
  EXPECT_EQ(Allocated(img), 10u);
  VolumeInfo c = Find(img, "vm1");
  EXPECT_FALSE(c.snapshot);
  EXPECT_EQ(c.parent, "gold");
  EXPECT_EQ(c.mapped_blocks, 8u);
  EXPECT_EQ(c.unique_blocks, 1u);
  EXPECT_EQ(Find(img, "gold").unique_blocks, 0u);
  // Cloning a volume that is not a snapshot is refused.
  EXPECT_EQ(img.Clone("vm1", "vm3").kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(img.Clone("nope", "vm3").kind(), ErrorKind::kNotFound);
  EXPECT_TRUE(img.Check()->clean());
}

TEST_F(ImageVolumeTest, TwentyClonesOfAGoldenImageShareBlocks) {
  Image img = Make(22, 256, 1024);
  for (uint64_t b = 0; b < 200; b++) Put(img, b, static_cast<uint8_t>(b));
  ASSERT_TRUE(img.Snapshot("golden").ok());
  const uint64_t base = Allocated(img);
  EXPECT_EQ(base, 199u);  // block 0 is all zeros: a hole
  std::vector<Image> vms;
  for (int i = 0; i < 20; i++) {
    std::string name = "vm" + std::to_string(i);
    ASSERT_TRUE(img.Clone("golden", name).ok()) << name;
    auto h = img.OpenVolume(name);
    ASSERT_TRUE(h.ok());
    vms.push_back(std::move(h).value());
  }
  EXPECT_EQ(Allocated(img), base);
  // Each VM rewrites i+1 blocks: space grows by exactly that.
  uint64_t written = 0;
  for (int i = 0; i < 20; i++) {
    for (int k = 0; k <= i; k++) Put(vms[i], 10 + k, 0xf0 + (i % 16));
    written += i + 1;
  }
  EXPECT_EQ(Allocated(img), base + written);
  EXPECT_EQ(ReadBlock(vms[19], 150), Fill(150));
  EXPECT_EQ(ReadBlock(vms[3], 11), Fill(0xf3));
  EXPECT_EQ(ReadBlock(vms[3], 14), Fill(14));
  // No slot left.
  EXPECT_EQ(img.Snapshot("one-too-many").kind(), ErrorKind::kNoSpace);
  EXPECT_TRUE(img.Check()->clean());
}

TEST_F(ImageVolumeTest, DeleteReclaimsOnlyUnsharedBlocks) {
  Image img = Make();
  for (uint64_t b = 0; b < 10; b++) Put(img, b, 0x10 + b);
  ASSERT_TRUE(img.Snapshot("s").ok());
  for (uint64_t b = 0; b < 10; b++) Put(img, b, 0x20 + b);
  EXPECT_EQ(Allocated(img), 20u);
  ASSERT_TRUE(img.Clone("s", "c").ok());
  {
    auto c = img.OpenVolume("c");
    ASSERT_TRUE(c.ok());
    Put(*c, 0, 0x30);
    EXPECT_EQ(Allocated(img), 21u);
    // Open handles block deletion.
    EXPECT_EQ(img.DeleteVolume("c").kind(), ErrorKind::kBusy);
  }
  // The snapshot's blocks are still used by the clone (all but block 0).
  ASSERT_TRUE(img.DeleteVolume("s").ok());
  EXPECT_EQ(Allocated(img), 20u);
  auto c = img.OpenVolume("c");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(ReadBlock(*c, 0), Fill(0x30));
  EXPECT_EQ(ReadBlock(*c, 7), Fill(0x17));
  EXPECT_EQ(Find(img, "c").parent, "s");
  EXPECT_TRUE(img.Check()->clean());
  c = img.OpenVolume("base");  // drops the handle on "c"
  ASSERT_TRUE(img.DeleteVolume("c").ok());
  EXPECT_EQ(Allocated(img), 10u);
  EXPECT_EQ(img.Volumes()->size(), 1u);
  EXPECT_EQ(img.DeleteVolume("base").kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(img.DeleteVolume("c").kind(), ErrorKind::kNotFound);
  EXPECT_TRUE(img.Check()->clean());
  // Freed blocks are reused.
  for (uint64_t b = 10; b < 60; b++) Put(img, b, 0x40);
  EXPECT_EQ(Allocated(img), 60u);
}

TEST_F(ImageVolumeTest, NamesAreCheckedAndUnique) {
  Image img = Make();
  EXPECT_EQ(img.Snapshot("").kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(img.Snapshot("a/b").kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(img.Snapshot(std::string(64, 'x')).kind(),
            ErrorKind::kInvalidArgument);
  ASSERT_TRUE(img.Snapshot(std::string(63, 'x')).ok());
  EXPECT_EQ(img.Snapshot("base").kind(), ErrorKind::kBusy);
  EXPECT_EQ(img.OpenVolume("missing").status().kind(), ErrorKind::kNotFound);
}

TEST_F(ImageVolumeTest, VolumesSurviveReopen) {
  {
    Image img = Make();
    Put(img, 0, 0x11);
    ASSERT_TRUE(img.Snapshot("s").ok());
    ASSERT_TRUE(img.Clone("s", "c").ok());
    auto c = img.OpenVolume("c");
    Put(*c, 0, 0x22);
  }
  auto c = Image::Open(path_, "c", Emulated());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->volume(), "c");
  EXPECT_EQ(ReadBlock(*c, 0), Fill(0x22));
  auto s = c->OpenVolume("s");
  EXPECT_EQ(ReadBlock(*s, 0), Fill(0x11));
  auto base = c->OpenVolume("");
  EXPECT_EQ(base->volume(), "base");
  EXPECT_EQ(c->Volumes()->size(), 3u);
  EXPECT_EQ(Image::Open(dir_ / "disk.img", "zzz").status().kind(),
            ErrorKind::kBusy);  // this process holds the lock already
}

TEST_F(ImageVolumeTest, RepairFixesAWrongRefcountOnASharedBlock) {
  uint64_t ref_offset = 0;
  {
    Image img = Make();
    Put(img, 4, 0x44);
    ASSERT_TRUE(img.Snapshot("s").ok());
    ASSERT_TRUE(img.Clone("s", "c").ok());
  }
  image::Superblock sb;
  int fd = ::open(path_.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pread(fd, &sb, sizeof sb, 0), (ssize_t)sizeof sb);
  ref_offset = sb.ref_offset;
  // The one written block is data block 0, shared three ways.
  uint32_t ref = 0;
  ASSERT_EQ(::pread(fd, &ref, 4, ref_offset), 4);
  EXPECT_EQ(ref, 3u);
  ref = 2;
  ASSERT_EQ(::pwrite(fd, &ref, 4, ref_offset), 4);
  ::close(fd);
  auto img = Image::Open(path_, Emulated());
  ASSERT_TRUE(img.ok());
  auto rep = img->Check();
  ASSERT_TRUE(rep.ok());
  ASSERT_FALSE(rep->clean());
  EXPECT_EQ(rep->overcommitted_blocks, 1u);
  EXPECT_NE(rep->findings[0].find("used twice"), std::string::npos);
  ASSERT_TRUE(img->Check(true)->repaired);
  EXPECT_TRUE(img->Check()->clean());
  EXPECT_EQ(Find(*img, "c").mapped_blocks, 1u);
}

TEST_F(ImageVolumeTest, VersionTwoOpensAndIsUpgradedByAReadWriteOpen) {
  {
    Image img = Make();
    std::vector<uint8_t> ones(4096, 1);
    ASSERT_TRUE(img.Write(0, ones.data(), 4096).ok());
  }
  auto set_version = [&](uint32_t v) {
    image::Superblock sb;
    int fd = ::open(path_.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pread(fd, &sb, sizeof sb, 0), (ssize_t)sizeof sb);
    sb.version = v;
    image::SealSuperblock(sb);
    ASSERT_EQ(::pwrite(fd, &sb, sizeof sb, 0), (ssize_t)sizeof sb);
    ASSERT_EQ(::pwrite(fd, &sb, sizeof sb, sb.backup_offset),
              (ssize_t)sizeof sb);
    ::close(fd);
  };
  auto version = [&] {
    image::Superblock sb, backup;
    int fd = ::open(path_.c_str(), O_RDONLY);
    EXPECT_EQ(::pread(fd, &sb, sizeof sb, 0), (ssize_t)sizeof sb);
    EXPECT_EQ(::pread(fd, &backup, sizeof sb, sb.backup_offset),
              (ssize_t)sizeof sb);
    ::close(fd);
    EXPECT_EQ(sb.version, backup.version);
    return sb.version;
  };
  set_version(2);
  MapOptions ro = Emulated();
  ro.access = Access::kReadOnly;
  {
    auto img = Image::Open(path_, ro);
    ASSERT_TRUE(img.ok()) << img.status().ToString();
    std::vector<uint8_t> got(4096);
    ASSERT_TRUE(img->Read(0, got.data(), 4096).ok());
    EXPECT_EQ(got[0], 1);
  }
  EXPECT_EQ(version(), 2u);  // a read-only open changes nothing
  {
    auto img = Image::Open(path_, Emulated());
    ASSERT_TRUE(img.ok()) << img.status().ToString();
    EXPECT_TRUE(img->Check()->clean());
  }
  EXPECT_EQ(version(), image::kVersion);
  // A newer format is refused with what to do.
  set_version(image::kVersion + 1);
  auto img = Image::Open(path_, Emulated());
  ASSERT_FALSE(img.ok());
  EXPECT_EQ(img.status().kind(), ErrorKind::kUnsupported);
  EXPECT_NE(img.status().message().find("newer daxstore"), std::string::npos)
      << img.status().ToString();
}

TEST_F(ImageVolumeTest, VersionOneIsRefusedClearly) {
  { Make(); }
  image::Superblock sb;
  int fd = ::open(path_.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pread(fd, &sb, sizeof sb, 0), (ssize_t)sizeof sb);
  sb.version = 1;
  image::SealSuperblock(sb);
  ASSERT_EQ(::pwrite(fd, &sb, sizeof sb, 0), (ssize_t)sizeof sb);
  ASSERT_EQ(::pwrite(fd, &sb, sizeof sb, sb.backup_offset), (ssize_t)sizeof sb);
  ::close(fd);
  auto img = Image::Open(path_);
  ASSERT_FALSE(img.ok());
  EXPECT_EQ(img.status().kind(), ErrorKind::kUnsupported);
  EXPECT_NE(img.status().message().find("export and re-import"),
            std::string::npos)
      << img.status().ToString();
}

// Exit code of a child process that opens path_: 0 opened, 2 busy with
// the advice, 1 anything else.
int OpenInChild(const std::string& path, Access access) {
  pid_t pid = ::fork();
  if (pid == 0) {
    MapOptions mo;
    mo.access = access;
    auto other = Image::Open(path, "", mo);
    if (other.ok()) ::_exit(0);
    bool busy =
        other.status().kind() == ErrorKind::kBusy &&
        other.status().message().find("OpenVolume") != std::string::npos;
    ::_exit(busy ? 2 : 1);
  }
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
    return -1;
  }
  return WEXITSTATUS(status);
}

TEST_F(ImageVolumeTest, AnotherProcessIsLockedOut) {
  {
    Image img = Make();
    EXPECT_EQ(OpenInChild(path_, Access::kReadWrite), 2);
    EXPECT_EQ(OpenInChild(path_, Access::kReadOnly), 2);
  }
  // Closed: another process can open it; read-only opens share.
  EXPECT_EQ(OpenInChild(path_, Access::kReadWrite), 0);
  MapOptions ro;
  ro.access = Access::kReadOnly;
  auto reader = Image::Open(path_, "", ro);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ(OpenInChild(path_, Access::kReadOnly), 0);
  EXPECT_EQ(OpenInChild(path_, Access::kReadWrite), 2);
}

// On a sparse image file, snapshots copy only the part of the map that is
// stored, so the file stays small; a slot a deleted volume leaves keeps
// its old entries, and a snapshot taken into it overwrites every one, also
// where its source's map was never stored.
TEST(ImageVolumeSparseTest, SnapshotsOfASparseImageStaySparseAndExact) {
  TempDir dir;
  const std::string path = dir / "sparse.img";
  ImageOptions o;
  o.virtual_size = 4ull << 30;  // 8 MiB of map per volume
  o.max_volumes = 5;
  auto img = Image::Create(path, o);
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  // A clone of an empty snapshot: a map nothing was ever stored in.
  ASSERT_TRUE(img->Snapshot("empty").ok());
  ASSERT_TRUE(img->Clone("empty", "c").ok());
  std::vector<uint8_t> a(kBs, 0xa1), b(kBs, 0xb2), got(kBs);
  const std::vector<uint8_t> zero(kBs, 0);
  const uint64_t far = (3ull << 30) + 5 * kBs;
  ASSERT_TRUE(img->Write(0, a.data(), kBs).ok());
  ASSERT_TRUE(img->Write(far, a.data(), kBs).ok());
  ASSERT_TRUE(img->Snapshot("s1").ok());
  ASSERT_TRUE(img->Write(far, b.data(), kBs).ok());
  ASSERT_TRUE(img->Snapshot("s2").ok());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  // Five maps of 8 MiB each, had they been copied whole.
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, 4ull << 20)
      << st.st_blocks;

  // s1's slot, once freed, still holds its entries; c's snapshot is taken
  // into it and must read c's holes, not s1's blocks.
  ASSERT_TRUE(img->DeleteVolume("s1").ok());
  auto c = img->OpenVolume("c");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_TRUE(c->Snapshot("cs").ok());
  auto cs = img->OpenVolume("cs");
  ASSERT_TRUE(cs.ok()) << cs.status().ToString();
  ASSERT_TRUE(cs->Read(0, got.data(), kBs).ok());
  EXPECT_EQ(got, zero);
  ASSERT_TRUE(cs->Read(far, got.data(), kBs).ok());
  EXPECT_EQ(got, zero);
  auto s2 = img->OpenVolume("s2");
  ASSERT_TRUE(s2.ok());
  ASSERT_TRUE(s2->Read(0, got.data(), kBs).ok());
  EXPECT_EQ(got, a);
  ASSERT_TRUE(s2->Read(far, got.data(), kBs).ok());
  EXPECT_EQ(got, b);
  auto rep = img->Check();
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->clean()) << (rep->findings.empty() ? "" : rep->findings[0]);
}

}  // namespace
}  // namespace daxstore
