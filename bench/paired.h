// Random 4 KiB blocks per thread, a plain loop over them, and paired
// rounds: two engines take turns in short rounds inside ONE Google
// Benchmark, so both see the same machine at the same moment. On a shared
// VM whose separate runs drift by more than 10%, the per-round ratio is the
// figure to trust.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace daxstore::bench {

inline constexpr size_t kBlock = 4096;

// Random 4 KiB blocks inside the calling thread's slice of `bytes`.
class Blocks {
 public:
  Blocks(const benchmark::State& state, uint64_t bytes, uint64_t seed)
      : rng_(static_cast<uint64_t>(state.thread_index()) + seed) {
    uint64_t slice = bytes / static_cast<uint64_t>(state.threads());
    base_ = slice * static_cast<uint64_t>(state.thread_index());
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
    auto mid = ratios.begin() + static_cast<ptrdiff_t>(ratios.size() / 2);
    std::nth_element(ratios.begin(), mid, ratios.end());
    state.counters["ratio"] = {*mid, benchmark::Counter::kAvgThreads};
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
