// A reader-writer lock and a sequence count in one 64-bit word.
//
// Writers hold it exclusive while they change map entries and blocks;
// readers either hold it shared, or read without it (Begin, then Valid
// after their reads) and keep what they read only if no writer held it
// meanwhile. A writer takes it with one compare-and-swap and releases it
// with one plain store, and an optimistic reader executes no locked
// instruction at all. Holders keep it for microseconds (a block's copy,
// record and fence), so a waiter spins, then yields its CPU between
// tries: nothing sleeps on the word, so a release needs no wake-up (a
// wake-up costs a locked instruction on a shared line, which would also
// wait for the holder's earlier stores to drain).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

namespace daxstore::image {

class StripeLock {
 public:
  // Bit 0: a writer holds the lock. Bits 1-20: readers holding it shared.
  // Bits 21-63: releases by writers (the sequence).
  static constexpr uint64_t kWriter = 1;
  static constexpr uint64_t kReader = 2;
  static constexpr uint64_t kReaders = ((uint64_t{1} << 20) - 1) << 1;
  static constexpr uint64_t kRelease = uint64_t{1} << 21;
  // Begin's answer while a writer holds the lock.
  static constexpr uint64_t kBusy = ~uint64_t{0};

  void lock() {
    uint64_t v = word_.load(std::memory_order_relaxed);
    for (;;) {
      if ((v & (kWriter | kReaders)) == 0) {
        if (word_.compare_exchange_weak(v, v | kWriter,
                                        std::memory_order_acquire,
                                        std::memory_order_relaxed)) {
          break;
        }
        continue;
      }
      v = Pause(v);
    }
    // The writer bit is visible before any entry or block changes (an
    // optimistic reader that sees a change then fails Valid).
    std::atomic_thread_fence(std::memory_order_release);
  }
  void unlock() {
    // Nothing else changes the word while a writer holds it.
    const uint64_t v = word_.load(std::memory_order_relaxed);
    word_.store((v & ~kWriter) + kRelease, std::memory_order_release);
  }
  void lock_shared() {
    uint64_t v = word_.load(std::memory_order_relaxed);
    for (;;) {
      if ((v & kWriter) == 0) {
        if (word_.compare_exchange_weak(v, v + kReader,
                                        std::memory_order_acquire,
                                        std::memory_order_relaxed)) {
          return;
        }
        continue;
      }
      v = Pause(v);
    }
  }
  void unlock_shared() { word_.fetch_sub(kReader, std::memory_order_release); }

  // Optimistic read: Begin() gives a count, or kBusy while a writer holds
  // the lock; Valid(count) after the reads says no writer took it since.
  uint64_t Begin() const {
    const uint64_t v = word_.load(std::memory_order_acquire);
    return v & kWriter ? kBusy : v & ~kReaders;
  }
  bool Valid(uint64_t v) const {
    // The reads before this load are done before it.
    std::atomic_thread_fence(std::memory_order_acquire);
    return (word_.load(std::memory_order_relaxed) & ~kReaders) == v;
  }

 private:
  // Waits a little for the word to change from v; returns its value.
  uint64_t Pause(uint64_t v) {
    for (int i = 0; i < 64; i++) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
      const uint64_t now = word_.load(std::memory_order_relaxed);
      if (now != v) return now;
    }
    std::this_thread::yield();
    return word_.load(std::memory_order_relaxed);
  }

  std::atomic<uint64_t> word_{0};
};

// An exclusive lock in one word for a lane: one compare-and-swap to take,
// one plain store to release (a write releases its lane right after the
// stores of its deferred apply; a locked instruction there would wait for
// them). A lane is held for a write (microseconds) or by a volume
// operation (up to the copy of a map): a waiter spins, yields, then sleeps
// in growing steps up to a millisecond.
class LaneLock {
 public:
  bool try_lock() {
    uint32_t free = 0;
    return held_.compare_exchange_strong(free, 1, std::memory_order_acquire,
                                         std::memory_order_relaxed);
  }
  void lock() {
    for (int tries = 0; !try_lock(); tries++) {
      if (tries < 64) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
      } else if (tries < 128) {
        std::this_thread::yield();
      } else {
        const int step = std::min(tries - 128, 10);
        std::this_thread::sleep_for(std::chrono::microseconds(1 << step));
      }
    }
  }
  void unlock() { held_.store(0, std::memory_order_release); }

 private:
  std::atomic<uint32_t> held_{0};
};

}  // namespace daxstore::image
