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
// paired/dedup/write_during_pass: 4 KiB random writes (contents drawn from
// 64, so every pass finds work) while another thread runs dedup passes
// back to back, against the same writes with no pass running; ratio =
// time(no pass) / time(during passes), 0.9 meaning a running pass costs
// writes 10%.
// The images live in --pmem_dir (default /dev/shm), declared emulated
// pmem.
#include <benchmark/benchmark.h>
#include <unistd.h>
#include <xxhash.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
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

void BM_WriteDuringPass(benchmark::State& state) {
  constexpr uint64_t kN = 8192;  // blocks: 32 MiB
  constexpr int kOps = 512;      // writes per round
  const std::string path = g_dir + "/daxstore-bench-dedup-write.img";
  ::unlink(path.c_str());
  daxstore::ImageOptions o;
  o.virtual_size = kN * kBlock;
  daxstore::MapOptions mo;
  mo.emulate = daxstore::PersistenceDomain::kMemoryController;
  daxstore::Image img = Must(daxstore::Image::Create(path, o, mo));
  ::unlink(path.c_str());
  const std::vector<uint8_t> pool = Random(64 * kBlock, 5);
  std::mt19937_64 rng(6);
  auto write = [&] {
    const uint64_t at = (rng() % kN) * kBlock;
    (void)img.Write(at, &pool[(rng() % 64) * kBlock], kBlock);
  };
  for (uint64_t b = 0; b < kN; b++) write();
  daxstore::Image passes = Must(img.OpenVolume("base"));
  auto round = [&](bool dedup) {
    std::atomic<bool> stop{false};
    std::thread t;
    if (dedup) {
      t = std::thread([&] {
        while (!stop.load()) (void)passes.Dedup(daxstore::DedupScope::kVolume);
      });
    }
    auto a = Clock::now();
    for (int i = 0; i < kOps; i++) write();
    const double s = std::chrono::duration<double>(Clock::now() - a).count();
    stop = true;
    if (t.joinable()) t.join();
    return s;
  };
  daxstore::bench::PairedRounds(
      state, kOps, "during_pass", [&] { return round(true); }, "no_pass",
      [&] { return round(false); });
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
