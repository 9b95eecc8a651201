// The emulated bus only: labels and data survive a restart, a process
// killed in the middle of an operation leaves a consistent bus, and many
// users of one bus do not lose each other's labels.
#include "ns/emulated.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <set>
#include <thread>

#include "daxstore/emulated_bus.h"
#include "ns/layout.h"
#include "testing/temp_dir.h"

namespace daxstore {
namespace {

using ns::kGiB;
using ns::kMiB;
namespace fs = std::filesystem;

class EmulatedBus : public ::testing::Test {
 protected:
  void SetUp() override {
    opts_.dir = dir_ / "bus";
    ASSERT_TRUE(CreateEmulatedBus(opts_, {}).ok());
  }
  std::unique_ptr<NamespaceBackend> Open(EmulatedOptions o) {
    auto b = OpenEmulatedBackend(std::move(o));
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    return b.ok() ? std::move(b).value() : nullptr;
  }
  std::vector<Namespace> All(NamespaceBackend& b) {
    auto buses = b.List({.include_idle = true});
    EXPECT_TRUE(buses.ok()) << buses.status().ToString();
    std::vector<Namespace> out;
    for (const auto& r : buses->at(0).regions) {
      out.insert(out.end(), r.namespaces.begin(), r.namespaces.end());
    }
    return out;
  }
  std::set<std::string> Files() {
    std::set<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(opts_.dir)) {
      if (e.is_regular_file()) {
        out.insert(fs::relative(e.path(), opts_.dir).string());
      }
    }
    return out;
  }
  // The bus is consistent: every label has its device file at its usable
  // size, no other device files exist, and namespaces do not overlap.
  void ExpectConsistent() {
    auto b = Open(opts_);
    ASSERT_NE(b, nullptr);
    auto ns = All(*b);
    std::set<std::string> want = {"bus.json", "bus.lock"};
    for (const auto& n : ns) {
      std::string f =
          n.dax_region ? n.dax_region->devices[0].chardev : n.blockdev;
      want.insert(n.region + "/" + f);
      EXPECT_EQ(fs::file_size(opts_.dir + "/" + n.region + "/" + f), n.size);
    }
    EXPECT_EQ(Files(), want);
    auto buses = b->List({});
    uint64_t used = 0;
    for (const auto& n : ns) used += n.raw_size;
    EXPECT_EQ(buses->at(0).regions.at(0).available_size, kGiB - used);
  }

  testing::TempDir dir_;
  EmulatedOptions opts_;
};

TEST_F(EmulatedBus, LabelsAndDataSurviveARestart) {
  std::string uuid;
  {
    auto b = Open(opts_);
    CreateRequest r;
    r.mode = NamespaceMode::kFsdax;
    r.name = "keep";
    r.size = {SizeRequest::Kind::kBytes, 128 * kMiB};
    auto n = b->Create(r);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    uuid = n->uuid;
    auto t = b->MapTargetOf(n->dev);
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(*t->options.emulate, PersistenceDomain::kMemoryController);
    auto m = Mapping::Open(t->path, t->options);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    EXPECT_EQ(m->granularity(), Granularity::kCacheLine);
    m->MemcpyPersist(m->bytes() + 4096, "durable", 8);
  }
  auto b = Open(opts_);
  auto ns = All(*b);
  ASSERT_EQ(ns.size(), 1u);
  EXPECT_EQ(ns[0].uuid, uuid);
  EXPECT_EQ(ns[0].name, "keep");
  auto t = b->MapTargetOf(ns[0].dev);
  ASSERT_TRUE(t.ok());
  auto m = Mapping::Open(t->path, t->options);
  ASSERT_TRUE(m.ok());
  EXPECT_STREQ(reinterpret_cast<const char*>(m->bytes() + 4096), "durable");
}

// The emulated bus keeps no info block in a device file (its metadata is
// modelled), so -e does more than ndctl's 8 KiB: the new personality starts
// on a wiped file, and nothing of the old one can be found again.
TEST_F(EmulatedBus, ReconfigureLeavesNoOldBytes) {
  auto b = Open(opts_);
  CreateRequest r;
  r.mode = NamespaceMode::kFsdax;
  r.size = {SizeRequest::Kind::kBytes, 128 * kMiB};
  auto n = b->Create(r);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  {
    auto t = b->MapTargetOf(n->dev);
    ASSERT_TRUE(t.ok());
    auto m = Mapping::Open(t->path, t->options);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    m->MemsetPersist(m->bytes(), 0x5a, 64 * 1024);
  }
  CreateRequest e;
  e.reconfigure = n->dev;
  e.mode = NamespaceMode::kRaw;
  e.force = true;
  auto raw = b->Create(e);
  ASSERT_TRUE(raw.ok()) << raw.status().ToString();
  const std::string path = opts_.dir + "/region0/" + raw->blockdev;
  ASSERT_EQ(fs::file_size(path), 128 * kMiB);
  std::string head(64 * 1024, 'x');
  FILE* f = std::fopen(path.c_str(), "rb");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(std::fread(head.data(), 1, head.size(), f), head.size());
  std::fclose(f);
  EXPECT_EQ(head, std::string(64 * 1024, '\0'));
}

TEST_F(EmulatedBus, AnotherBusInTheSameDirectoryIsRefused) {
  auto st = CreateEmulatedBus(opts_, {});
  EXPECT_EQ(st.kind(), ErrorKind::kBusy);
  EmulatedOptions none;
  none.dir = dir_ / "nothing";
  auto b = OpenEmulatedBackend(none);
  EXPECT_EQ(b.status().kind(), ErrorKind::kNotFound);
  EXPECT_NE(b.status().message().find("emulate create"), std::string::npos);
  ASSERT_TRUE(DestroyEmulatedBus(opts_, false).ok());
  EXPECT_FALSE(EmulatedBusExists(opts_));
  EXPECT_TRUE(Files().empty());
}

// Without force, destroy names every namespace that is enabled or stores
// data and keeps them all; a disabled, empty one does not stop it.
TEST_F(EmulatedBus, DestroyWithoutForceKeepsLiveNamespaces) {
  auto b = Open(opts_);
  CreateRequest r;
  r.size = {SizeRequest::Kind::kBytes, 32 * kMiB};
  r.name = "vm1";
  auto data = b->Create(r);  // enabled, then holds data, then disabled
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  r.name = "";
  auto empty = b->Create(r);  // enabled, all hole
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  {
    auto t = b->MapTargetOf(data->dev);
    ASSERT_TRUE(t.ok());
    auto m = Mapping::Open(t->path, t->options);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    m->MemsetPersist(m->bytes() + 8192, 0x5a, 512);
  }
  ASSERT_TRUE(b->DisableNamespace(data->dev).ok());
  const auto files = Files();
  Status st = DestroyEmulatedBus(opts_, false);
  EXPECT_EQ(st.kind(), ErrorKind::kBusy);
  EXPECT_NE(st.message().find(data->dev + " 'vm1' (32M, holds data), " +
                              empty->dev + " (32M, enabled)"),
            std::string::npos)
      << st.message();
  EXPECT_EQ(Files(), files);
  ASSERT_TRUE(b->Destroy(empty->dev, true).ok());
  EXPECT_EQ(DestroyEmulatedBus(opts_, false).kind(), ErrorKind::kBusy);
  ASSERT_TRUE(DestroyEmulatedBus(opts_, true).ok());
  EXPECT_FALSE(EmulatedBusExists(opts_));
}

TEST(EmulatedLabels, AFreshLabelAreaNeedsInitLabels) {
  testing::TempDir dir;
  EmulatedOptions o;
  o.dir = dir / "bus";
  EmulatedBusConfig c;
  c.uninitialized_labels = true;
  ASSERT_TRUE(CreateEmulatedBus(o, c).ok());
  auto b = OpenEmulatedBackend(o);
  ASSERT_TRUE(b.ok());
  auto& be = **b;
  auto buses = be.List({});
  ASSERT_TRUE(buses.ok());
  const Region& r = buses->at(0).regions.at(0);
  EXPECT_TRUE(r.labels_uninitialized);
  EXPECT_EQ(r.available_size, 0u);
  ASSERT_EQ(r.namespaces.size(), 1u);
  EXPECT_EQ(r.namespaces[0].mode, NamespaceMode::kRaw);
  EXPECT_EQ(r.namespaces[0].size, kGiB);
  CreateRequest req;
  auto st = be.Create(req);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().message().find("init-labels region0"),
            std::string::npos)
      << st.status().message();
  ASSERT_TRUE(be.DisableRegion("region0").ok());
  auto n = be.InitLabels("all", false);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 1);
  ASSERT_TRUE(be.EnableRegion("region0").ok());
  auto made = be.Create(req);
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  EXPECT_EQ(made->size, 1006 * kMiB);
}

// Runs op in a child that SIGKILLs itself at crash point `point`.
void KillAt(const EmulatedOptions& base, const std::string& point,
            const std::function<void(NamespaceBackend&)>& op) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    EmulatedOptions o = base;
    if (!o.platform) o.platform = DefaultPlatform();
    ns::EmulatedBackend b(o, [point](std::string_view at) {
      if (at == point) raise(SIGKILL);
    });
    op(b);
    _exit(3);  // the crash point was never reached
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << point << " was not reached";
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

TEST_F(EmulatedBus, KilledMidCreateLeavesAConsistentBus) {
  auto create = [](NamespaceBackend& b) {
    CreateRequest r;
    r.mode = NamespaceMode::kDevdax;
    r.size = {SizeRequest::Kind::kBytes, 256 * kMiB};
    (void)b.Create(r);
  };
  KillAt(opts_, "create:after-device-file", create);
  ExpectConsistent();
  EXPECT_TRUE(All(*Open(opts_)).empty());  // never published
  KillAt(opts_, "create:after-publish", create);
  ExpectConsistent();
  EXPECT_EQ(All(*Open(opts_)).size(), 1u);
}

TEST_F(EmulatedBus, KilledMidDestroyOrReconfigureLeavesAConsistentBus) {
  auto b = Open(opts_);
  CreateRequest r;
  r.mode = NamespaceMode::kFsdax;
  r.size = {SizeRequest::Kind::kBytes, 256 * kMiB};
  ASSERT_TRUE(b->Create(r).ok());
  ASSERT_TRUE(b->Create(r).ok());
  KillAt(opts_, "reconfigure:after-device-file", [](NamespaceBackend& x) {
    CreateRequest e;
    e.reconfigure = "namespace0.1";
    e.mode = NamespaceMode::kDevdax;
    e.force = true;
    (void)x.Create(e);
  });
  ExpectConsistent();
  EXPECT_EQ(All(*b)[1].mode, NamespaceMode::kFsdax);  // old label stands
  KillAt(opts_, "destroy:after-publish",
         [](NamespaceBackend& x) { (void)x.Destroy("namespace0.0", true); });
  ExpectConsistent();
  EXPECT_EQ(All(*b).size(), 1u);
}

TEST_F(EmulatedBus, ConcurrentThreadsCreateWithoutLosingLabels) {
  constexpr int kThreads = 4;
  std::vector<std::thread> threads;
  std::vector<Status> results(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto b = OpenEmulatedBackend(opts_);
      if (!b.ok()) {
        results[i] = b.status();
        return;
      }
      CreateRequest r;
      r.mode = i % 2 ? NamespaceMode::kDevdax : NamespaceMode::kFsdax;
      r.size = {SizeRequest::Kind::kBytes, 128 * kMiB};
      results[i] = (*b)->Create(r).status();
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& st : results) EXPECT_TRUE(st.ok()) << st.ToString();
  auto ns = All(*Open(opts_));
  EXPECT_EQ(ns.size(), static_cast<size_t>(kThreads));
  ExpectConsistent();
}

}  // namespace
}  // namespace daxstore
