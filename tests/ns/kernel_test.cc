// What the kernel backend can show without an NVDIMM bus: it says which
// module is missing instead of failing obscurely.
#include <gtest/gtest.h>

#include <filesystem>

#include "daxstore/namespace.h"
#include "ns/kernel_probe.h"
#include "testing/fake_sysfs.h"

namespace daxstore {
namespace {

using testing::FakeSysfs;

TEST(KernelBackend, NoLibnvdimmNamesTheModules) {
  auto sys = std::make_shared<FakeSysfs>();
  std::filesystem::remove_all(sys->root() + "/bus/nd");
  EXPECT_FALSE(KernelBusPresent(*sys));
  auto b = OpenKernelBackend(sys);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().kind(), ErrorKind::kUnsupported);
  EXPECT_NE(b.status().message().find("libnvdimm"), std::string::npos);
  EXPECT_NE(b.status().message().find("nd_e820"), std::string::npos);
}

TEST(KernelBackend, LibnvdimmWithoutABusAsksForNfitOrE820) {
  auto sys = std::make_shared<FakeSysfs>();
  std::filesystem::create_directories(sys->root() + "/bus/nd/devices");
  auto b = OpenKernelBackend(sys);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find(
                "no NVDIMM bus: is the nfit or nd_e820 module loaded?"),
            std::string::npos)
      << b.status().message();
}

TEST(KernelBackend, SeesABusInSysfs) {
  auto sys = std::make_shared<FakeSysfs>();
  std::filesystem::create_directories(sys->root() + "/bus/nd/devices/ndbus0");
  EXPECT_TRUE(KernelBusPresent(*sys));
  EXPECT_TRUE(ns::CheckKernelBus(*sys).ok());
}

}  // namespace
}  // namespace daxstore
