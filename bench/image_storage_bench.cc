// A daxstore image through the C ABI on whatever storage --dir names:
// durable 4 KiB random writes (pwrite + flush) and 4 KiB random reads, 1
// and 2 threads. bench/same_storage.sh runs it beside qemu-img bench and
// fio on the same file system (a DAX mount in the kernel tier, /dev/shm, a
// disk). The image is opened as the storage is: MAP_SYNC on a DAX file,
// msync on an ordinary file, unless --emulate declares the file pmem.
//   image_storage_bench --dir=DIR [--size_mib=N] [--emulate] [gbench flags]
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "daxstore/daxstore.h"

namespace {

constexpr size_t kBlock = 4096;
std::string g_dir = "/dev/shm";
uint64_t g_size = 64ull << 20;
bool g_emulate = false;

daxstore_image* Image() {
  static daxstore_image* image = [] {
    std::string path = g_dir + "/daxstore-storage-bench.img";
    ::unlink(path.c_str());
    daxstore_image_options o;
    daxstore_image_options_init(&o);
    o.virtual_size = g_size;
    o.flags = g_emulate ? DAXSTORE_EMULATED_PMEM : 0;
    daxstore_image* img = nullptr;
    if (daxstore_image_create(path.c_str(), &o, &img) != 0) {
      std::fprintf(stderr,
                   "image_storage_bench: %s (--dir must name a writable "
                   "folder on the storage to measure)\n",
                   daxstore_last_error());
      std::exit(1);
    }
    // Every block written once: the writes below overwrite allocated blocks
    // and the reads find data, as qemu-img bench does after its fill pass.
    std::vector<uint8_t> buf(1 << 20, 0x5a);
    for (uint64_t off = 0; off < g_size; off += buf.size()) {
      if (daxstore_image_pwrite(img, buf.data(), buf.size(), off) < 0) {
        std::fprintf(stderr, "image_storage_bench: fill: %s\n",
                     daxstore_last_error());
        std::exit(1);
      }
    }
    ::unlink(path.c_str());  // the open mapping keeps the blocks
    return img;
  }();
  return image;
}

// Each thread owns a slice of the disk; offsets are random blocks in it.
template <typename Fn>
void RandomBlocks(benchmark::State& state, Fn fn) {
  daxstore_image* img = Image();
  uint64_t slice = g_size / state.threads();
  uint64_t base = slice * state.thread_index();
  std::mt19937_64 rng(state.thread_index() + 1);
  std::vector<uint8_t> buf(kBlock,
                           static_cast<uint8_t>(1 + state.thread_index()));
  for (auto _ : state) {
    uint64_t off = base + (rng() % (slice / kBlock)) * kBlock;
    buf[0] = static_cast<uint8_t>((buf[0] + 1) | 1);  // never all zeros
    fn(img, off, buf.data());
  }
  state.SetBytesProcessed(state.iterations() * kBlock);
  state.SetItemsProcessed(state.iterations());
}

void BM_Write4KFlush(benchmark::State& state) {
  RandomBlocks(state, [&](daxstore_image* img, uint64_t off, uint8_t* b) {
    if (daxstore_image_pwrite(img, b, kBlock, off) != kBlock ||
        daxstore_image_flush(img) != 0) {
      state.SkipWithError(daxstore_last_error());
    }
  });
}

void BM_Read4K(benchmark::State& state) {
  RandomBlocks(state, [&](daxstore_image* img, uint64_t off, uint8_t* b) {
    if (daxstore_image_pread(img, b, kBlock, off) != kBlock) {
      state.SkipWithError(daxstore_last_error());
    }
  });
}

BENCHMARK(BM_Write4KFlush)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_Read4K)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> rest;
  for (int i = 0; i < argc; i++) {
    if (std::strncmp(argv[i], "--dir=", 6) == 0) {
      g_dir = argv[i] + 6;
    } else if (std::strncmp(argv[i], "--size_mib=", 11) == 0) {
      g_size = std::strtoull(argv[i] + 11, nullptr, 10) << 20;
    } else if (std::strcmp(argv[i], "--emulate") == 0) {
      g_emulate = true;
    } else {
      rest.push_back(argv[i]);
    }
  }
  if (g_size < (1 << 20)) {
    std::fprintf(stderr,
                 "image_storage_bench: --size_mib must be at least 1 (e.g. "
                 "--size_mib=64)\n");
    return 2;
  }
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  benchmark::AddCustomContext("dir", g_dir);
  benchmark::AddCustomContext("emulated_pmem", g_emulate ? "yes" : "no");
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
