// Every granularity decision: ordinary files, emulated pmem, and device DAX
// on fake sysfs trees (ADR and eADR, 2 MiB and 1 GiB alignment).
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "daxstore/mapping.h"
#include "testing/fake_sysfs.h"

namespace daxstore {
namespace {

using testing::FakeSysfs;
using testing::TempDir;

std::shared_ptr<FakeSysfs> Fake() { return std::make_shared<FakeSysfs>(); }

// A platform whose mount table says every path is on the given file system.
class FakeMounts : public FakeSysfs {
 public:
  FakeMounts(std::string fs, std::string options,
             std::string source = "/dev/pmem0")
      : fs_(std::move(fs)),
        options_(std::move(options)),
        source_(std::move(source)) {}
  Result<MountInfo> MountOf(const std::string&) override {
    return MountInfo{"/mnt/x", fs_, source_, options_};
  }
  // The faked file system, not the one the test's file is really on (the
  // kernel-tier guest's /tmp is tmpfs): memory-only only for tmpfs/ramfs.
  Result<FileSystemInfo> FileSystemOf(int) override {
    if (fs_ == "tmpfs") return FileSystemInfo{TMPFS_MAGIC};
    if (fs_ == "ramfs") return FileSystemInfo{RAMFS_MAGIC};
    return FileSystemInfo{EXT4_SUPER_MAGIC};
  }

 private:
  std::string fs_, options_, source_;
};

TEST(Granularity, OrdinaryFileIsPageGranular) {
  // /var/tmp, not $TMPDIR: a disk-backed file (on tmpfs there is no msync;
  // memory_only_test.cc covers that).
  if (!std::filesystem::is_directory("/var/tmp")) {
    GTEST_SKIP() << "/var/tmp does not exist here";  // kernel-tier guest
  }
  TempDir d("/var/tmp");
  MapOptions o;
  o.create_size = 1 << 20;
  auto m = Mapping::Open(d / "plain.img", o);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->granularity(), Granularity::kPage);
  EXPECT_EQ(m->info().kind, MappingKind::kPageCacheFile);
  EXPECT_FALSE(m->info().map_sync);
  EXPECT_EQ(m->info().flush_instruction, "msync");
  EXPECT_NE(m->info().why.find("page granularity only"), std::string::npos);
  EXPECT_EQ(m->size(), 1u << 20);
}

TEST(Granularity, RequiringCacheLineOnExt4WithoutDaxSaysWhatToDo) {
  TempDir d;
  MapOptions o;
  o.create_size = 1 << 20;
  o.require = Granularity::kCacheLine;
  o.platform = std::make_shared<FakeMounts>("ext4", "rw,relatime");
  std::string path = d / "f.img";
  auto m = Mapping::Open(path, o);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().kind(), ErrorKind::kUnsupported);
  EXPECT_EQ(m.status().message(),
            path +
                " is on ext4 mounted without -o dax: page granularity "
                "only; cache-line granularity was required: mount with "
                "-o dax or use a devdax namespace");
}

TEST(Granularity, OnABlockDeviceWithoutDaxTheAdviceIsFsdaxNotAMountOption) {
  // A sector-mode (BTT) or raw namespace: its queue/dax reads 0 and
  // `mount -o dax` fails with EINVAL, so advising it would mislead.
  TempDir d;
  MapOptions o;
  o.create_size = 1 << 20;
  o.require = Granularity::kCacheLine;
  auto p = std::make_shared<FakeMounts>("ext4", "rw,relatime", "/dev/pmem0s");
  testing::WriteText(p->root() + "/class/block/pmem0s/queue/dax", "0\n");
  o.platform = p;
  std::string path = d / "f.img";
  auto m = Mapping::Open(path, o);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().kind(), ErrorKind::kUnsupported);
  EXPECT_EQ(m.status().message(),
            path +
                " is on ext4 on /dev/pmem0s, a block device without DAX: "
                "page granularity only; cache-line granularity was "
                "required: -o dax needs an fsdax namespace: reconfigure it "
                "(ndctl create-namespace -f -e NAMESPACE -m fsdax) or use a "
                "devdax namespace");
}

TEST(Granularity, TmpfsIsNamedAsHavingNoDax) {
  TempDir d;
  MapOptions o;
  o.create_size = 4096;
  o.require = Granularity::kByte;
  o.platform = std::make_shared<FakeMounts>("tmpfs", "rw");
  auto m = Mapping::Open(d / "f", o);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("is on tmpfs, which has no DAX"),
            std::string::npos)
      << m.status().message();
}

TEST(Granularity, EmulatedPmemFollowsItsDeclaredDomain) {
  TempDir d;
  MapOptions o;
  o.create_size = 4 << 20;
  o.emulate = PersistenceDomain::kMemoryController;
  auto adr = Mapping::Open(d / "adr", o);
  ASSERT_TRUE(adr.ok()) << adr.status().ToString();
  EXPECT_EQ(adr->granularity(), Granularity::kCacheLine);
  EXPECT_EQ(adr->info().kind, MappingKind::kEmulated);
  EXPECT_NE(adr->info().flush_instruction, "msync");
  // Large mappings are 2 MiB aligned so pmem can use huge pages.
  EXPECT_EQ(reinterpret_cast<uintptr_t>(adr->data()) % (2 << 20), 0u);

  o.emulate = PersistenceDomain::kCpuCache;
  o.require = Granularity::kByte;
  auto eadr = Mapping::Open(d / "eadr", o);
  ASSERT_TRUE(eadr.ok()) << eadr.status().ToString();
  EXPECT_EQ(eadr->granularity(), Granularity::kByte);
  EXPECT_EQ(eadr->info().flush_instruction, "none");
}

TEST(Granularity, RequiringByteOnAdrExplainsEadr) {
  TempDir d;
  MapOptions o;
  o.create_size = 4096;
  o.emulate = PersistenceDomain::kMemoryController;
  o.require = Granularity::kByte;
  auto m = Mapping::Open(d / "f", o);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("cpu_cache"), std::string::npos);
}

// A sparse file stands in for the device's memory.
std::string Backing(const TempDir& d, uint64_t size) {
  std::string path = d / "dax-backing";
  std::ofstream(path).close();
  std::filesystem::resize_file(path, size);
  return path;
}

TEST(Granularity, DeviceDaxOnAdrIsCacheLineAndAlignedToTheDevice) {
  TempDir d;
  auto p = Fake();
  p->AddRegion(0, "memory_controller");
  std::string dev = Backing(d, 2ull << 30);
  p->AddDeviceDax(dev, 0, 252, 0, 2ull << 30, 1ull << 30);
  MapOptions o;
  o.platform = p;
  auto m = Mapping::Open(dev, o);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->info().kind, MappingKind::kDeviceDax);
  EXPECT_EQ(m->granularity(), Granularity::kCacheLine);
  EXPECT_EQ(m->size(), 2ull << 30);
  EXPECT_EQ(m->info().alignment, 1ull << 30);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(m->data()) % (1ull << 30), 0u);
  EXPECT_EQ(m->info().region, "region0");
  ASSERT_TRUE(m->info().domain.has_value());
  EXPECT_EQ(*m->info().domain, PersistenceDomain::kMemoryController);
}

TEST(Granularity, DeviceDaxOnEadrIsByte) {
  TempDir d;
  auto p = Fake();
  p->AddRegion(0, "cpu_cache");
  p->AddRegion(1, "cpu_cache");
  std::string dev = Backing(d, 4 << 20);
  p->AddDeviceDax(dev, 1, 252, 3, 4 << 20, 2 << 20);
  MapOptions o;
  o.platform = p;
  o.require = Granularity::kByte;
  auto m = Mapping::Open(dev, o);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->granularity(), Granularity::kByte);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(m->data()) % (2 << 20), 0u);
}

TEST(Granularity, OneAdrRegionDeniesByteGranularity) {
  TempDir d;
  auto p = Fake();
  p->AddRegion(0, "cpu_cache");
  p->AddRegion(1, "memory_controller");
  std::string dev = Backing(d, 4 << 20);
  p->AddDeviceDax(dev, 0, 252, 3, 4 << 20, 2 << 20);
  MapOptions o;
  o.platform = p;
  auto m = Mapping::Open(dev, o);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->granularity(), Granularity::kCacheLine);
}

TEST(Granularity, DeviceDaxWithSizeNotMultipleOfAlignIsRefused) {
  TempDir d;
  auto p = Fake();
  p->AddRegion(0, "memory_controller");
  std::string dev = Backing(d, 3 << 20);
  p->AddDeviceDax(dev, 0, 252, 1, 3 << 20, 2 << 20);
  MapOptions o;
  o.platform = p;
  auto m = Mapping::Open(dev, o);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().kind(), ErrorKind::kInvalidArgument);
}

TEST(Granularity, DeepFlushOfDeviceDaxWritesTheRegionAttribute) {
  TempDir d;
  auto p = Fake();
  p->AddRegion(0, "memory_controller");
  std::string dev = Backing(d, 2 << 20);
  p->AddDeviceDax(dev, 0, 252, 0, 2 << 20, 2 << 20);
  MapOptions o;
  o.platform = p;
  auto m = Mapping::Open(dev, o);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(p->Written("bus/nd/devices/region0/deep_flush"), "");
  std::memset(m->data(), 7, 100);
  ASSERT_TRUE(m->DeepFlush(m->data(), 100).ok());
  EXPECT_EQ(p->Written("bus/nd/devices/region0/deep_flush"), "1");
  EXPECT_FALSE(m->DeepFlush(m->bytes() + m->size() - 10, 20).ok());
}

TEST(Granularity, DeepFlushOfARegionWithoutFlushHintsWritesNothing) {
  // The kernel shows deep_flush as a read-only "0" when the region has no
  // flush hint addresses (QEMU's NVDIMMs): writing it fails with EACCES.
  TempDir d;
  auto p = Fake();
  p->AddRegion(0, "");
  testing::WriteText(p->root() + "/bus/nd/devices/region0/deep_flush", "0\n");
  std::string dev = Backing(d, 2 << 20);
  p->AddDeviceDax(dev, 0, 252, 0, 2 << 20, 2 << 20);
  MapOptions o;
  o.platform = p;
  auto m = Mapping::Open(dev, o);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  std::memset(m->data(), 7, 100);
  Status s = m->DeepFlush(m->data(), 100);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(p->Written("bus/nd/devices/region0/deep_flush"), "");
}

TEST(Granularity, MapSyncOnADaxFileIsCacheLine) {
  // Runs where DAXSTORE_TEST_DAX_DIR names a directory on ext4/xfs -o dax
  // (the kernel tier sets it); elsewhere there is no DAX file system.
  const char* dir = std::getenv("DAXSTORE_TEST_DAX_DIR");
  if (dir == nullptr || *dir == '\0') {
    GTEST_SKIP() << "no DAX file system here: MAP_SYNC needs the kernel "
                    "tier (set DAXSTORE_TEST_DAX_DIR to a -o dax mount)";
  }
  TempDir d(dir);
  MapOptions o;
  o.create_size = 4 << 20;
  o.require = Granularity::kCacheLine;
  auto m = Mapping::Open(d / "sync.img", o);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->info().kind, MappingKind::kDaxFile);
  EXPECT_TRUE(m->info().map_sync);
}

TEST(Mapping, CreatesGrowsButNeverShrinks) {
  TempDir d;
  std::string path = d / "grow";
  MapOptions o;
  o.create_size = 8192;
  o.allocate = true;
  { ASSERT_TRUE(Mapping::Open(path, o).ok()); }
  EXPECT_EQ(std::filesystem::file_size(path), 8192u);
  o.create_size = 4096;
  auto m = Mapping::Open(path, o);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->size(), 8192u);
}

TEST(Mapping, BadInputGetsClearErrors) {
  TempDir d;
  auto missing = Mapping::Open(d / "missing");
  EXPECT_EQ(missing.status().kind(), ErrorKind::kNotFound);

  std::ofstream(d / "empty").close();
  auto empty = Mapping::Open(d / "empty");
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("is empty; give a size"),
            std::string::npos);

  auto dir = Mapping::Open(d.path());
  EXPECT_FALSE(dir.ok());

  MapOptions ro;
  ro.access = Access::kReadOnly;
  ro.create_size = 4096;
  EXPECT_EQ(Mapping::Open(d / "ro", ro).status().kind(),
            ErrorKind::kInvalidArgument);
}

TEST(Mapping, ReadOnlyMappingsReadButCannotBeWritten) {
  TempDir d;
  std::string path = d / "ro";
  {
    MapOptions o;
    o.create_size = 4096;
    auto m = Mapping::Open(path, o);
    ASSERT_TRUE(m.ok());
    m->MemcpyPersist(m->data(), "hello", 6);
  }
  MapOptions o;
  o.access = Access::kReadOnly;
  auto m = Mapping::Open(path, o);
  ASSERT_TRUE(m.ok());
  EXPECT_STREQ(static_cast<const char*>(m->data()), "hello");
  EXPECT_EQ(m->info().access, Access::kReadOnly);
  // The pages are really mapped read-only: a store faults.
  EXPECT_DEATH({ static_cast<volatile char*>(m->data())[0] = 'x'; }, "");
  EXPECT_FALSE(m->ClearBadBlock({0, 8}).ok());
}

TEST(Mapping, MovesKeepTheMappingAlive) {
  TempDir d;
  MapOptions o;
  o.create_size = 4096;
  auto r = Mapping::Open(d / "mv", o);
  ASSERT_TRUE(r.ok());
  Mapping a = std::move(r).value();
  void* p = a.data();
  Mapping b = std::move(a);
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(b.data(), p);
  b.MemsetPersist(b.data(), 1, 4096);
  EXPECT_EQ(b.bytes()[4095], 1);
}

}  // namespace
}  // namespace daxstore
