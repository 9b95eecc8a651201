// Files on DAX file systems under the real kernel: ext4 and xfs mounted
// with -o dax give MAP_SYNC mappings at cache-line granularity; ext4 without
// -o dax is the control and gives page granularity.
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <vector>

#include "daxstore/mapping.h"
#include "guest_env.h"
#include "testing/temp_dir.h"

namespace daxstore {
namespace {

using testing::TempDir;

// A 4 MiB MAP_SYNC mapping in `dir` must be a cache-line DAX file whose
// stores read back after Persist.
void ExpectCacheLineDaxFile(const std::string& dir, const std::string& fs) {
  TempDir d(dir);
  MapOptions o;
  o.create_size = 4 << 20;
  o.require = Granularity::kCacheLine;
  std::string path = d / "sync.img";
  auto m = Mapping::Open(path, o);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  const MappingInfo& in = m->info();
  EXPECT_EQ(in.kind, MappingKind::kDaxFile);
  EXPECT_TRUE(in.map_sync);
  // QEMU's NFIT reports no persistence domain, so this is ADR: flush lines.
  EXPECT_EQ(m->granularity(), Granularity::kCacheLine) << in.why;
  EXPECT_NE(in.flush_instruction, "msync");
  EXPECT_NE(in.flush_instruction, "none");
  EXPECT_EQ(in.region.rfind("region", 0), 0u)
      << fs << ": the mapping did not find its region: '" << in.region << "'";
  EXPECT_EQ(reinterpret_cast<uintptr_t>(m->data()) % (2 << 20), 0u);

  std::vector<uint8_t> pattern(8192);
  std::iota(pattern.begin(), pattern.end(), uint8_t{3});
  m->MemcpyPersist(m->bytes() + 4096, pattern.data(), pattern.size());
  std::memset(m->bytes() + m->size() - 64, 0x5a, 64);
  m->Persist(m->bytes() + m->size() - 64, 64);
  EXPECT_EQ(std::memcmp(m->bytes() + 4096, pattern.data(), pattern.size()), 0);
  EXPECT_TRUE(m->DeepFlush(m->data(), m->size()).ok());

  auto bad = m->BadBlocks();
  ASSERT_TRUE(bad.ok()) << fs << ": " << bad.status().ToString();
  EXPECT_TRUE(bad->empty());
}

TEST(KernelDaxFile, Ext4WithDaxIsCacheLine) {
  DAXSTORE_GUEST_PATH(dir, "DAXSTORE_TEST_EXT4_DAX_DIR");
  ExpectCacheLineDaxFile(dir, "ext4");
}

TEST(KernelDaxFile, XfsWithDaxIsCacheLine) {
  DAXSTORE_GUEST_PATH(dir, "DAXSTORE_TEST_XFS_DAX_DIR");
  ExpectCacheLineDaxFile(dir, "xfs");
}

TEST(KernelDaxFile, Ext4WithoutDaxIsPageGranular) {
  DAXSTORE_GUEST_PATH(dir, "DAXSTORE_TEST_NODAX_DIR");
  TempDir d(dir);
  MapOptions o;
  o.create_size = 1 << 20;
  std::string path = d / "plain.img";
  auto m = Mapping::Open(path, o);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->info().kind, MappingKind::kPageCacheFile);
  EXPECT_EQ(m->granularity(), Granularity::kPage);
  EXPECT_FALSE(m->info().map_sync);
  EXPECT_EQ(m->info().flush_instruction, "msync");
  m->MemsetPersist(m->data(), 0x11, 4096);
  EXPECT_TRUE(m->DeepFlush(m->data(), 4096).ok());
  auto bad = m->BadBlocks();
  ASSERT_TRUE(bad.ok());
  EXPECT_TRUE(bad->empty());
}

TEST(KernelDaxFile, RequiringCacheLineWithoutDaxNamesTheMountOption) {
  DAXSTORE_GUEST_PATH(dir, "DAXSTORE_TEST_NODAX_DIR");
  TempDir d(dir);
  MapOptions o;
  o.create_size = 1 << 20;
  o.require = Granularity::kCacheLine;
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

TEST(KernelSector, FileOnBttIsPageGranularAndTheAdviceIsFsdax) {
  // ext4 on a sector-mode namespace (/dev/pmemNs): -o dax is refused there,
  // so the error must not advise it.
  DAXSTORE_GUEST_PATH(dir, "DAXSTORE_TEST_SECTOR_DIR");
  TempDir d(dir);
  MapOptions o;
  o.create_size = 1 << 20;
  std::string path = d / "f.img";
  auto m = Mapping::Open(path, o);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->granularity(), Granularity::kPage);
  EXPECT_NE(m->info().why.find("a block device without DAX"), std::string::npos)
      << m->info().why;

  o.require = Granularity::kCacheLine;
  auto r = Mapping::Open(path, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("-o dax needs an fsdax namespace"),
            std::string::npos)
      << r.status().message();
  EXPECT_EQ(r.status().message().find("mount with -o dax"), std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace daxstore
