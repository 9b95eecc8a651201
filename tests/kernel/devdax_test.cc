// Device DAX under the real kernel: /dev/daxX.Y maps whole, at its
// alignment, with the size sysfs reports.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cstring>

#include "daxstore/mapping.h"
#include "guest_env.h"

namespace daxstore {
namespace {

using kernel::SysfsNumber;

std::string SysfsOf(const std::string& dev) {
  struct stat st {};
  if (::stat(dev.c_str(), &st) != 0) return "";
  return "/sys/dev/char/" + std::to_string(major(st.st_rdev)) + ":" +
         std::to_string(minor(st.st_rdev));
}

TEST(KernelDeviceDax, MapsWholeWithItsAlignment) {
  DAXSTORE_GUEST_PATH(dev, "DAXSTORE_TEST_DEVDAX");
  std::string sys = SysfsOf(dev);
  ASSERT_FALSE(sys.empty()) << dev << " does not exist";
  uint64_t size = SysfsNumber(sys + "/size");
  uint64_t align = SysfsNumber(sys + "/align");
  ASSERT_GT(size, 0u) << sys << "/size";
  ASSERT_GE(align, 4096u) << sys << "/align";

  auto m = Mapping::Open(dev);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->info().kind, MappingKind::kDeviceDax);
  EXPECT_EQ(m->size(), size);
  EXPECT_EQ(m->info().alignment, align);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(m->data()) % align, 0u);
  EXPECT_EQ(m->granularity(), Granularity::kCacheLine) << m->info().why;
  EXPECT_EQ(m->info().region.rfind("region", 0), 0u) << m->info().region;

  // Both ends of the device are reachable and keep what is written.
  const char msg[] = "device dax";
  m->MemcpyPersist(m->data(), msg, sizeof msg);
  m->MemcpyPersist(m->bytes() + m->size() - sizeof msg, msg, sizeof msg);
  EXPECT_STREQ(reinterpret_cast<const char*>(m->data()), msg);
  char back[sizeof msg];
  ASSERT_TRUE(m->Read(m->size() - sizeof msg, back, sizeof back).ok());
  EXPECT_STREQ(back, msg);
}

TEST(KernelDeviceDax, DeepFlushSucceeds) {
  DAXSTORE_GUEST_PATH(dev, "DAXSTORE_TEST_DEVDAX");
  auto m = Mapping::Open(dev);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  std::memset(m->data(), 0x42, 4096);
  Status s = m->DeepFlush(m->data(), 4096);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_FALSE(m->DeepFlush(m->bytes() + m->size() - 8, 16).ok());
}

TEST(KernelDeviceDax, BadBlocksListIsEmpty) {
  DAXSTORE_GUEST_PATH(dev, "DAXSTORE_TEST_DEVDAX");
  auto m = Mapping::Open(dev);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  auto bad = m->BadBlocks();
  ASSERT_TRUE(bad.ok()) << bad.status().ToString();
  EXPECT_TRUE(bad->empty());
}

}  // namespace
}  // namespace daxstore
