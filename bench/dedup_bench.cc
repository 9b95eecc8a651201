// Dedup: what finding duplicates costs, and what reading a shared block
// costs, each as a paired ratio in one run (bench/paired.h).
//
// paired/dedup/hash_vs_memcpy: XXH3-128 over 4 KiB blocks of a 64 MiB
// buffer (what the dedup scan does per block) against memcpy of the same
// blocks; ratio = time(memcpy) / time(hash), above 1 when hashing is the
// faster. Counter hash_GBps: the hash's throughput on one core.
// paired/dedup/read_deduped_vs_unshared: 4 KiB random reads through
// Image::Read of blocks an image dedup made shared (each data block named
// by two virtual blocks) against reads of blocks of unique content, the
// same number of each; ratio = time(unshared) / time(deduped), 1.0 when
// they read alike.
// paired/dedup/write_during_pass: 4 KiB random writes to a 32 MiB region
// of volume w (contents drawn from 64, so every pass finds work there)
// while another thread runs group-scope passes back to back over w and
// volumes a and b of w's group, which hold 256 MiB of duplicated data,
// against the same writes with no pass running. Each round waits until a
// pass runs (or none does) and then, during passes, for a random part of
// a pass's time, so the writes meet every phase of it. ratio = time(no pass)
// / time(during passes), median over 60 pairs of rounds, 0.9 meaning a
// running pass costs writes 10%; ratio_min and ratio_max give the range,
// pass_ms the mean time of a pass. The writer and the passes run pinned
// to two cores; they share the caches and memory, and on a loaded machine
// the other jobs' share of the cores.
// paired/dedup/write_during_pass_vs_other_image: the same, the base round
// writing to a twin image (same volumes and content) while the passes run
// on the first: both rounds share the machine with the pass alike, so the
// ratio is what a pass costs writes through the engine (locks, records).
// paired/dedup/write_during_pass_speed_MiBps/0/N: write_during_pass with
// the passes held to N MiB/s (`image dedup --speed`).
// The images live in --pmem_dir (default /dev/shm), declared emulated
// pmem.
#include <benchmark/benchmark.h>
#include <sched.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "daxstore/image.h"
#include "paired.h"

namespace {

using daxstore::bench::kBlock;
using Clock = std::chrono::steady_clock;

std::string g_dir = "/dev/shm";

void Check(const daxstore::Status& st) {
  if (!st.ok()) {
    std::fprintf(stderr, "dedup_bench: %s\n", st.ToString().c_str());
    std::exit(1);
  }
}

template <typename T>
T Must(daxstore::Result<T> r) {
  if (!r.ok()) {
    std::fprintf(stderr, "dedup_bench: %s\n", r.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(r).value();
}

std::vector<uint8_t> Random(size_t n, uint64_t seed) {
  std::vector<uint8_t> v(n);
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i + 8 <= n; i += 8) {
    const uint64_t w = rng();
    std::memcpy(&v[i], &w, 8);
  }
  return v;
}

void BM_HashVsMemcpy(benchmark::State& state) {
  constexpr size_t kBytes = 64 << 20;
  constexpr size_t kPerRound = 256;  // blocks: 1 MiB per engine per round
  static const std::vector<uint8_t> src = Random(kBytes, 1);
  std::vector<uint8_t> dst(kBlock);
  size_t hash_at = 0, copy_at = 0;
  uint64_t sink = 0;
  double hash_total = 0;
  auto hash = [&] {
    auto a = Clock::now();
    for (size_t i = 0; i < kPerRound; i++) {
      sink ^= XXH3_128bits(&src[hash_at], kBlock).low64;
      hash_at = (hash_at + kBlock) % kBytes;
    }
    const double t = std::chrono::duration<double>(Clock::now() - a).count();
    hash_total += t;
    return t;
  };
  auto copy = [&] {
    auto a = Clock::now();
    for (size_t i = 0; i < kPerRound; i++) {
      std::memcpy(dst.data(), &src[copy_at], kBlock);
      benchmark::DoNotOptimize(dst.data());
      benchmark::ClobberMemory();
      copy_at = (copy_at + kBlock) % kBytes;
    }
    return std::chrono::duration<double>(Clock::now() - a).count();
  };
  daxstore::bench::PairedRounds(state, kPerRound, "hash", hash, "memcpy", copy);
  benchmark::DoNotOptimize(sink);
  state.counters["hash_GBps"] =
      static_cast<double>(state.iterations() * kPerRound * kBlock) /
      hash_total / 1e9;
}

void BM_ReadDedupedVsUnshared(benchmark::State& state) {
  constexpr uint64_t kN = 4096;  // blocks per region: 16 MiB
  static std::unique_ptr<daxstore::Image> img = [] {
    const std::string path = g_dir + "/daxstore-bench-dedup.img";
    ::unlink(path.c_str());
    daxstore::ImageOptions o;
    o.virtual_size = 3 * kN * kBlock;
    daxstore::MapOptions mo;
    mo.emulate = daxstore::PersistenceDomain::kMemoryController;
    auto i = std::make_unique<daxstore::Image>(
        Must(daxstore::Image::Create(path, o, mo)));
    ::unlink(path.c_str());  // the mapping keeps it
    // [0, N) and [N, 2N) the same blocks, [2N, 3N) blocks of their own.
    const std::vector<uint8_t> a = Random(kN * kBlock, 2);
    const std::vector<uint8_t> c = Random(kN * kBlock, 3);
    for (const daxstore::Status& st :
         {i->Write(0, a.data(), a.size()),
          i->Write(kN * kBlock, a.data(), a.size()),
          i->Write(2 * kN * kBlock, c.data(), c.size())}) {
      if (!st.ok()) {
        std::fprintf(stderr, "dedup_bench: %s\n", st.ToString().c_str());
        std::exit(1);
      }
    }
    const daxstore::DedupReport d =
        Must(i->Dedup(daxstore::DedupScope::kVolume));
    if (d.freed_blocks != kN) {
      std::fprintf(stderr, "dedup_bench: dedup freed %llu blocks, not %llu\n",
                   static_cast<unsigned long long>(d.freed_blocks),
                   static_cast<unsigned long long>(kN));
      std::exit(1);
    }
    return i;
  }();
  std::mt19937_64 rng(4);
  std::vector<uint8_t> buf(kBlock);
  constexpr int kOps = 16;
  auto round = [&](uint64_t base) {
    auto a = Clock::now();
    for (int i = 0; i < kOps; i++) {
      (void)img->Read(base + (rng() % kN) * kBlock, buf.data(), kBlock);
    }
    return std::chrono::duration<double>(Clock::now() - a).count();
  };
  daxstore::bench::PairedRounds(
      state, kOps, "deduped", [&] { return round(0); }, "unshared",
      [&] { return round(2 * kN * kBlock); });
}

// The image of write_during_pass: volumes a and b of group g hold the
// same 128 MiB (256 MiB of duplicated data); w, in g too, is the guest's
// disk, its first kW blocks written from 64 contents.
constexpr uint64_t kPassN = 32768;  // blocks per volume: 128 MiB
constexpr uint64_t kW = 8192;       // blocks the writer writes: 32 MiB

daxstore::Image PassImage(const std::string& name) {
  const std::string path = g_dir + "/" + name;
  ::unlink(path.c_str());
  daxstore::ImageOptions o;
  o.virtual_size = kPassN * kBlock;
  o.max_volumes = 5;
  // As many data blocks as the set-up writes at its peak, so that it
  // touches every page of them: on a file in /dev/shm a block's first
  // write takes a page fault, which pmem mapped by a device does not.
  o.data_blocks = 2 * kPassN + 2 * kW;
  daxstore::MapOptions mo;
  mo.emulate = daxstore::PersistenceDomain::kMemoryController;
  daxstore::Image img = Must(daxstore::Image::Create(path, o, mo));
  ::unlink(path.c_str());  // the mapping keeps it
  Check(img.Snapshot("empty"));
  for (const char* v : {"a", "b", "w"}) Check(img.Clone("empty", v, "g"));
  daxstore::Image a = Must(img.OpenVolume("a"));
  daxstore::Image b = Must(img.OpenVolume("b"));
  for (uint64_t at = 0; at < kPassN * kBlock; at += 1 << 20) {
    const std::vector<uint8_t> d = Random(1 << 20, 100 + at);
    Check(a.Write(at, d.data(), d.size()));
    Check(b.Write(at, d.data(), d.size()));
  }
  (void)Must(img.Dedup(daxstore::DedupScope::kGroup));
  daxstore::Image w = Must(img.OpenVolume("w"));
  const std::vector<uint8_t> d = Random(2 * kW * kBlock, 99);
  Check(w.Write(0, d.data(), d.size()));
  Check(w.Discard(kW * kBlock, kW * kBlock));
  return img;
}

// Writes random blocks of w's first kW from 64 contents.
class Writer {
 public:
  explicit Writer(const daxstore::Image& img)
      : w_(Must(img.OpenVolume("w"))), pool_(Random(64 * kBlock, 5)) {}
  void Write() {
    const uint64_t at = (rng_() % kW) * kBlock;
    Check(w_.Write(at, &pool_[(rng_() % 64) * kBlock], kBlock));
  }

 private:
  daxstore::Image w_;
  std::vector<uint8_t> pool_;
  std::mt19937_64 rng_{6};
};

// Pins the calling thread to the first CPU it may use, and, through
// Second(), another thread to the second; puts the first back on
// destruction. Does nothing with fewer than two CPUs.
class Pinned {
 public:
  Pinned() {
    if (sched_getaffinity(0, sizeof saved_, &saved_) != 0) return;
    for (int c = 0, n = 0; c < CPU_SETSIZE && n < 2; c++) {
      if (CPU_ISSET(c, &saved_)) cpu_[n++] = c;
    }
    if (cpu_[1] < 0) return;
    Pin(cpu_[0]);
  }
  ~Pinned() {
    if (cpu_[1] >= 0) (void)sched_setaffinity(0, sizeof saved_, &saved_);
  }
  Pinned(const Pinned&) = delete;
  Pinned& operator=(const Pinned&) = delete;
  void Second() const {
    if (cpu_[1] >= 0) Pin(cpu_[1]);
  }

 private:
  static void Pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    (void)sched_setaffinity(0, sizeof set, &set);
  }
  cpu_set_t saved_;
  int cpu_[2] = {-1, -1};
};

// state.range(0) == 0: the base round writes while no pass runs;
// 1: the base round writes to a twin image while the pass runs on the
// first, so both rounds share the machine with the pass alike and the
// ratio is what the pass costs through the engine (locks, records).
// state.range(1): the passes' speed limit in MiB/s (0: none).
void BM_WriteDuringPass(benchmark::State& state) {
  constexpr int kOps = 2048;  // writes per round
  const bool twin = state.range(0) == 1;
  const uint64_t speed = static_cast<uint64_t>(state.range(1)) << 20;
  daxstore::Image img = PassImage("daxstore-bench-dedup-write.img");
  std::unique_ptr<daxstore::Image> other;
  if (twin) {
    other = std::make_unique<daxstore::Image>(
        PassImage("daxstore-bench-dedup-write-twin.img"));
  }
  Writer w(img);
  std::unique_ptr<Writer> w2 =
      twin ? std::make_unique<Writer>(*other) : nullptr;
  for (uint64_t b = 0; b < kW; b++) {
    w.Write();
    if (w2) w2->Write();
  }
  (void)Must(img.Dedup(daxstore::DedupScope::kGroup));
  if (other) (void)Must(other->Dedup(daxstore::DedupScope::kGroup));
  const auto p0 = Clock::now();
  (void)Must(img.Dedup(daxstore::DedupScope::kGroup, {}, speed));
  const auto pass_us =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - p0)
          .count();

  // The writer on one core, the passes on another, as a server runs a
  // guest's I/O thread and its control thread: left to the scheduler on
  // a 2-core VM, about a third of the rounds during passes took twice as
  // long, as when the two threads share one core.
  Pinned pinned;
  // Passes of group scope over img back to back while `run` is set.
  std::mutex mu;
  std::condition_variable cv;
  bool run = false, stop = false, in_pass = false;
  uint64_t passes = 0;
  double pass_seconds = 0;
  std::thread passer([&] {
    pinned.Second();
    std::unique_lock lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return run || stop; });
      if (stop) return;
      in_pass = true;
      cv.notify_all();
      lock.unlock();
      const auto a = Clock::now();
      (void)Must(img.Dedup(daxstore::DedupScope::kGroup, {}, speed));
      const double took =
          std::chrono::duration<double>(Clock::now() - a).count();
      lock.lock();
      in_pass = false;
      passes++;
      pass_seconds += took;
      cv.notify_all();
    }
  });
  std::mt19937_64 delay(7);
  auto round = [&](bool dedup, Writer& writer) {
    {
      // The writes start once a pass runs, or once none does.
      std::unique_lock lock(mu);
      run = dedup;
      cv.notify_all();
      cv.wait(lock, [&] { return in_pass == dedup; });
    }
    // At a point of the pass drawn uniformly (scan, remaps), passes going
    // on back to back.
    if (dedup) {
      std::this_thread::sleep_for(std::chrono::microseconds(
          delay() % static_cast<uint64_t>(pass_us + 1)));
    }
    auto a = Clock::now();
    for (int i = 0; i < kOps; i++) writer.Write();
    return std::chrono::duration<double>(Clock::now() - a).count();
  };
  std::vector<double> ratios;
  daxstore::bench::PairedRounds(
      state, kOps, "during_pass", [&] { return round(true, w); },
      twin ? "other_image" : "no_pass",
      [&] { return twin ? round(true, *w2) : round(false, w); }, &ratios);
  {
    std::unique_lock lock(mu);
    stop = true;
    cv.notify_all();
  }
  passer.join();
  if (!ratios.empty()) {
    std::sort(ratios.begin(), ratios.end());
    state.counters["ratio_min"] = ratios.front();
    state.counters["ratio_max"] = ratios.back();
  }
  state.counters["pass_ms"] = pass_seconds * 1e3 / static_cast<double>(passes);
}

BENCHMARK(BM_HashVsMemcpy)
    ->Name("paired/dedup/hash_vs_memcpy")
    ->Threads(1)
    ->UseRealTime();
BENCHMARK(BM_ReadDedupedVsUnshared)
    ->Name("paired/dedup/read_deduped_vs_unshared")
    ->Threads(1)
    ->UseRealTime();
BENCHMARK(BM_WriteDuringPass)
    ->Name("paired/dedup/write_during_pass")
    ->Args({0, 0})
    ->Iterations(60)
    ->Threads(1)
    ->UseRealTime();
BENCHMARK(BM_WriteDuringPass)
    ->Name("paired/dedup/write_during_pass_speed_MiBps")
    ->Args({0, 1024})
    ->Args({0, 256})
    ->Iterations(60)
    ->Threads(1)
    ->UseRealTime();
BENCHMARK(BM_WriteDuringPass)
    ->Name("paired/dedup/write_during_pass_vs_other_image")
    ->Args({1, 0})
    ->Iterations(60)
    ->Threads(1)
    ->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  const std::string flag = "--pmem_dir=";
  for (int i = 1; i < argc; i++) {
    if (std::strncmp(argv[i], flag.c_str(), flag.size()) == 0) {
      g_dir = argv[i] + flag.size();
    }
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
