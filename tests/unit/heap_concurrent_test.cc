// Several threads running transactions on one heap (also run under TSan).
#include <gtest/gtest.h>

#include <cstring>
#include <thread>
#include <vector>

#include "daxstore/heap.h"
#include "testing/temp_dir.h"

namespace daxstore {
namespace {

constexpr int kThreads = 4;
constexpr int kRounds = 150;

struct Slot {
  uint64_t count;
  PPtr<uint8_t> block;  // the latest 4 KiB block this thread allocated
  uint64_t pad[6];      // one cache line per thread
};

struct Root {
  Slot slot[kThreads];
};

Mapping Open(const std::string& path) {
  MapOptions o;
  o.create_size = 4 << 20;
  o.emulate = PersistenceDomain::kMemoryController;
  auto m = Mapping::Open(path, o);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return std::move(m).value();
}

TEST(HeapConcurrent, TransactionsFromManyThreadsKeepEveryUpdate) {
  testing::TempDir dir;
  auto h = Heap::Create(Open(dir / "heap.img"), {.root_size = sizeof(Root)});
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  Heap& heap = **h;
  std::vector<std::thread> threads;
  std::vector<Status> results(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&heap, &results, t] {
      for (int i = 0; i < kRounds && results[t].ok(); ++i) {
        results[t] = heap.Run([&](Transaction& tx) -> Status {
          Slot* s = &heap.Get(heap.Root<Root>())->slot[t];
          DAXSTORE_ASSIGN_OR_RETURN(uint64_t b, tx.AllocateBytes(4096, false));
          std::memset(heap.Get(PPtr<uint8_t>(b)), t + 1, 4096);
          if (s->block) DAXSTORE_RETURN_IF_ERROR(tx.Free(s->block));
          DAXSTORE_RETURN_IF_ERROR(tx.Set(&s->block, PPtr<uint8_t>(b)));
          return tx.Set(&s->count, s->count + 1);
        });
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const Status& s : results) ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(heap.Stats().used, sizeof(Root) + kThreads * 4096);
  h->reset();

  auto again = Heap::Open(Open(dir / "heap.img"));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  const Root* r = (*again)->Get((*again)->Root<Root>());
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(r->slot[t].count, static_cast<uint64_t>(kRounds));
    EXPECT_EQ((*again)->Get(r->slot[t].block)[4095], t + 1);
  }
  EXPECT_TRUE((*again)->Check().ok());
}

TEST(HeapConcurrent, StatsAndWalksWhileTransactionsRun) {
  testing::TempDir dir;
  auto h = Heap::Create(Open(dir / "heap.img"), {.root_size = sizeof(Root)});
  ASSERT_TRUE(h.ok());
  Heap& heap = **h;
  std::thread writer([&heap] {
    for (int i = 0; i < kRounds; ++i) {
      Status s = heap.Run([&](Transaction& tx) -> Status {
        DAXSTORE_ASSIGN_OR_RETURN(uint64_t b, tx.AllocateBytes(256));
        return tx.FreeBytes(b);
      });
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
  });
  for (int i = 0; i < 50; ++i) {
    EXPECT_GE(heap.Stats().used, sizeof(Root));
    size_t n = 0;
    heap.ForEachAllocation([&n](uint64_t, uint64_t) { ++n; });
    EXPECT_GE(n, 1u);
    EXPECT_TRUE(heap.Check().ok());
  }
  writer.join();
  EXPECT_EQ(heap.Stats().used, sizeof(Root));
}

}  // namespace
}  // namespace daxstore
