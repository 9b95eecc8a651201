// The image through the C ABI (include/daxstore/daxstore.h): durable 4 KiB
// random writes (pwrite + flush) and reads, 1 and 2 threads, against raw
// MemcpyPersist / memcpy on a mapping of the same kind. Files live in
// --pmem_dir (default /dev/shm), declared emulated pmem; both are written
// whole before any benchmark runs, so neither takes page faults.
//
// paired/write and paired/read: the image and the raw mapping take turns in
// short rounds (the order alternating) in ONE benchmark, so both see the
// same machine at the same moment. Counter `ratio` is the median over
// rounds of raw time / image time: 1.0 means the image is as fast as raw
// memcpy_persist, 0.7 means it reaches 70% of raw throughput (the image's
// target). On a shared 2-vCPU VM this is the figure to trust; the separate
// rows drift by more than 10% between runs.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "daxstore/daxstore.h"
#include "daxstore/mapping.h"
#include "paired.h"

namespace {

constexpr uint64_t kVirtual = 256ull << 20;
using daxstore::bench::kBlock;
using daxstore::bench::RandomBlocks;
std::string g_dir = "/dev/shm";

struct Shared {
  daxstore_image* image = nullptr;
  daxstore::Mapping* raw = nullptr;
  static Shared& Get() {
    static Shared s = Make();
    return s;
  }
  static Shared Make() {
    Shared s;
    std::string img = g_dir + "/daxstore-bench-capi.img";
    std::string raw = g_dir + "/daxstore-bench-capi-raw.img";
    ::unlink(img.c_str());
    daxstore_image_options o;
    daxstore_image_options_init(&o);
    o.virtual_size = kVirtual;
    o.flags = DAXSTORE_EMULATED_PMEM;
    if (daxstore_image_create(img.c_str(), &o, &s.image) != 0) {
      std::fprintf(stderr, "capi_bench: %s\n", daxstore_last_error());
      std::exit(1);
    }
    daxstore::MapOptions mo;
    mo.emulate = daxstore::PersistenceDomain::kMemoryController;
    mo.create_size = kVirtual;
    auto m = daxstore::Mapping::Open(raw, mo);
    if (!m.ok()) std::exit(1);
    s.raw = new daxstore::Mapping(std::move(m).value());
    daxstore::bench::WriteOnce(
        kVirtual, [&](uint64_t off, const uint8_t* d, uint64_t n) {
          (void)daxstore_image_pwrite(s.image, d, n, off);
          s.raw->MemcpyPersist(s.raw->bytes() + off, d, n);
        });
    ::unlink(img.c_str());
    ::unlink(raw.c_str());
    return s;
  }
};

void BM_CapiWrite4KFlush(benchmark::State& state) {
  daxstore_image* img = Shared::Get().image;
  RandomBlocks(state, kVirtual, [&](uint64_t off, uint8_t* b) {
    if (daxstore_image_pwrite(img, b, kBlock, off) != kBlock) std::abort();
    if (daxstore_image_flush(img) != 0) std::abort();
  });
}

void BM_CapiRead4K(benchmark::State& state) {
  daxstore_image* img = Shared::Get().image;
  RandomBlocks(state, kVirtual, [&](uint64_t off, uint8_t* b) {
    if (daxstore_image_pread(img, b, kBlock, off) != kBlock) std::abort();
  });
}

void BM_RawMemcpyPersist4K(benchmark::State& state) {
  daxstore::Mapping& m = *Shared::Get().raw;
  RandomBlocks(state, kVirtual, [&](uint64_t off, uint8_t* b) {
    m.MemcpyPersist(m.bytes() + off, b, kBlock, daxstore::kCopyNonTemporal);
  });
}

void BM_RawRead4K(benchmark::State& state) {
  daxstore::Mapping& m = *Shared::Get().raw;
  RandomBlocks(state, kVirtual, [&](uint64_t off, uint8_t* b) {
    std::memcpy(b, m.bytes() + off, kBlock);
    benchmark::DoNotOptimize(b);
  });
}

// Durable 4 KiB random writes: pwrite + flush vs MemcpyPersist.
void BM_PairedWrite(benchmark::State& state) {
  Shared& s = Shared::Get();
  daxstore::bench::Paired(
      state, kVirtual, "image",
      [&](uint64_t off, uint8_t* b) {
        if (daxstore_image_pwrite(s.image, b, kBlock, off) != kBlock ||
            daxstore_image_flush(s.image) != 0) {
          std::abort();
        }
      },
      "raw",
      [&](uint64_t off, uint8_t* b) {
        s.raw->MemcpyPersist(s.raw->bytes() + off, b, kBlock,
                             daxstore::kCopyNonTemporal);
      });
}

// 4 KiB random reads: pread vs memcpy out of the mapping.
void BM_PairedRead(benchmark::State& state) {
  Shared& s = Shared::Get();
  daxstore::bench::Paired(
      state, kVirtual, "image",
      [&](uint64_t off, uint8_t* b) {
        if (daxstore_image_pread(s.image, b, kBlock, off) != kBlock) {
          std::abort();
        }
      },
      "raw",
      [&](uint64_t off, uint8_t* b) {
        std::memcpy(b, s.raw->bytes() + off, kBlock);
        benchmark::DoNotOptimize(b);
      });
}

BENCHMARK(BM_PairedWrite)
    ->Name("paired/write/image_vs_raw")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(BM_PairedRead)
    ->Name("paired/read/image_vs_raw")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(BM_CapiWrite4KFlush)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_RawMemcpyPersist4K)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_CapiRead4K)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_RawRead4K)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; i++) {
    if (std::strncmp(argv[i], "--pmem_dir=", 11) == 0) g_dir = argv[i] + 11;
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
