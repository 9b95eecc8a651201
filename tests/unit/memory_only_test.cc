// Files on tmpfs/ramfs keep their data in memory only: the mapping layer
// says so (MappingInfo::memory_only) and makes no msync there, while a file
// on a file system with a backing store keeps the msync path.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "daxstore/mapping.h"
#include "platform/os_platform.h"
#include "platform/page_persist.h"
#include "testing/fake_sysfs.h"

namespace daxstore {
namespace {

using testing::FakeSysfs;
using testing::TempDir;

// A platform that reports a chosen file-system magic for every file (0:
// the platform cannot tell) and a chosen mount for every path.
class FakeFileSystem : public FakeSysfs {
 public:
  FakeFileSystem(uint64_t magic, std::string fs_type)
      : magic_(magic), fs_type_(std::move(fs_type)) {}
  Result<FileSystemInfo> FileSystemOf(int) override {
    if (magic_ == 0) return Platform::FileSystemOf(-1);  // kUnsupported
    return FileSystemInfo{magic_};
  }
  Result<MountInfo> MountOf(const std::string&) override {
    return MountInfo{"/mnt/x", fs_type_, fs_type_, "rw"};
  }

 private:
  uint64_t magic_;
  std::string fs_type_;
};

Result<Mapping> OpenWith(const TempDir& d, std::shared_ptr<Platform> p,
                         std::optional<PersistenceDomain> emulate = {}) {
  MapOptions o;
  o.create_size = 1 << 20;
  o.platform = std::move(p);
  o.emulate = emulate;
  return Mapping::Open(d / "f.img", o);
}

// The mount table's word (independent of fstatfs) on what holds dir.
std::string FsTypeOf(const std::string& dir) {
  auto m = MakeOsPlatform()->MountOf(dir);
  return m.ok() ? m->fs_type : "";
}

TEST(FileSystemInfo, TmpfsAndRamfsAreMemoryOnlyOthersAreNot) {
  EXPECT_TRUE(FileSystemInfo{TMPFS_MAGIC}.memory_only());
  EXPECT_EQ(FileSystemInfo{TMPFS_MAGIC}.memory_fs_name(), "tmpfs");
  EXPECT_TRUE(FileSystemInfo{RAMFS_MAGIC}.memory_only());
  EXPECT_EQ(FileSystemInfo{RAMFS_MAGIC}.memory_fs_name(), "ramfs");
  EXPECT_FALSE(FileSystemInfo{EXT4_SUPER_MAGIC}.memory_only());
  EXPECT_FALSE(FileSystemInfo{XFS_SUPER_MAGIC}.memory_only());
  EXPECT_FALSE(FileSystemInfo{0}.memory_only());
}

TEST(MemoryOnly, TmpfsMappingSaysSoAndHasNothingToMsync) {
  TempDir d;
  auto m = OpenWith(d, std::make_shared<FakeFileSystem>(TMPFS_MAGIC, "tmpfs"));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_TRUE(m->info().memory_only);
  EXPECT_EQ(m->info().kind, MappingKind::kPageCacheFile);
  // Still not pmem: page granularity, so --require cache-line fails.
  EXPECT_EQ(m->granularity(), Granularity::kPage);
  EXPECT_EQ(m->info().flush_instruction, "none");
  EXPECT_NE(m->info().why.find("is on tmpfs, which has no DAX"),
            std::string::npos)
      << m->info().why;
  EXPECT_NE(m->info().why.find("survives a process crash, not a reboot"),
            std::string::npos)
      << m->info().why;
}

TEST(MemoryOnly, RamfsIsMemoryOnlyToo) {
  TempDir d;
  auto m = OpenWith(d, std::make_shared<FakeFileSystem>(RAMFS_MAGIC, "ramfs"));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_TRUE(m->info().memory_only);
  EXPECT_EQ(m->info().flush_instruction, "none");
}

TEST(MemoryOnly, Ext4KeepsMsync) {
  TempDir d;
  auto m =
      OpenWith(d, std::make_shared<FakeFileSystem>(EXT4_SUPER_MAGIC, "ext4"));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_FALSE(m->info().memory_only);
  EXPECT_EQ(m->info().flush_instruction, "msync");
  EXPECT_EQ(m->info().why.find("memory only"), std::string::npos);
}

TEST(MemoryOnly, APlatformThatCannotTellKeepsMsync) {
  TempDir d;
  auto m = OpenWith(d, std::make_shared<FakeFileSystem>(0, "tmpfs"));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_FALSE(m->info().memory_only);
  EXPECT_EQ(m->info().flush_instruction, "msync");
}

TEST(MemoryOnly, EmulatedPmemOnTmpfsIsFlaggedButStillFlushedLikePmem) {
  TempDir d;
  auto m = OpenWith(d, std::make_shared<FakeFileSystem>(TMPFS_MAGIC, "tmpfs"),
                    PersistenceDomain::kMemoryController);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_TRUE(m->info().memory_only);
  EXPECT_EQ(m->info().kind, MappingKind::kEmulated);
  EXPECT_EQ(m->granularity(), Granularity::kCacheLine);
  EXPECT_NE(m->info().flush_instruction, "none");
}

// Unmaps the mapping's second page behind its back: an msync of that page
// then fails with ENOMEM, and the page-granular persist functions abort on
// a failed msync. So Persist there tells whether msync was called.
void UnmapSecondPage(const Mapping& m) {
  ASSERT_EQ(::munmap(m.bytes() + 4096, 4096), 0) << std::strerror(errno);
}

TEST(MemoryOnlyOnTheRealOs, DevShmIsTmpfsAndMakesNoMsync) {
  if (FsTypeOf("/dev/shm") != "tmpfs") {
    GTEST_SKIP() << "/dev/shm is not tmpfs on this machine";
  }
  TempDir d("/dev/shm");
  auto fs = MakeOsPlatform()->Open(d / "probe", O_RDWR | O_CREAT, 0644);
  ASSERT_TRUE(fs.ok()) << fs.status().ToString();
  auto info = MakeOsPlatform()->FileSystemOf(*fs);
  ::close(*fs);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->magic, TMPFS_MAGIC);
  EXPECT_TRUE(info->memory_only());

  auto m = OpenWith(d, nullptr);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_TRUE(m->info().memory_only);
  EXPECT_EQ(m->info().flush_instruction, "none");
  std::memset(m->bytes(), 0x5a, 4096);
  m->Persist(m->bytes(), 4096);
  UnmapSecondPage(*m);
  m->Persist(m->bytes() + 4096, 4096);  // no msync: nothing fails
  EXPECT_TRUE(m->DeepFlush(m->bytes(), 4096).ok());
}

TEST(MemoryOnlyOnTheRealOsDeathTest, DiskFileKeepsMsync) {
  // /var/tmp is disk-backed on Debian (and unlike /tmp, never tmpfs by
  // default), so this keeps the msync path under test wherever TMPDIR is.
  if (!std::filesystem::is_directory("/var/tmp")) {
    GTEST_SKIP() << "/var/tmp does not exist here";  // kernel-tier guest
  }
  if (FsTypeOf("/var/tmp") == "tmpfs" || FsTypeOf("/var/tmp") == "ramfs") {
    GTEST_SKIP() << "/var/tmp is memory-only on this machine";
  }
  TempDir d("/var/tmp");
  auto m = OpenWith(d, nullptr);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_FALSE(m->info().memory_only);
  EXPECT_EQ(m->info().flush_instruction, "msync");
  UnmapSecondPage(*m);
  EXPECT_DEATH(m->Persist(m->bytes() + 4096, 4096), "msync failed");
}

// A mapping of a file on disk-backed /var/tmp (page granularity, msync).
class DiskFilePersistDeathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::is_directory("/var/tmp") ||
        FsTypeOf("/var/tmp") == "tmpfs" || FsTypeOf("/var/tmp") == "ramfs") {
      GTEST_SKIP() << "no disk-backed /var/tmp here";
    }
    d_ = std::make_unique<TempDir>("/var/tmp");
    auto m = OpenWith(*d_, nullptr);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    ASSERT_EQ(m->info().flush_instruction, "msync");
    m_ = std::make_unique<Mapping>(std::move(m).value());
  }
  std::unique_ptr<TempDir> d_;
  std::unique_ptr<Mapping> m_;
};

TEST_F(DiskFilePersistDeathTest, FlushWaitsForDrain) {
  Mapping* m = m_.get();
  UnmapSecondPage(*m);
  // The Flush only notes the page; the Drain's msync finds it unmapped.
  EXPECT_DEATH(
      {
        m->Flush(m->bytes() + 4096, 4096);
        std::fprintf(stderr, "flushed\n");
        m->Drain();
      },
      "flushed(.|\n)*msync failed");
}

TEST_F(DiskFilePersistDeathTest, DrainSyncsOncePerMapping) {
  Mapping* m = m_.get();
  auto g = Mapping::Open(*d_ / "g.img", [] {
    MapOptions o;
    o.create_size = 1 << 20;
    return o;
  }());
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  auto m2 = std::make_unique<Mapping>(std::move(g).value());
  uint8_t* b = m->bytes();
  const uint64_t before = page_persist::SyncCount();
  // Three pages far apart and a copy without a fence: nothing synced yet.
  for (size_t off : {size_t{0}, size_t{64} << 10, size_t{900} << 10}) {
    std::memset(b + off, 0x5a, 100);
    m->Flush(b + off, 100);
  }
  m->MemcpyPersist(b + 8192, "abc", 3, kCopyNoDrain);
  std::memset(m2->bytes() + 4096, 0x6b, 10);
  m2->Flush(m2->bytes() + 4096, 10);
  EXPECT_EQ(page_persist::SyncCount(), before);
  // One msync per mapping.
  m->Drain();
  EXPECT_EQ(page_persist::SyncCount(), before + 2);
  m->Drain();  // nothing left
  EXPECT_EQ(page_persist::SyncCount(), before + 2);
  m->Persist(b + 4096, 1);
  EXPECT_EQ(page_persist::SyncCount(), before + 3);
  m->MemcpyPersist(b + 12288, "def", 3);
  EXPECT_EQ(page_persist::SyncCount(), before + 4);
  // A range noted in a mapping that is gone by the Drain: nothing to sync.
  m2->Flush(m2->bytes(), 10);
  m2.reset();  // unmaps it
  m->Drain();
  EXPECT_EQ(page_persist::SyncCount(), before + 4);
  // The stores are in the file (read through another descriptor).
  int fd = ::open((*d_ / "f.img").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  char got[4] = {};
  ASSERT_EQ(::pread(fd, got, 3, 12288), 3);
  EXPECT_STREQ(got, "def");
  ::close(fd);
}

}  // namespace
}  // namespace daxstore
