// A reader-writer lock and a sequence count in one 64-bit word.
//
// Writers hold it exclusive while they change map entries and blocks;
// readers either hold it shared, or read without it (Begin, then Valid
// after their reads) and keep what they read only if no writer held it
// meanwhile. A writer takes it with one compare-and-swap and releases it
// with one plain store, and an optimistic reader executes no locked
// instruction at all; waiting uses C++20 atomic wait/notify (a futex on
// Linux), after the short spin the standard library does itself.
#pragma once

#include <atomic>
#include <cstdint>

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
      word_.wait(v, std::memory_order_relaxed);
      v = word_.load(std::memory_order_relaxed);
    }
    // The writer bit is visible before any entry or block changes (an
    // optimistic reader that sees a change then fails Valid).
    std::atomic_thread_fence(std::memory_order_release);
  }
  void unlock() {
    // Nothing else changes the word while a writer holds it.
    const uint64_t v = word_.load(std::memory_order_relaxed);
    word_.store((v & ~kWriter) + kRelease, std::memory_order_release);
    word_.notify_all();
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
      word_.wait(v, std::memory_order_relaxed);
      v = word_.load(std::memory_order_relaxed);
    }
  }
  void unlock_shared() {
    const uint64_t v =
        word_.fetch_sub(kReader, std::memory_order_release) - kReader;
    if ((v & kReaders) == 0) word_.notify_all();
  }

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
  std::atomic<uint64_t> word_{0};
};

}  // namespace daxstore::image
