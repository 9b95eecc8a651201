// The image against the engine a user would pick instead for atomic block
// writes on pmem: PMDK's libpmemblk (a userspace BTT), 4 KiB blocks, both
// pools in --pmem_dir (default /dev/shm), written whole before any
// benchmark runs.
//
// paired/write/daxstore_vs_pmemblk: durable 4 KiB random writes, the image
// through the C ABI (pwrite + flush) and pmemblk_write, at the same block
// numbers, taking turns in short rounds (the order alternating) in one
// benchmark. Counter `ratio` is the median over rounds of pmemblk time /
// daxstore time: above 1.0 the image is faster. paired/read/... the same
// for 4 KiB random reads.
//
// paired/scaling/write/daxstore_vs_pmemblk: how each engine's durable 4 KiB
// random writes scale from 1 thread to 2, in one benchmark. Each round runs
// four parts, the order rotating by one part a round: daxstore with 1
// thread, daxstore with 2, pmemblk with 1, pmemblk with 2; every part runs
// 1024 operations per thread on two worker threads started once and
// pinned to a CPU each (the 1-thread parts on either, in turn), each thread on
// its own half of the blocks in the 2-thread parts, the same block numbers for
// both engines. A part's IOPS is its operations over its wall time (first
// thread's start to last thread's end). Counters: daxstore_scaling and
// pmemblk_scaling, the median over rounds of IOPS(2 threads) / IOPS(1 thread);
// ratio, the median over rounds of daxstore_scaling / pmemblk_scaling (1.0 or
// more: daxstore gains at least as much from a second thread as libpmemblk
// does), with ratio_min and ratio_max its range. paired/scaling/read/... the
// same for 4 KiB random reads.
//
// A second thread gains nothing if it gets no second core, which on a
// 2-core machine shared with other work happens often. Each worker reads
// its thread CPU time (CLOCK_THREAD_CPUTIME_ID) around its part; a round
// in which any thread of any of its parts got less than 90% of the time
// from the part's start to its own end (a thread that ends first and
// sleeps did not lack a core) is dropped, not counted in the medians, and
// counted in rounds_dropped, out of `rounds`. cpu_share is the median over
// the 2-thread parts of the threads' CPU time over their time from the
// part's start: 1.0 when both had a core throughout. A thread asleep on a
// lock gets no CPU time either; runq_share, the same median of the time
// the threads were runnable but waiting for a CPU (schedstat's run_delay,
// from their wake-up), tells the two apart: with cpu_share + runq_share
// near 1.0 the missing time was a wait for a core.
//
// libpmemblk flushes with cache-line instructions only where libpmem takes
// the file for pmem; on a plain file it would msync every write. The
// program sets PMEM_IS_PMEM_FORCE=1 (re-executing itself once, since
// libpmem reads it at load), so both engines flush cache lines on the same
// memory, as both would on real pmem.
#include <benchmark/benchmark.h>
#include <libpmemblk.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "daxstore/daxstore.h"
#include "paired.h"

namespace {

constexpr uint64_t kVirtual = 256ull << 20;
using daxstore::bench::kBlock;
std::string g_dir = "/dev/shm";

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "blk_bench: %s\n", what.c_str());
  std::exit(1);
}

struct Shared {
  daxstore_image* image = nullptr;
  PMEMblkpool* blk = nullptr;
  static Shared& Get() {
    static Shared s = Make();
    return s;
  }
  static Shared Make() {
    Shared s;
    const std::string img = g_dir + "/daxstore-bench-blk.img";
    const std::string pool = g_dir + "/daxstore-bench-blk.pmemblk";
    ::unlink(img.c_str());
    ::unlink(pool.c_str());
    daxstore_image_options o;
    daxstore_image_options_init(&o);
    o.virtual_size = kVirtual;
    o.flags = DAXSTORE_EMULATED_PMEM;
    if (daxstore_image_create(img.c_str(), &o, &s.image) != 0) {
      Die(daxstore_last_error());
    }
    // The BTT's own metadata (flog, map) on top of the blocks.
    s.blk =
        pmemblk_create(pool.c_str(), kBlock, kVirtual + (kVirtual / 16), 0600);
    if (!s.blk) Die(pool + ": " + pmemblk_errormsg());
    if (pmemblk_nblock(s.blk) < kVirtual / kBlock) {
      Die(pool + ": fewer blocks than the image has");
    }
    daxstore::bench::WriteOnce(
        kVirtual, [&](uint64_t off, const uint8_t* d, uint64_t n) {
          (void)daxstore_image_pwrite(s.image, d, n, off);
          for (uint64_t b = 0; b < n; b += kBlock) {
            if (pmemblk_write(s.blk, d + b,
                              static_cast<long long>((off + b) / kBlock))) {
              Die(std::string("pmemblk_write: ") + pmemblk_errormsg());
            }
          }
        });
    ::unlink(img.c_str());
    ::unlink(pool.c_str());
    return s;
  }
};

void BM_PairedWrite(benchmark::State& state) {
  Shared& s = Shared::Get();
  daxstore::bench::Paired(
      state, kVirtual, "daxstore",
      [&](uint64_t off, uint8_t* b) {
        if (daxstore_image_pwrite(s.image, b, kBlock, off) != kBlock ||
            daxstore_image_flush(s.image) != 0) {
          std::abort();
        }
      },
      "pmemblk",
      [&](uint64_t off, uint8_t* b) {
        if (pmemblk_write(s.blk, b, static_cast<long long>(off / kBlock))) {
          std::abort();
        }
      });
}

void BM_PairedRead(benchmark::State& state) {
  Shared& s = Shared::Get();
  daxstore::bench::Paired(
      state, kVirtual, "daxstore",
      [&](uint64_t off, uint8_t* b) {
        if (daxstore_image_pread(s.image, b, kBlock, off) != kBlock) {
          std::abort();
        }
      },
      "pmemblk",
      [&](uint64_t off, uint8_t* b) {
        if (pmemblk_read(s.blk, b, static_cast<long long>(off / kBlock))) {
          std::abort();
        }
        benchmark::DoNotOptimize(b);
      });
}

// Rounds of paired/scaling (see the top of the file): dax(offset, buf) and
// blk(offset, buf) run one operation each.
template <typename DaxOp, typename BlkOp>
void Scaling(benchmark::State& state, DaxOp dax, BlkOp blk) {
  using daxstore::bench::Blocks;
  using daxstore::bench::Crew;
  using daxstore::bench::Median;
  constexpr int kOps = 1024;          // per thread per part
  constexpr double kMinShare = 0.90;  // of a part's wall time, per thread
  Crew crew(2);
  // off[engine][0]: the 1-thread part's blocks; [1], [2]: the 2-thread
  // part's threads'. Both engines draw the same ones.
  std::vector<Blocks> off[2];
  for (auto& o : off) {
    o = {Blocks(kVirtual, 7, 0, 1), Blocks(kVirtual, 7, 0, 2),
         Blocks(kVirtual, 7, 1, 2)};
  }
  std::vector<uint8_t> buf[2] = {std::vector<uint8_t>(kBlock, 1),
                                 std::vector<uint8_t>(kBlock, 2)};
  struct Part {
    int engine, threads;  // engine 0: daxstore, 1: pmemblk
  };
  constexpr Part kParts[4] = {{0, 1}, {0, 2}, {1, 1}, {1, 2}};
  std::vector<double> dax_scaling, blk_scaling, ratios, shares, waits;
  int64_t rounds = 0, dropped = 0;
  for (auto _ : state) {
    double iops[2][2] = {};
    bool counted = true;
    for (int k = 0; k < 4; k++) {
      const Part p = kParts[(rounds + k) % 4];
      // A 1-thread part on either worker in turn, so neither CPU's speed
      // weighs on the 1-thread figures alone.
      const auto spans = crew.Run(
          p.threads,
          [&](int t) {
            Blocks& o = off[p.engine][p.threads == 1 ? 0 : 1 + t];
            std::vector<uint8_t>& b = buf[t];
            for (int i = 0; i < kOps; i++) {
              b[0] = static_cast<uint8_t>((b[0] + 1) | 1);  // never all zeros
              if (p.engine == 0) {
                dax(o.Next(), b.data());
              } else {
                blk(o.Next(), b.data());
              }
            }
          },
          p.threads == 1 ? static_cast<int>(rounds % 2) : 0);
      iops[p.engine][p.threads - 1] = p.threads * kOps / Crew::Wall(spans);
      // Each thread's time from the part's start to its own end: one that
      // ends early and sleeps while the other works did not lack a core.
      const double start = Crew::Start(spans);
      double cpu = 0, waited = 0, on = 0;
      for (const Crew::Span& s : spans) {
        cpu += s.cpu;
        waited += s.waited;
        on += s.end - start;
        if (s.cpu < kMinShare * (s.end - start)) counted = false;
      }
      if (p.threads == 2) {
        shares.push_back(cpu / on);
        waits.push_back(waited / on);
      }
    }
    rounds++;
    if (!counted) {
      dropped++;
      continue;
    }
    const double d = iops[0][1] / iops[0][0], b = iops[1][1] / iops[1][0];
    dax_scaling.push_back(d);
    blk_scaling.push_back(b);
    ratios.push_back(d / b);
  }
  if (!ratios.empty()) {  // else every round was dropped: no figure
    state.counters["daxstore_scaling"] = Median(dax_scaling);
    state.counters["pmemblk_scaling"] = Median(blk_scaling);
    state.counters["ratio"] = Median(ratios);
    state.counters["ratio_min"] =
        *std::min_element(ratios.begin(), ratios.end());
    state.counters["ratio_max"] =
        *std::max_element(ratios.begin(), ratios.end());
  }
  state.counters["cpu_share"] = Median(shares);
  state.counters["runq_share"] = Median(waits);
  state.counters["rounds"] = static_cast<double>(rounds);
  state.counters["rounds_dropped"] = static_cast<double>(dropped);
}

void BM_ScalingWrite(benchmark::State& state) {
  Shared& s = Shared::Get();
  Scaling(
      state,
      [&](uint64_t off, uint8_t* b) {
        if (daxstore_image_pwrite(s.image, b, kBlock, off) != kBlock ||
            daxstore_image_flush(s.image) != 0) {
          std::abort();
        }
      },
      [&](uint64_t off, uint8_t* b) {
        if (pmemblk_write(s.blk, b, static_cast<long long>(off / kBlock))) {
          std::abort();
        }
      });
}

void BM_ScalingRead(benchmark::State& state) {
  Shared& s = Shared::Get();
  Scaling(
      state,
      [&](uint64_t off, uint8_t* b) {
        if (daxstore_image_pread(s.image, b, kBlock, off) != kBlock) {
          std::abort();
        }
      },
      [&](uint64_t off, uint8_t* b) {
        if (pmemblk_read(s.blk, b, static_cast<long long>(off / kBlock))) {
          std::abort();
        }
        benchmark::DoNotOptimize(b);
      });
}

BENCHMARK(BM_PairedWrite)
    ->Name("paired/write/daxstore_vs_pmemblk")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(BM_PairedRead)
    ->Name("paired/read/daxstore_vs_pmemblk")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(BM_ScalingWrite)
    ->Name("paired/scaling/write/daxstore_vs_pmemblk")
    ->Iterations(200)
    ->UseRealTime();
BENCHMARK(BM_ScalingRead)
    ->Name("paired/scaling/read/daxstore_vs_pmemblk")
    ->Iterations(200)
    ->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  if (!std::getenv("PMEM_IS_PMEM_FORCE")) {
    ::setenv("PMEM_IS_PMEM_FORCE", "1", 1);
    ::execv("/proc/self/exe", argv);
    Die(std::string("re-exec with PMEM_IS_PMEM_FORCE=1: ") +
        std::strerror(errno));
  }
  for (int i = 1; i < argc; i++) {
    if (std::strncmp(argv[i], "--pmem_dir=", 11) == 0) g_dir = argv[i] + 11;
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
