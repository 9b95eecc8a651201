// Random 4 KiB blocks per thread, a plain loop over them, and paired
// rounds: two engines take turns in short rounds inside ONE Google
// Benchmark, so both see the same machine at the same moment. On a shared
// VM whose separate runs drift by more than 10%, the per-round ratio is the
// figure to trust.
#pragma once

#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace daxstore::bench {

inline constexpr size_t kBlock = 4096;

// Random 4 KiB blocks inside the calling thread's slice of `bytes`, or
// inside thread `index`'s slice of `threads`: the same seed and slice give
// the same blocks.
class Blocks {
 public:
  Blocks(const benchmark::State& state, uint64_t bytes, uint64_t seed)
      : Blocks(bytes, seed, state.thread_index(), state.threads()) {}
  Blocks(uint64_t bytes, uint64_t seed, int index, int threads)
      : rng_(static_cast<uint64_t>(index) + seed) {
    uint64_t slice = bytes / static_cast<uint64_t>(threads);
    base_ = slice * static_cast<uint64_t>(index);
    n_ = std::max<uint64_t>(slice / kBlock, 1);
  }
  uint64_t Next() { return base_ + (rng_() % n_) * kBlock; }

 private:
  std::mt19937_64 rng_;
  uint64_t base_ = 0, n_ = 1;
};

// One operation per iteration of `state` on random 4 KiB blocks of the
// calling thread's slice of `bytes`: fn(offset, buf), buf a block whose
// first byte changes every call and is never zero (a write stores data).
template <typename Fn>
void RandomBlocks(benchmark::State& state, uint64_t bytes, Fn fn) {
  Blocks off(state, bytes, 1);
  std::vector<uint8_t> buf(kBlock,
                           static_cast<uint8_t>(1 + state.thread_index()));
  for (auto _ : state) {
    buf[0] = static_cast<uint8_t>((buf[0] + 1) | 1);
    fn(off.Next(), buf.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBlock));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

// The median of `v` (the upper one of an even count); 0 when empty.
inline double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  auto mid = v.begin() + static_cast<ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

// Worker threads started once, each pinned to a CPU of its own while there
// are enough, and handed rounds: Run(n, fn) has workers 0..n-1 each call
// fn(worker) at once and, when all have returned, gives
// for each the span it ran and the CPU time its thread got meanwhile
// (CLOCK_THREAD_CPUTIME_ID) and spent runnable but waiting for a CPU from
// its wake-up for the round to its end (the run_delay of
// /proc/thread-self/schedstat; 0 without it). A
// worker that got less CPU time than its round's Wall() was off a core
// part of the round: waiting for one (preempted), or asleep (on a lock,
// say).
class Crew {
 public:
  struct Span {
    double start = 0, end = 0;  // seconds on the steady clock
    double cpu = 0;             // seconds of the thread's CPU time
    double waited = 0;          // seconds runnable without a CPU
  };

  explicit Crew(int workers)
      : start_(static_cast<size_t>(workers)),
        spans_(static_cast<size_t>(workers)) {
    for (int i = 0; i < workers; i++) {
      threads_.emplace_back([this, i] { Loop(i); });
    }
  }
  ~Crew() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    for (auto& cv : start_) cv.notify_one();
    for (auto& t : threads_) t.join();
  }
  Crew(const Crew&) = delete;
  Crew& operator=(const Crew&) = delete;

  // With `first`, workers first, first + 1, ... (modulo their number) run
  // the round, fn(k) on the k-th of them, whose span is the k-th returned.
  std::vector<Span> Run(int n, const std::function<void(int)>& fn,
                        int first = 0) {
    std::unique_lock lock(mu_);
    fn_ = &fn;
    n_ = n;
    first_ = first;
    pending_ = n;
    round_++;
    // Only the workers of the round wake: one woken for nothing could wait
    // for its CPU into the next round.
    for (int k = 0; k < n; k++) start_[Worker(k)].notify_one();
    done_.wait(lock, [&] { return pending_ == 0; });
    return {spans_.begin(), spans_.begin() + n};
  }

  // The first worker's start.
  static double Start(const std::vector<Span>& spans) {
    double a = spans.at(0).start;
    for (const Span& s : spans) a = std::min(a, s.start);
    return a;
  }
  // From the first worker's start to the last one's end.
  static double Wall(const std::vector<Span>& spans) {
    double b = spans.at(0).end;
    for (const Span& s : spans) b = std::max(b, s.end);
    return b - Start(spans);
  }

 private:
  static double Now() {
    return std::chrono::duration<double>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  static double ThreadCpu() {
    timespec ts{};
    (void)clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) +
           static_cast<double>(ts.tv_nsec) * 1e-9;
  }
  // The thread's run_delay in seconds, read from `fd`; 0 when fd < 0.
  static double RunDelay(int fd) {
    char buf[128];
    if (fd < 0) return 0;
    const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return 0;
    buf[n] = 0;
    unsigned long long on_cpu = 0, delay = 0;
    if (std::sscanf(buf, "%llu %llu", &on_cpu, &delay) != 2) return 0;
    return static_cast<double>(delay) * 1e-9;
  }
  // Pins the calling thread to the i-th CPU the process may use (modulo
  // their number), so two workers run on two cores: left to the scheduler,
  // a worker woken beside another often waits behind it on one CPU for
  // longer than a short round lasts.
  static void Pin(int i) {
    cpu_set_t allowed, one;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return;
    const int n = CPU_COUNT(&allowed);
    if (n < 1) return;
    for (int c = 0, k = 0; c < CPU_SETSIZE; c++) {
      if (!CPU_ISSET(c, &allowed) || k++ != i % n) continue;
      CPU_ZERO(&one);
      CPU_SET(c, &one);
      (void)sched_setaffinity(0, sizeof one, &one);
      return;
    }
  }
  size_t Worker(int k) const {
    return static_cast<size_t>(first_ + k) % start_.size();
  }
  void Loop(int i) {
    Pin(i);
    const int fd = ::open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
    uint64_t seen = 0;
    std::unique_lock lock(mu_);
    const int workers = static_cast<int>(start_.size());
    for (;;) {
      Span s;
      int k = 0;  // the worker's place in the round
      start_[static_cast<size_t>(i)].wait(lock, [&] {
        k = (i - first_ % workers + workers) % workers;
        if (stop_ || (round_ != seen && k < n_)) return true;
        // Read as the thread goes to sleep: the wait for a CPU once woken
        // for its round counts too.
        s.waited = -RunDelay(fd);
        return false;
      });
      if (stop_) break;
      seen = round_;
      const std::function<void(int)>* fn = fn_;
      lock.unlock();
      s.cpu = -ThreadCpu();  // the CPU window holds the wall one
      s.start = Now();
      (*fn)(k);
      s.end = Now();
      s.cpu += ThreadCpu();
      s.waited += RunDelay(fd);
      lock.lock();
      spans_[static_cast<size_t>(k)] = s;
      if (--pending_ == 0) done_.notify_one();
    }
    if (fd >= 0) ::close(fd);
  }

  std::mutex mu_;
  std::vector<std::condition_variable> start_;  // one a worker
  std::condition_variable done_;
  const std::function<void(int)>* fn_ = nullptr;
  int n_ = 0, first_ = 0, pending_ = 0;
  uint64_t round_ = 0;
  bool stop_ = false;
  std::vector<Span> spans_;
  std::vector<std::thread> threads_;  // last: started once the rest is set
};

// Calls write(offset, data, n) over [0, bytes) in 1 MiB pieces of 0x5a:
// every block written once before measuring, so reads and overwrites find
// data and no measured loop takes a page fault.
template <typename Write>
void WriteOnce(uint64_t bytes, Write write) {
  std::vector<uint8_t> buf(1 << 20, 0x5a);
  for (uint64_t off = 0; off < bytes; off += buf.size()) {
    write(off, buf.data(), std::min<uint64_t>(buf.size(), bytes - off));
  }
}

// Runs rounds of `test` and `base` in turns, the order alternating; each
// round runs `ops` operations and returns the seconds it took. Sets
// counters: ratio = median over rounds of base time / test time (1.0: as
// fast as the base, 0.7: 70% of its throughput), plus NAME_ns for each of
// test_name and base_name, the mean time per operation. With `all`, the
// per-round ratios are stored there too.
template <typename TestRound, typename BaseRound>
void PairedRounds(benchmark::State& state, size_t ops, const char* test_name,
                  TestRound test, const char* base_name, BaseRound base,
                  std::vector<double>* all = nullptr) {
  std::vector<double> ratios;
  double test_total = 0, base_total = 0;
  bool test_first = true;
  for (auto _ : state) {
    double t, b;
    if (test_first) {
      t = test();
      b = base();
    } else {
      b = base();
      t = test();
    }
    test_first = !test_first;
    test_total += t;
    base_total += b;
    if (t > 0) ratios.push_back(b / t);
  }
  const double n =
      static_cast<double>(state.iterations()) * static_cast<double>(ops);
  if (all) *all = ratios;
  if (!ratios.empty()) {
    state.counters["ratio"] = {Median(ratios), benchmark::Counter::kAvgThreads};
  }
  state.counters[std::string(test_name) + "_ns"] = {
      test_total * 1e9 / n, benchmark::Counter::kAvgThreads};
  state.counters[std::string(base_name) + "_ns"] = {
      base_total * 1e9 / n, benchmark::Counter::kAvgThreads};
}

// PairedRounds of 16 operations each over random 4 KiB blocks of `bytes`:
// `test` and `base` each run one operation at an offset, given a buffer
// whose first byte changes every call and is never zero.
template <typename TestOp, typename BaseOp>
void Paired(benchmark::State& state, uint64_t bytes, const char* test_name,
            TestOp test, const char* base_name, BaseOp base) {
  using Clock = std::chrono::steady_clock;
  constexpr int kOps = 16;  // 64 KiB per engine per round
  Blocks test_off(state, bytes, 7), base_off(state, bytes, 7);
  std::vector<uint8_t> buf(kBlock,
                           static_cast<uint8_t>(1 + state.thread_index()));
  auto round = [&](auto& op, Blocks& off) {
    auto a = Clock::now();
    for (int i = 0; i < kOps; i++) {
      buf[0] = static_cast<uint8_t>((buf[0] + 1) | 1);  // never all zeros
      op(off.Next(), buf.data());
    }
    return std::chrono::duration<double>(Clock::now() - a).count();
  };
  PairedRounds(
      state, kOps, test_name, [&] { return round(test, test_off); }, base_name,
      [&] { return round(base, base_off); });
  state.SetBytesProcessed(
      static_cast<int64_t>(2 * state.iterations() * kOps * kBlock));
}

}  // namespace daxstore::bench
