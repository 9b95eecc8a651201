// The real ndctl's JSON, parsed and checked against what the guest script
// created and what a daxstore mapping sees: the reference our namespace
// manager's output must match.
#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "daxstore/mapping.h"
#include "guest_env.h"

namespace daxstore {
namespace {

using nlohmann::json;

// Runs `ndctl ARGS` and parses its output. ndctl prints one object when the
// list has one entry and an array otherwise: both become an array.
json Ndctl(const std::string& args) {
  std::string cmd = "ndctl " + args + " 2>&1";
  FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) return json::array();
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  int rc = ::pclose(f);
  EXPECT_EQ(rc, 0) << cmd << " said: " << out;
  json j = json::parse(out, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << cmd << " printed no JSON: " << out;
  if (j.is_object()) return json::array({j});
  return j.is_array() ? j : json::array();
}

std::string Basename(const std::string& p) {
  return p.substr(p.find_last_of('/') + 1);
}

TEST(KernelNdctl, RegionsListTheDimms) {
  DAXSTORE_GUEST_PATH(want, "DAXSTORE_TEST_REGIONS");
  json regions = Ndctl("list --regions");
  ASSERT_EQ(regions.size(), std::stoul(want)) << regions.dump(2);
  for (const auto& r : regions) {
    EXPECT_EQ(r.at("type"), "pmem");
    EXPECT_GT(r.at("size").get<uint64_t>(), 0u);
    EXPECT_EQ(r.at("dev").get<std::string>().rfind("region", 0), 0u);
  }
}

TEST(KernelNdctl, NamespacesMatchTheDevices) {
  DAXSTORE_GUEST_PATH(devdax, "DAXSTORE_TEST_DEVDAX");
  DAXSTORE_GUEST_PATH(fsdax, "DAXSTORE_TEST_EXT4_DAX_DEV");
  json nss = Ndctl("list --namespaces");
  const json* dax = nullptr;
  const json* pmem = nullptr;
  for (const auto& ns : nss) {
    // `ndctl list -N` names a devdax namespace's device in "chardev".
    if (ns.value("mode", "") == "devdax" &&
        ns.value("chardev", "") == Basename(devdax)) {
      dax = &ns;
    }
    if (ns.value("mode", "") == "fsdax" &&
        ns.value("blockdev", "") == Basename(fsdax)) {
      pmem = &ns;
    }
  }
  ASSERT_NE(dax, nullptr) << "no devdax namespace with " << devdax << " in "
                          << nss.dump(2);
  ASSERT_NE(pmem, nullptr) << "no fsdax namespace on " << fsdax << " in "
                           << nss.dump(2);
  EXPECT_EQ(pmem->at("map"), "dev");
  EXPECT_EQ(pmem->at("align").get<uint64_t>(), 2u << 20);

  // ndctl and a daxstore mapping agree on the device's size.
  auto m = Mapping::Open(devdax);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->size(), dax->at("size").get<uint64_t>());
}

}  // namespace
}  // namespace daxstore
