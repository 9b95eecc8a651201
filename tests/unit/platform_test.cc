// The OS seam: mount-table parsing, sysfs access under a fake root, CPU
// probing, and the sysfs facts the mapping layer reads.
#include <gtest/gtest.h>

#include <filesystem>

#include "map/detect.h"
#include "testing/fake_sysfs.h"

namespace daxstore {
namespace {

using testing::FakeSysfs;
using testing::WriteText;

constexpr char kMountInfo[] =
    "22 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
    "30 22 0:25 / /tmp rw,nosuid - tmpfs tmpfs rw,size=100k\n"
    "41 22 259:0 / /mnt/pmem0 rw,relatime - ext4 /dev/pmem0 rw,dax=always\n"
    "42 22 259:1 / /mnt/pmem\\0401 rw - xfs /dev/pmem1 rw,dax\n"
    "43 22 259:2 / /mnt/plain rw - xfs /dev/pmem2 rw,attr2\n";

TEST(FindMount, PicksTheLongestPrefixAndReadsDaxOptions) {
  auto m = FindMount(kMountInfo, "/mnt/pmem0/vm/disk.img");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->mount_point, "/mnt/pmem0");
  EXPECT_EQ(m->fs_type, "ext4");
  EXPECT_EQ(m->source, "/dev/pmem0");
  EXPECT_TRUE(m->dax());

  m = FindMount(kMountInfo, "/mnt/pmem 1/f");  // \040 is a space
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->fs_type, "xfs");
  EXPECT_TRUE(m->dax());

  m = FindMount(kMountInfo, "/mnt/plain/f");
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(m->dax());

  m = FindMount(kMountInfo, "/mnt/pmem01/f");  // not under /mnt/pmem0
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->mount_point, "/");
  EXPECT_EQ(FindMount(kMountInfo, "/tmp")->fs_type, "tmpfs");
}

TEST(OsPlatform, ReadsListsAndResolvesUnderItsRoot) {
  FakeSysfs p;
  p.AddRegion(0, "memory_controller");
  p.AddRegion(1, "cpu_cache");
  EXPECT_EQ(*p.ReadSysfs("bus/nd/devices/region1/persistence_domain"),
            "cpu_cache");
  auto names = p.ListSysfs("bus/nd/devices");
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"region0", "region1"}));
  EXPECT_EQ(*p.ResolveSysfs("bus/nd/devices/region0"),
            "/devices/platform/ndbus0/region0");
  EXPECT_EQ(p.ReadSysfs("bus/nd/devices/region9/size").status().kind(),
            ErrorKind::kNotFound);
  ASSERT_TRUE(p.WriteSysfs("bus/nd/devices/region0/deep_flush", "1").ok());
  EXPECT_EQ(p.Written("bus/nd/devices/region0/deep_flush"), "1");
}

TEST(OsPlatform, CpuProbeNamesAFlushInstruction) {
  CpuFeatures f = MakeOsPlatform()->Cpu();
  // Every x86-64 CPU has SSE2 and CLFLUSH.
  EXPECT_TRUE(f.sse2);
  EXPECT_TRUE(f.clflush);
  std::string best = f.flush_instruction();
  EXPECT_TRUE(best == "clwb" || best == "clflushopt" || best == "clflush");
  if (f.clwb) {
    EXPECT_EQ(best, "clwb");
  }
}

TEST(Detect, RegionOfFindsTheInnermostRegion) {
  EXPECT_EQ(map::RegionOf("/devices/LNXSYSTM:00/ndbus0/region3/dax3.0/dax3.0"),
            "region3");
  EXPECT_EQ(map::RegionOf("/devices/virtual/block/loop0"), "");
  EXPECT_EQ(map::RegionOf("/devices/x/regionX/region12"), "region12");
}

TEST(Detect, EadrNeedsEveryRegionOnCpuCache) {
  FakeSysfs none;
  EXPECT_FALSE(map::AllRegionsCpuCache(none));  // no regions at all

  FakeSysfs eadr;
  eadr.AddRegion(0, "cpu_cache");
  eadr.AddRegion(1, "cpu_cache");
  EXPECT_TRUE(map::AllRegionsCpuCache(eadr));

  FakeSysfs mixed;
  mixed.AddRegion(0, "cpu_cache");
  mixed.AddRegion(1, "memory_controller");
  EXPECT_FALSE(map::AllRegionsCpuCache(mixed));

  FakeSysfs unknown;  // an old kernel without the attribute
  unknown.AddRegion(0, "");
  EXPECT_FALSE(map::AllRegionsCpuCache(unknown));
  EXPECT_FALSE(map::RegionDomain(unknown, "region0").has_value());
}

TEST(Detect, ProbesDeviceDaxSizeAlignAndRegion) {
  FakeSysfs p;
  p.AddRegion(1, "memory_controller");
  p.AddDeviceDax("/nonexistent", 1, 252, 7, 4ull << 30, 1ull << 30);
  auto f = map::ProbeDeviceDax(p, 252, 7);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->name, "dax1.0");
  EXPECT_EQ(f->region, "region1");
  EXPECT_EQ(f->size, 4ull << 30);
  EXPECT_EQ(f->align, 1ull << 30);

  auto missing = map::ProbeDeviceDax(p, 252, 8);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("device_dax"), std::string::npos);
}

TEST(Detect, RejectsGarbageInSysfs) {
  FakeSysfs p;
  p.AddRegion(0, "memory_controller");
  p.AddDeviceDax("/nonexistent", 0, 252, 1, 1 << 21, 3000);
  auto f = map::ProbeDeviceDax(p, 252, 1);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().kind(), ErrorKind::kCorruption);

  WriteText(p.root() + "/dev/char/252:1/size", "lots\n");
  f = map::ProbeDeviceDax(p, 252, 1);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("not a number"), std::string::npos);
}

}  // namespace
}  // namespace daxstore
