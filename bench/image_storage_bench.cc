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
#include <string>
#include <vector>

#include "daxstore/daxstore.h"
#include "paired.h"

namespace {

using daxstore::bench::kBlock;
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
    daxstore::bench::WriteOnce(
        g_size, [&](uint64_t off, const uint8_t* d, uint64_t n) {
          if (daxstore_image_pwrite(img, d, n, off) < 0) {
            std::fprintf(stderr, "image_storage_bench: fill: %s\n",
                         daxstore_last_error());
            std::exit(1);
          }
        });
    ::unlink(path.c_str());  // the open mapping keeps the blocks
    return img;
  }();
  return image;
}

// RandomBlocks over the disk, fn also given the image.
template <typename Fn>
void OnRandomBlocks(benchmark::State& state, Fn fn) {
  daxstore_image* img = Image();
  daxstore::bench::RandomBlocks(
      state, g_size, [&](uint64_t off, uint8_t* b) { fn(img, off, b); });
}

void BM_Write4KFlush(benchmark::State& state) {
  OnRandomBlocks(state, [&](daxstore_image* img, uint64_t off, uint8_t* b) {
    if (daxstore_image_pwrite(img, b, kBlock, off) != kBlock ||
        daxstore_image_flush(img) != 0) {
      state.SkipWithError(daxstore_last_error());
    }
  });
}

void BM_Read4K(benchmark::State& state) {
  OnRandomBlocks(state, [&](daxstore_image* img, uint64_t off, uint8_t* b) {
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
