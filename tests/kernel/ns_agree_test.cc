// daxstore's namespace manager against the real ndctl, in a guest: what one
// tool creates, the other lists with the same JSON fields and values; a
// created fsdax namespace carries ext4 -o dax and a MAP_SYNC mapping, a
// devdax one maps directly; a mounted namespace is busy. Runs only where
// DAXSTORE_TEST_NS_AGREE names the topology ("labels" or "memmap"): the
// tests create and destroy namespaces.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

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
  // Mounted: refused with the reason, with or without -f, as ndctl does
  // (its exclusive open of the block device fails: -f does not override a
  // mount). The namespace, the mount and the data stay.
  const std::string verbs[] = {"destroy-namespace ", "destroy-namespace -f ",
                               "create-namespace -f -m raw -e "};
  for (const std::string& verb : verbs) {
    if (label_less() && verb.rfind("destroy", 0) == 0) continue;
    Output d = Sh(std::string(kDaxstore) + verb + dev);
    EXPECT_NE(d.rc, 0) << verb << d.text;
    EXPECT_NE(d.text.find("/dev/" + ns.value("blockdev", "") +
                          " is mounted at /mnt/agree; unmount it first"),
              std::string::npos)
        << verb << d.text;
  }
  if (!label_less()) {
    Output nd = Sh("ndctl destroy-namespace -f " + dev);
    EXPECT_NE(nd.text.find("Device or resource busy"), std::string::npos)
        << nd.text;
    EXPECT_NE(nd.text.find("destroyed 0 namespaces"), std::string::npos)
        << nd.text;
  }
  json still = Object("ndctl list -N -n " + dev);
  EXPECT_EQ(still.value("dev", ""), dev);
  EXPECT_EQ(still.value("mode", ""), "fsdax");
  EXPECT_EQ(Sh("cat /mnt/agree/f | head -c 5").text, "hello");
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

// The first 8 KiB of a namespace's own bytes, read past the page cache.
std::string HeadOf(const std::string& blockdev) {
  std::string out;
  int fd = ::open(("/dev/" + blockdev).c_str(), O_RDONLY | O_DIRECT);
  if (fd < 0) return out;
  void* buf = std::aligned_alloc(4096, 8192);
  if (::pread(fd, buf, 8192, 0) == 8192)
    out.assign(static_cast<char*>(buf), 8192);
  std::free(buf);
  ::close(fd);
  return out;
}

// -e clears the old personality's info block, as ndctl does: ndctl's
// read-infoblock finds it on the disabled namespace before, and the raw
// namespace that replaces it starts with 8 KiB of zeros after.
TEST_P(KernelNsAgree, ReconfigureClearsTheOldInfoBlock) {
  const std::string mode = GetParam();
  if (mode == "raw") GTEST_SKIP() << "raw has no info block";
  // Guest time is dear: the same clearing runs for every mode and topology,
  // so label-less pmem and the ndctl comparison take fsdax only.
  if (label_less() && mode != "fsdax") {
    GTEST_SKIP() << "label-less: fsdax only (same clearing as labels)";
  }
  std::vector<std::string> tools = {"daxstore"};
  if (mode == "fsdax") tools.push_back("ndctl");
  const std::string sig = mode == "fsdax"    ? "NVDIMM_PFN_INFO"
                          : mode == "devdax" ? "NVDIMM_DAX_INFO"
                                             : "BTT_ARENA_INFO";
  for (const std::string& tool : tools) {
    SCOPED_TRACE(tool);
    const std::string cmd =
        tool == "daxstore" ? std::string(kDaxstore) : "ndctl ";
    std::string dev = Make(cmd, mode);
    ASSERT_FALSE(dev.empty());
    ASSERT_EQ(Sh("ndctl disable-namespace " + dev).rc, 0);
    Output info = Sh("ndctl read-infoblock -j " + dev);
    EXPECT_NE(info.text.find(sig), std::string::npos) << info.text;
    json raw = Object(cmd + "create-namespace -f -m raw -e " + dev);
    std::string now = raw.value("dev", "");
    ASSERT_FALSE(now.empty()) << raw.dump();
    // ndctl's -m raw leaves a label-less namespace without a personality,
    // which lists as fsdax (map mem); daxstore's sets force_raw. Either
    // way both tools list the same.
    const std::string listed =
        Object("ndctl list -N -n " + now).value("mode", "");
    EXPECT_EQ(listed, label_less() && tool == "ndctl" ? "fsdax" : "raw");
    EXPECT_EQ(
        Object(std::string(kDaxstore) + "list -N -n " + now).value("mode", ""),
        listed);
    std::string head = HeadOf(raw.value("blockdev", ""));
    ASSERT_EQ(head.size(), 8192u);
    EXPECT_TRUE(head == std::string(8192, '\0'))
        << "old info block left: " << head.substr(4096, 16).c_str();
    Unmake(cmd, now);
  }
}

}  // namespace
}  // namespace daxstore
