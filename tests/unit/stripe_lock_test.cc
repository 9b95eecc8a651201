// The engine's one-word locks (lib/image/stripe_lock.h), from several
// threads at once (also run under TSan): writers keep two counters equal
// under the exclusive lock; shared holders and optimistic readers must
// never see them differ.
#include "image/stripe_lock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

namespace daxstore::image {
namespace {

constexpr int kWriters = 3;
constexpr int kRounds = 50000;

TEST(StripeLockTest, BeginIsBusyWhileHeldAndValidFailsAfterAWriter) {
  StripeLock l;
  const uint64_t v = l.Begin();
  ASSERT_NE(v, StripeLock::kBusy);
  EXPECT_TRUE(l.Valid(v));
  l.lock();
  EXPECT_EQ(l.Begin(), StripeLock::kBusy);
  EXPECT_FALSE(l.Valid(v));
  l.unlock();
  EXPECT_FALSE(l.Valid(v));  // a writer came and went
  const uint64_t w = l.Begin();
  // Shared holders do not change what an optimistic reader compares.
  l.lock_shared();
  l.lock_shared();
  EXPECT_EQ(l.Begin(), w);
  EXPECT_TRUE(l.Valid(w));
  l.unlock_shared();
  l.unlock_shared();
  EXPECT_TRUE(l.Valid(w));
}

TEST(StripeLockTest, ConcurrentWritersSharedAndOptimisticReaders) {
  StripeLock l;
  // Relaxed atomics: optimistic readers read them while writers change
  // them, as the engine reads map entries.
  std::atomic<uint64_t> a{0}, b{0};
  std::atomic<bool> stop{false};
  std::atomic<int> torn{0}, optimistic_hits{0}, readers_up{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kWriters; t++) {
    threads.emplace_back([&] {
      // The readers run before the writes start, on a busy machine too.
      while (readers_up.load() < 2) std::this_thread::yield();
      for (int i = 0; i < kRounds; i++) {
        std::unique_lock lock(l);
        a.store(a.load(std::memory_order_relaxed) + 1,
                std::memory_order_relaxed);
        b.store(b.load(std::memory_order_relaxed) + 1,
                std::memory_order_relaxed);
      }
    });
  }
  threads.emplace_back([&] {  // shared holder
    readers_up++;
    while (!stop.load()) {
      std::shared_lock lock(l);
      if (a.load(std::memory_order_relaxed) !=
          b.load(std::memory_order_relaxed)) {
        torn++;
      }
    }
  });
  threads.emplace_back([&] {  // optimistic reader
    readers_up++;
    while (!stop.load() || optimistic_hits.load() == 0) {
      const uint64_t v = l.Begin();
      if (v == StripeLock::kBusy) continue;
      const uint64_t x = a.load(std::memory_order_relaxed);
      const uint64_t y = b.load(std::memory_order_relaxed);
      if (!l.Valid(v)) continue;
      optimistic_hits++;
      if (x != y) torn++;
    }
  });
  for (int t = 0; t < kWriters; t++) threads[t].join();
  stop = true;
  for (size_t t = kWriters; t < threads.size(); t++) threads[t].join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_EQ(a.load(), uint64_t{kWriters} * kRounds);
  EXPECT_EQ(b.load(), a.load());
  EXPECT_GT(optimistic_hits.load(), 0);
}

TEST(LaneLockTest, ConcurrentHoldersExcludeEachOther) {
  LaneLock l;
  uint64_t n = 0;  // plain: only ever touched under the lock
  std::atomic<int> inside{0}, overlaps{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; i++) {
        if (t == 0 && i % 2 == 0) {
          if (!l.try_lock()) continue;
        } else {
          l.lock();
        }
        if (inside.fetch_add(1) != 0) overlaps++;
        n++;
        inside.fetch_sub(1);
        l.unlock();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_GE(n, uint64_t{3} * kRounds);
  EXPECT_LE(n, uint64_t{4} * kRounds);
  EXPECT_TRUE(l.try_lock());
  EXPECT_FALSE(l.try_lock());
  l.unlock();
}

}  // namespace
}  // namespace daxstore::image
