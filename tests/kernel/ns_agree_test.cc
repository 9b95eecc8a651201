// daxstore's namespace manager against the real ndctl, in a guest: what one
// tool creates, the other lists with the same JSON fields and values; a
// created fsdax namespace carries ext4 -o dax and a MAP_SYNC mapping, a
// devdax one maps directly; a mounted namespace is busy. Runs only where
// DAXSTORE_TEST_NS_AGREE names the topology ("labels" or "memmap"): the
// tests create and destroy namespaces.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "daxstore/mapping.h"

namespace daxstore {
namespace {

using nlohmann::json;

struct Output {
  int rc;
  std::string text;
};

Output Sh(const std::string& cmd) {
  FILE* f = ::popen((cmd + " 2>&1").c_str(), "r");
  if (f == nullptr) return {-1, "popen failed"};
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  return {::pclose(f), out};
}

// A command's JSON output as one object (a one-element array unwrapped).
json Object(const std::string& cmd) {
  Output o = Sh(cmd);
  EXPECT_EQ(o.rc, 0) << cmd << " said: " << o.text;
  json j = json::parse(o.text, nullptr, /*allow_exceptions=*/false);
  if (j.is_array() && j.size() == 1) j = j[0];
  EXPECT_TRUE(j.is_object()) << cmd << " printed: " << o.text;
  return j.is_object() ? j : json::object();
}

const char kDaxstore[] = "tools/daxstore --bus kernel ";

// Every field ndctl shows for the namespace, daxstore shows with the same
// value (the devdax region's device list included).
void ExpectSameNamespace(const std::string& dev) {
  SCOPED_TRACE(dev);
  json want = Object("ndctl list -N -n " + dev);
  json got = Object(std::string(kDaxstore) + "list -N -n " + dev);
  ASSERT_FALSE(want.empty());
  for (const auto& [key, value] : want.items()) {
    ASSERT_TRUE(got.contains(key))
        << "daxstore lacks \"" << key << "\": " << got.dump();
    EXPECT_EQ(got[key], value)
        << "field \"" << key << "\"\nndctl:    " << want.dump()
        << "\ndaxstore: " << got.dump();
  }
  // And daxstore shows nothing ndctl does not.
  for (const auto& [key, value] : got.items()) {
    EXPECT_TRUE(want.contains(key))
        << "daxstore adds \"" << key << "\": " << got.dump();
  }
}

std::string Topology() {
  const char* t = std::getenv("DAXSTORE_TEST_NS_AGREE");
  return t ? t : "";
}

class KernelNsAgree : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (Topology().empty()) GTEST_SKIP() << "DAXSTORE_TEST_NS_AGREE unset";
  }
  bool label_less() const { return Topology() == "memmap"; }
  // Creates (labels) or reconfigures (memmap) with one tool.
  std::string Make(const std::string& tool, const std::string& mode) {
    std::string args = label_less() ? " -f -e namespace0.0 -m " + mode
                                    : " -r region0 -s 256M -m " + mode;
    json made = Object(tool + "create-namespace" + args);
    return made.value("dev", "");
  }
  void Unmake(const std::string& tool, const std::string& dev) {
    if (label_less()) return;
    Output o = Sh(tool + "destroy-namespace -f " + dev);
    EXPECT_EQ(o.rc, 0) << o.text;
  }
};

TEST_P(KernelNsAgree, DaxstoreCreatesNdctlAgrees) {
  std::string dev = Make(kDaxstore, GetParam());
  ASSERT_FALSE(dev.empty());
  ExpectSameNamespace(dev);
  Unmake(kDaxstore, dev);
}

TEST_P(KernelNsAgree, NdctlCreatesDaxstoreAgrees) {
  std::string dev = Make("ndctl ", GetParam());
  ASSERT_FALSE(dev.empty());
  ExpectSameNamespace(dev);
  Unmake("ndctl ", dev);
}

INSTANTIATE_TEST_SUITE_P(Modes, KernelNsAgree,
                         ::testing::Values("fsdax", "devdax", "sector", "raw"));

TEST_F(KernelNsAgree, FsdaxCarriesExt4DaxAndMapSync) {
  std::string dev = Make(kDaxstore, "fsdax");
  ASSERT_FALSE(dev.empty());
  json ns = Object(std::string(kDaxstore) + "list -N -n " + dev);
  std::string blk = "/dev/" + ns.value("blockdev", "");
  ASSERT_EQ(Sh("mkfs.ext4 -q -F -b 4096 " + blk).rc, 0);
  Sh("mkdir -p /mnt/agree");
  Output mnt = Sh("mount -t ext4 -o dax " + blk + " /mnt/agree");
  ASSERT_EQ(mnt.rc, 0) << mnt.text;
  {
    MapOptions o;
    o.create_size = 4 << 20;
    auto m = Mapping::Open("/mnt/agree/f", o);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    if (m.ok()) {
      EXPECT_EQ(m->info().kind, MappingKind::kDaxFile);
      EXPECT_EQ(m->granularity(), Granularity::kCacheLine);
      m->MemcpyPersist(m->bytes(), "hello", 5);
    }
  }
  if (!label_less()) {
    // Mounted: refused with the reason, the namespace and its data kept.
    Output d = Sh(std::string(kDaxstore) + "destroy-namespace " + dev);
    EXPECT_NE(d.rc, 0);
    EXPECT_NE(d.text.find("mounted at /mnt/agree; unmount it or pass -f"),
              std::string::npos)
        << d.text;
    EXPECT_EQ(Object("ndctl list -N -n " + dev).value("dev", ""), dev);
  }
  EXPECT_EQ(Sh("umount /mnt/agree").rc, 0);
  Unmake(kDaxstore, dev);
}

TEST_F(KernelNsAgree, DevdaxMapsThroughTheMappingLayer) {
  std::string dev = Make(kDaxstore, "devdax");
  ASSERT_FALSE(dev.empty());
  json ns = Object(std::string(kDaxstore) + "list -N -n " + dev);
  std::string chardev = ns.value("chardev", "");
  ASSERT_FALSE(chardev.empty()) << ns.dump();
  {
    auto m = Mapping::Open("/dev/" + chardev);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    EXPECT_EQ(m->size(), ns.at("size").get<uint64_t>());
    EXPECT_NE(m->granularity(), Granularity::kPage);
    m->MemcpyPersist(m->bytes(), "hello", 5);
  }
  Unmake(kDaxstore, dev);
}

}  // namespace
}  // namespace daxstore
