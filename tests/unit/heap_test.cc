// The persistent heap's API on every kind of mapping it runs on: page-cache
// files, emulated cache-line and byte pmem, and the power-failure simulator.
#include "daxstore/heap.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <set>

#include "powerfail/simulator.h"
#include "testing/temp_dir.h"

namespace daxstore {
namespace {

using testing::TempDir;

struct Node {
  uint64_t value;
  PPtr<Node> next;
};

struct Root {
  uint64_t count;
  PPtr<Node> head;
  uint64_t pad[6];
};

enum class Backend {
  kPageCache,
  kEmulatedCacheLine,
  kEmulatedByte,
  kSim,
  kDaxFile,    // kernel tier: DAXSTORE_TEST_DAX_DIR is on ext4/xfs -o dax
  kDeviceDax,  // kernel tier: DAXSTORE_TEST_DEVDAX names /dev/daxX.Y
};

const char* Env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

std::string Name(const ::testing::TestParamInfo<Backend>& i) {
  switch (i.param) {
    case Backend::kPageCache:
      return "PageCacheFile";
    case Backend::kEmulatedCacheLine:
      return "EmulatedCacheLine";
    case Backend::kEmulatedByte:
      return "EmulatedByte";
    case Backend::kSim:
      return "Simulator";
    case Backend::kDaxFile:
      return "DaxFile";
    case Backend::kDeviceDax:
      return "DeviceDax";
  }
  return "?";
}

class HeapTest : public ::testing::TestWithParam<Backend> {
 protected:
  static constexpr size_t kSize = 1 << 20;

  void SetUp() override {
    if (GetParam() == Backend::kDaxFile) {
      if (!Env("DAXSTORE_TEST_DAX_DIR")) {
        GTEST_SKIP() << "set DAXSTORE_TEST_DAX_DIR to a -o dax mount";
      }
      dax_dir_ = std::make_unique<TempDir>(Env("DAXSTORE_TEST_DAX_DIR"));
    }
    if (GetParam() == Backend::kDeviceDax && !Env("DAXSTORE_TEST_DEVDAX")) {
      GTEST_SKIP() << "set DAXSTORE_TEST_DEVDAX to a /dev/daxX.Y it may wipe";
    }
  }

  // A fresh mapping of the same backing store (a second address when the
  // previous one is still alive).
  Mapping Map(size_t size = kSize) {
    if (GetParam() == Backend::kSim) {
      if (!sim_) {
        auto s = powerfail::Simulator::Create(size);
        EXPECT_TRUE(s.ok());
        sim_ = *s;
      }
      auto m = sim_->Map();
      EXPECT_TRUE(m.ok()) << m.status().ToString();
      return std::move(m).value();
    }
    MapOptions o;
    if (GetParam() == Backend::kDeviceDax) {  // mapped whole
      auto m = Mapping::Open(Env("DAXSTORE_TEST_DEVDAX"), o);
      EXPECT_TRUE(m.ok()) << m.status().ToString();
      return std::move(m).value();
    }
    o.create_size = size;
    if (GetParam() == Backend::kDaxFile) {
      o.require = Granularity::kCacheLine;
      auto m = Mapping::Open(*dax_dir_ / "heap.img", o);
      EXPECT_TRUE(m.ok()) << m.status().ToString();
      return std::move(m).value();
    }
    if (GetParam() == Backend::kEmulatedCacheLine) {
      o.emulate = PersistenceDomain::kMemoryController;
    } else if (GetParam() == Backend::kEmulatedByte) {
      o.emulate = PersistenceDomain::kCpuCache;
    }
    auto m = Mapping::Open(dir_ / "heap.img", o);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return std::move(m).value();
  }

  // The same media at another address: the file mapped a second time, or
  // the simulator's durable image copied into a second simulator.
  Mapping MapElsewhere() {
    if (GetParam() != Backend::kSim) return Map();
    auto s = powerfail::Simulator::FromImage(sim_->Media());
    EXPECT_TRUE(s.ok());
    other_ = *s;
    auto m = other_->Map();
    EXPECT_TRUE(m.ok());
    return std::move(m).value();
  }

  std::unique_ptr<Heap> Create() {
    auto h = Heap::Create(Map(), {.root_size = sizeof(Root)});
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    return std::move(h).value();
  }

  std::unique_ptr<Heap> Reopen(std::unique_ptr<Heap> h) {
    h.reset();
    auto o = Heap::Open(Map());
    EXPECT_TRUE(o.ok()) << o.status().ToString();
    return std::move(o).value();
  }

  static Status Push(Heap& h, uint64_t v) {
    return h.Run([&](Transaction& tx) -> Status {
      Root* r = h.Get(h.Root<Root>());
      DAXSTORE_ASSIGN_OR_RETURN(PPtr<Node> n, tx.Allocate<Node>());
      *h.Get(n) = Node{v, r->head};
      DAXSTORE_RETURN_IF_ERROR(tx.Set(&r->head, n));
      return tx.Set(&r->count, r->count + 1);
    });
  }

  static std::vector<uint64_t> Values(const Heap& h) {
    std::vector<uint64_t> out;
    for (PPtr<Node> p = h.Get(h.Root<Root>())->head; p; p = h.Get(p)->next) {
      out.push_back(h.Get(p)->value);
    }
    return out;
  }

  TempDir dir_;
  std::unique_ptr<TempDir> dax_dir_;
  std::shared_ptr<powerfail::Simulator> sim_, other_;
};

TEST_P(HeapTest, CreateGivesAZeroedRoot) {
  auto h = Create();
  Root* r = h->Get(h->Root<Root>());
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->count, 0u);
  EXPECT_FALSE(r->head);
  EXPECT_EQ(h->root_size(), sizeof(Root));
  HeapStats st = h->Stats();
  EXPECT_EQ(st.used, sizeof(Root));
  EXPECT_GT(st.capacity, kSize / 2);
  EXPECT_FALSE(st.recovered);
  EXPECT_TRUE(h->Check().ok());
}

TEST_P(HeapTest, CommittedTransactionsSurviveReopen) {
  auto h = Create();
  for (uint64_t v = 1; v <= 5; ++v) ASSERT_TRUE(Push(*h, v).ok());
  h = Reopen(std::move(h));
  EXPECT_EQ(Values(*h), (std::vector<uint64_t>{5, 4, 3, 2, 1}));
  EXPECT_EQ(h->Get(h->Root<Root>())->count, 5u);
  EXPECT_EQ(h->Stats().used, sizeof(Root) + 5 * Heap::kUnit);
  EXPECT_FALSE(h->Stats().recovered);
}

TEST_P(HeapTest, PointersStayValidAtAnotherAddress) {
  auto h = Create();
  ASSERT_TRUE(Push(*h, 7).ok());
  auto again = Heap::Open(MapElsewhere());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_NE(h->Get(h->Root<Root>()), (*again)->Get((*again)->Root<Root>()));
  EXPECT_EQ(Values(**again), std::vector<uint64_t>{7});
}

TEST_P(HeapTest, FailedBodyRollsBackStoresAndAllocations) {
  auto h = Create();
  ASSERT_TRUE(Push(*h, 1).ok());
  const uint64_t used = h->Stats().used;
  Status s = h->Run([&](Transaction& tx) -> Status {
    Root* r = h->Get(h->Root<Root>());
    DAXSTORE_RETURN_IF_ERROR(tx.Set(&r->count, uint64_t{99}));
    DAXSTORE_ASSIGN_OR_RETURN(uint64_t a, tx.AllocateBytes(4096));
    EXPECT_EQ(a % 4096, 0u);
    DAXSTORE_RETURN_IF_ERROR(tx.Free(r->head));
    return Busy("changed my mind");
  });
  EXPECT_EQ(s.kind(), ErrorKind::kBusy);
  EXPECT_EQ(h->Get(h->Root<Root>())->count, 1u);
  EXPECT_EQ(h->Stats().used, used);
  EXPECT_EQ(Values(*h), std::vector<uint64_t>{1});
  EXPECT_TRUE(h->Check().ok());
}

TEST_P(HeapTest, OddRangesRollBackExactly) {
  auto h = Create();
  uint64_t obj = 0;
  ASSERT_TRUE(h->Run([&](Transaction& tx) -> Status {
                 DAXSTORE_ASSIGN_OR_RETURN(obj, tx.AllocateBytes(64));
                 for (int i = 0; i < 64; ++i) {
                   h->Get(PPtr<uint8_t>(obj))[i] = static_cast<uint8_t>(i);
                 }
                 return Status::Ok();
               }).ok());
  uint8_t* b = h->Get(PPtr<uint8_t>(obj));
  Status s = h->Run([&](Transaction& tx) -> Status {
    DAXSTORE_RETURN_IF_ERROR(tx.AddRange(b + 5, 3));   // inside one word
    DAXSTORE_RETURN_IF_ERROR(tx.AddRange(b + 13, 9));  // across three words
    std::memset(b + 5, 0xaa, 3);
    std::memset(b + 13, 0xbb, 9);
    return Busy("roll back");
  });
  EXPECT_EQ(s.kind(), ErrorKind::kBusy);
  for (int i = 0; i < 64; ++i) ASSERT_EQ(b[i], i) << i;
}

TEST_P(HeapTest, FreeReturnsSpaceAndRejectsBadOffsets) {
  auto h = Create();
  uint64_t big = 0;
  ASSERT_TRUE(h->Run([&](Transaction& tx) -> Status {
                 DAXSTORE_ASSIGN_OR_RETURN(big, tx.AllocateBytes(3 * 4096 + 1));
                 return Status::Ok();
               }).ok());
  EXPECT_EQ(h->Stats().used, sizeof(Root) + 4 * 4096);
  EXPECT_EQ(
      h->Run([&](Transaction& tx) { return tx.FreeBytes(big + 64); }).kind(),
      ErrorKind::kInvalidArgument);
  EXPECT_EQ(h->Run([&](Transaction& tx) -> Status {
               DAXSTORE_RETURN_IF_ERROR(tx.FreeBytes(big));
               return tx.FreeBytes(big);
             }).kind(),
            ErrorKind::kInvalidArgument);
  EXPECT_EQ(h->Stats().used, sizeof(Root) + 4 * 4096);
  ASSERT_TRUE(h->Run([&](Transaction& tx) { return tx.FreeBytes(big); }).ok());
  EXPECT_EQ(h->Stats().used, sizeof(Root));
  EXPECT_EQ(h->Run([&](Transaction& tx) {
               return tx.FreeBytes(h->root_offset());
             }).kind(),
            ErrorKind::kInvalidArgument);
}

TEST_P(HeapTest, AllocationsAreListedAndDisjoint) {
  auto h = Create();
  std::set<uint64_t> made;
  for (size_t n : {1, 64, 65, 200, 4095, 4096, 4097, 10000, 8}) {
    ASSERT_TRUE(h->Run([&](Transaction& tx) -> Status {
                   DAXSTORE_ASSIGN_OR_RETURN(uint64_t o, tx.AllocateBytes(n));
                   if (n >= 4096) {
                     EXPECT_EQ(o % 4096, 0u) << n;
                   }
                   std::memset(h->Get(PPtr<uint8_t>(o)), 0xee, n);
                   made.insert(o);
                   return Status::Ok();
                 }).ok());
  }
  std::vector<std::pair<uint64_t, uint64_t>> seen;
  h->ForEachAllocation([&](uint64_t o, uint64_t n) { seen.push_back({o, n}); });
  ASSERT_EQ(seen.size(), made.size() + 1);  // + root
  for (size_t i = 1; i < seen.size(); ++i) {
    EXPECT_LE(seen[i - 1].first + seen[i - 1].second, seen[i].first);
  }
  EXPECT_TRUE(h->Check().ok());
}

TEST_P(HeapTest, FullHeapAndFullLogFailCleanly) {
  auto h = Create();
  const uint64_t used = h->Stats().used;
  Status s = h->Run([&](Transaction& tx) -> Status {
    for (;;) DAXSTORE_RETURN_IF_ERROR(tx.AllocateBytes(64 << 10).status());
  });
  EXPECT_EQ(s.kind(), ErrorKind::kNoSpace) << s.ToString();
  EXPECT_EQ(h->Stats().used, used);
  s = h->Run([&](Transaction& tx) -> Status {
    Root* r = h->Get(h->Root<Root>());
    for (;;) DAXSTORE_RETURN_IF_ERROR(tx.Add(r));
  });
  EXPECT_EQ(s.kind(), ErrorKind::kNoSpace);
  EXPECT_NE(s.message().find("log_size"), std::string::npos);
  EXPECT_TRUE(h->Check().ok());
  ASSERT_TRUE(Push(*h, 3).ok());  // still usable
}

TEST_P(HeapTest, AddRangeOutsideTheHeapIsRejected) {
  auto h = Create();
  uint64_t local = 0;
  EXPECT_EQ(h->Run([&](Transaction& tx) { return tx.Add(&local); }).kind(),
            ErrorKind::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(AllMappings, HeapTest,
                         ::testing::Values(Backend::kPageCache,
                                           Backend::kEmulatedCacheLine,
                                           Backend::kEmulatedByte,
                                           Backend::kSim, Backend::kDaxFile,
                                           Backend::kDeviceDax),
                         Name);

TEST(HeapLimits, ClearErrors) {
  TempDir dir;
  MapOptions o;
  o.create_size = 32 << 10;
  auto m = Mapping::Open(dir / "small.img", o);
  ASSERT_TRUE(m.ok());
  auto h = Heap::Create(std::move(*m));
  EXPECT_EQ(h.status().kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(h.status().message().find("64 KiB"), std::string::npos);

  o.create_size = 1 << 20;
  auto m2 = Mapping::Open(dir / "plain.img", o);
  ASSERT_TRUE(m2.ok());
  auto opened = Heap::Open(std::move(*m2));
  EXPECT_EQ(opened.status().kind(), ErrorKind::kNotFound);

  auto m3 = Mapping::Open(dir / "plain.img", o);
  ASSERT_TRUE(m3.ok());
  auto too_big = Heap::Create(std::move(*m3), {.root_size = 2 << 20});
  EXPECT_EQ(too_big.status().kind(), ErrorKind::kInvalidArgument);
}

TEST(HeapLimits, DamagedHeaderIsCorruptionNotACrash) {
  TempDir dir;
  MapOptions o;
  o.create_size = 1 << 20;
  o.emulate = PersistenceDomain::kMemoryController;
  {
    auto m = Mapping::Open(dir / "h.img", o);
    ASSERT_TRUE(m.ok());
    ASSERT_TRUE(Heap::Create(std::move(*m)).ok());
  }
  auto m = Mapping::Open(dir / "h.img", o);
  ASSERT_TRUE(m.ok());
  uint64_t huge = uint64_t{1} << 40;
  std::memcpy(m->bytes() + 56, &huge, 8);  // the data-page count
  m->Persist(m->bytes() + 56, 8);
  auto h = Heap::Open(std::move(*m));
  EXPECT_EQ(h.status().kind(), ErrorKind::kCorruption) << h.status().ToString();

  MapOptions ro;
  ro.access = Access::kReadOnly;
  auto r = Mapping::Open(dir / "h.img", ro);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Heap::Create(std::move(*r)).status().kind(),
            ErrorKind::kInvalidArgument);
}

}  // namespace
}  // namespace daxstore
