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
// libpmemblk flushes with cache-line instructions only where libpmem takes
// the file for pmem; on a plain file it would msync every write. The
// program sets PMEM_IS_PMEM_FORCE=1 (re-executing itself once, since
// libpmem reads it at load), so both engines flush cache lines on the same
// memory, as both would on real pmem.
#include <benchmark/benchmark.h>
#include <libpmemblk.h>
#include <unistd.h>

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
    s.blk = pmemblk_create(pool.c_str(), kBlock, kVirtual + (kVirtual / 16),
                           0600);
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
