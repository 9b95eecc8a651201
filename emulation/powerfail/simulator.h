// A power-failure simulator: memory that behaves like pmem behind an ADR
// persistence domain (cache-line granularity), with a record of exactly what
// has become durable.
//
// Model. A Simulator owns two buffers of the same size: the working memory
// (what the CPU sees: every store lands here at once) and the media (what
// survives a power failure). Code runs against a Mapping made by Map(), whose
// persist functions are the simulator's:
//   - Flush(range) snapshots each 64-byte line of the range as this thread
//     sees it now and queues the snapshot as pending for this thread;
//   - Drain() (the fence) writes this thread's pending snapshots to media;
//   - Persist = Flush + Drain; Memcpy/Memmove/MemsetPersist store into the
//     working memory, then flush and drain as their CopyFlags say (kCopyNoDrain
//     skips the drain, kCopyNoFlush skips both).
// A store made after a line's flush is not covered by that flush. A line whose
// working content differs from media is unpersisted ("dirty"); at a crash
// each dirty line is lost, kept, or kept in part (any subset of its 8-byte
// words, the unit x86 writes atomically), because CPUs evict lines whenever
// they like. Capture() + Materialize() build such an image; crash.h
// enumerates them.
//
// Thread safety: the persist functions may be called from several threads;
// each thread's Drain fences only that thread's flushes, as SFENCE does.
// Threads must not store to a cache line another thread flushes at the same
// time (the flush reads the line), so crash exploration is single-threaded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "daxstore/mapping.h"
#include "daxstore/status.h"

namespace daxstore::powerfail {

inline constexpr size_t kLine = 64;  // cache line
inline constexpr size_t kWord = 8;   // failure-atomic store

// What a crash does to one unpersisted line.
enum class Fate { kLost, kKept, kPartial };

// The state at one instant, enough to build every crash image of it: the
// media then, and the working content of every line that differed from it.
struct CrashPoint {
  uint64_t fence = 0;  // fences completed before the instant
  std::vector<uint8_t> media;
  std::vector<size_t> dirty;        // line indices, ascending
  std::vector<uint8_t> dirty_data;  // kLine bytes per dirty line
};

// The media a power failure at `point` leaves: each dirty line's fate is
// drawn by `pick` (given its position in point.dirty); for kPartial, `rng`
// chooses which 8-byte words reached media.
std::vector<uint8_t> Materialize(const CrashPoint& point,
                                 const std::function<Fate(size_t)>& pick,
                                 std::mt19937_64& rng);

class Simulator : public std::enable_shared_from_this<Simulator> {
 public:
  // At most this many simulators can be alive at once (each binds its own
  // set of persist functions).
  static constexpr int kMaxLive = 32;

  // A zeroed simulator of `size` bytes (rounded up to a whole line), or one
  // whose working memory and media both start as `image`.
  [[nodiscard]] static Result<std::shared_ptr<Simulator>> Create(size_t size);
  [[nodiscard]] static Result<std::shared_ptr<Simulator>> FromImage(
      std::span<const uint8_t> image);
  ~Simulator();
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  // A Mapping over the working memory whose persist functions feed this
  // simulator. It keeps the simulator alive. Granularity: cache line.
  [[nodiscard]] Result<Mapping> Map();

  size_t size() const { return size_; }
  uint8_t* working() const { return working_; }
  // A copy of what is durable now.
  std::vector<uint8_t> Media() const;
  // Lines (indices) whose working content differs from media now.
  std::vector<size_t> DirtyLines() const;
  // Fences so far (every Drain, including those inside Persist and copies).
  uint64_t fences() const;

  // Called just before each fence makes anything durable, with the number of
  // fences before it; the simulator's lock is not held. Used by Recorder to
  // capture the latest instant between two fences. Null clears it.
  void SetBeforeFence(std::function<void(uint64_t)> hook);

  // The state now, for Materialize().
  CrashPoint Capture() const;

  // The persist functions (public for the function table; use Map()).
  void Persist(const void* p, size_t n);
  void Flush(const void* p, size_t n);
  void Drain();
  void* Copy(void* dst, const void* src, size_t n, unsigned flags);
  void* Set(void* dst, int c, size_t n, unsigned flags);

 private:
  struct Pending {
    size_t line;
    uint64_t thread;
    uint8_t data[kLine];
  };
  explicit Simulator(size_t size);
  void CheckRange(const void* p, size_t n, const char* what) const;
  void Finish(void* dst, size_t n, unsigned flags);

  size_t size_ = 0;
  uint8_t* working_ = nullptr;  // line-aligned
  std::vector<uint8_t> media_;
  int slot_ = -1;
  mutable std::mutex mu_;
  std::vector<Pending> pending_;  // guarded by mu_
  uint64_t fences_ = 0;           // guarded by mu_
  std::function<void(uint64_t)> before_fence_;
};

}  // namespace daxstore::powerfail
