// Image engine: durable 4 KiB random writes and reads against raw
// MemcpyPersist on the same kind of mapping, and the time to open a sparse
// 64 GiB image. Files live in --pmem_dir (default /dev/shm), declared
// emulated pmem (cache-line granularity).
//
// paired/zero_detect: what detecting zero blocks costs a write that is not
// zero. Writes whose only non-zero byte is the last (the check reads the
// whole block) with detection on, and the same writes with it off, take
// turns in short rounds in one benchmark; counter `ratio` is the median
// over rounds of time(off) / time(on), 0.95 meaning detection costs 5%.
// paired/read/image_vs_raw: 4 KiB random reads through Image::Read (the
// C++ API, no C ABI around it) against memcpy out of the raw mapping,
// paired like capi_bench's rows, which go through the C ABI.
// paired/overwrite/64_volumes: 4 KiB overwrites of a volume whose image
// has 63 other live volumes (snapshots taken before it was written, so
// every overwrite frees its old block after checking no other volume maps
// it), against the same overwrites in an image with one volume.
// FirstWriteSparse64GiB/V: open of a sparse 64 GiB image (8 volume slots,
// one block written) with V live volumes plus its first write, which compares every refcount with the
// map entries naming its block once per read-write open.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "daxstore/image.h"
#include "daxstore/mapping.h"
#include "paired.h"

namespace {

using daxstore::Image;
using daxstore::ImageOptions;
using daxstore::MapOptions;
using daxstore::Mapping;

using daxstore::bench::kBlock;
using daxstore::bench::RandomBlocks;

constexpr uint64_t kVirtual = 256ull << 20;
std::string g_dir = "/dev/shm";

MapOptions Emulated() {
  MapOptions o;
  o.emulate = daxstore::PersistenceDomain::kMemoryController;
  return o;
}

template <typename T>
T Must(daxstore::Result<T> r) {
  if (!r.ok()) {
    std::fprintf(stderr, "image_bench: %s\n", r.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(r).value();
}

struct Shared {
  std::unique_ptr<Image> image;
  std::unique_ptr<Mapping> raw;
  static Shared& Get() {
    static Shared s = Make();
    return s;
  }
  static Shared Make() {
    Shared s;
    std::string img = g_dir + "/daxstore-bench-image.img";
    std::string raw = g_dir + "/daxstore-bench-raw.img";
    ::unlink(img.c_str());
    ImageOptions o;
    o.virtual_size = kVirtual;
    s.image = std::make_unique<Image>(Must(Image::Create(img, o, Emulated())));
    MapOptions mo = Emulated();
    mo.create_size = kVirtual;
    s.raw = std::make_unique<Mapping>(Must(Mapping::Open(raw, mo)));
    daxstore::bench::WriteOnce(
        kVirtual, [&](uint64_t off, const uint8_t* d, uint64_t n) {
          (void)s.image->Write(off, d, n);
          s.raw->MemcpyPersist(s.raw->bytes() + off, d, n);
        });
    ::unlink(img.c_str());
    ::unlink(raw.c_str());
    return s;
  }
};

void BM_ImageWrite4K(benchmark::State& state) {
  Image& img = *Shared::Get().image;
  RandomBlocks(state, kVirtual, [&](uint64_t off, uint8_t* b) {
    if (!img.Write(off, b, kBlock).ok()) std::abort();
    (void)img.Flush();
  });
}

// Detect-zeroes worst case: the only non-zero byte is the last one, so the
// zero check reads the whole block before the write proceeds. Compare with
// BM_ImageWrite4K (the check stops at the first 64 bytes).
void BM_ImageWrite4KLateNonZero(benchmark::State& state) {
  Image& img = *Shared::Get().image;
  std::vector<uint8_t> late(kBlock, 0);
  RandomBlocks(state, kVirtual, [&](uint64_t off, uint8_t* b) {
    late[kBlock - 1] = b[0];
    if (!img.Write(off, late.data(), kBlock).ok()) std::abort();
  });
}

void BM_RawMemcpyPersist4K(benchmark::State& state) {
  Mapping& m = *Shared::Get().raw;
  RandomBlocks(state, kVirtual, [&](uint64_t off, uint8_t* b) {
    m.MemcpyPersist(m.bytes() + off, b, kBlock, daxstore::kCopyNonTemporal);
  });
}

void BM_ImageRead4K(benchmark::State& state) {
  Image& img = *Shared::Get().image;
  RandomBlocks(state, kVirtual, [&](uint64_t off, uint8_t* b) {
    if (!img.Read(off, b, kBlock).ok()) std::abort();
  });
}

void BM_RawRead4K(benchmark::State& state) {
  Mapping& m = *Shared::Get().raw;
  RandomBlocks(state, kVirtual, [&](uint64_t off, uint8_t* b) {
    std::memcpy(b, m.bytes() + off, kBlock);
    benchmark::DoNotOptimize(b);
  });
}

void BM_OpenSparse64GiB(benchmark::State& state) {
  std::string path = g_dir + "/daxstore-bench-sparse.img";
  ::unlink(path.c_str());
  {
    ImageOptions o;
    o.virtual_size = 64ull << 30;
    Image img = Must(Image::Create(path, o, Emulated()));
    std::vector<uint8_t> buf(kBlock, 1);
    (void)img.Write(40ull << 30, buf.data(), kBlock);
  }
  for (auto _ : state) {
    Image img = Must(Image::Open(path, Emulated()));
    benchmark::DoNotOptimize(img.virtual_size());
  }
  ::unlink(path.c_str());
}

void BM_FirstWriteSparse64GiB(benchmark::State& state) {
  std::string path = g_dir + "/daxstore-bench-sparse-v.img";
  ::unlink(path.c_str());
  std::vector<uint8_t> buf(kBlock, 1);
  {
    ImageOptions o;
    o.virtual_size = 64ull << 30;
    o.max_volumes = 8;
    Image img = Must(Image::Create(path, o, Emulated()));
    (void)img.Write(40ull << 30, buf.data(), kBlock);
    for (int64_t v = 1; v < state.range(0); v++) {
      if (!img.Snapshot("s" + std::to_string(v)).ok()) std::abort();
    }
  }
  for (auto _ : state) {
    Image img = Must(Image::Open(path, Emulated()));
    if (!img.Write(0, buf.data(), kBlock).ok()) std::abort();
  }
  ::unlink(path.c_str());
}

void BM_PairedOverwriteVolumes(benchmark::State& state) {
  using Clock = std::chrono::steady_clock;
  constexpr int kOps = 16;
  constexpr uint64_t kBytes = 64ull << 20;
  struct Pair {
    std::unique_ptr<Image> one, many;
  };
  static Pair p = [] {
    Pair p;
    for (int i = 0; i < 2; i++) {
      std::string path = g_dir + "/daxstore-bench-volumes-" +
                         std::to_string(i) + ".img";
      ::unlink(path.c_str());
      ImageOptions o;
      o.virtual_size = kBytes;
      o.max_volumes = 64;
      auto img = std::make_unique<Image>(Must(Image::Create(path, o, Emulated())));
      for (int v = 1; i == 1 && v < 64; v++) {
        if (!img->Snapshot("s" + std::to_string(v)).ok()) std::abort();
      }
      daxstore::bench::WriteOnce(kBytes,
                                 [&](uint64_t off, const uint8_t* d, uint64_t n) {
                                   (void)img->Write(off, d, n);
                                 });
      ::unlink(path.c_str());
      (i ? p.many : p.one) = std::move(img);
    }
    return p;
  }();
  daxstore::bench::Blocks a(state, kBytes, 5), b(state, kBytes, 5);
  std::vector<uint8_t> buf(kBlock, 3);
  auto round = [&](Image& img, daxstore::bench::Blocks& off) {
    auto t0 = Clock::now();
    for (int i = 0; i < kOps; i++) {
      buf[0] = static_cast<uint8_t>((buf[0] + 1) | 1);
      if (!img.Write(off.Next(), buf.data(), kBlock).ok()) std::abort();
    }
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };
  daxstore::bench::PairedRounds(
      state, kOps, "64_volumes", [&] { return round(*p.many, a); },
      "1_volume", [&] { return round(*p.one, b); });
}

void BM_PairedZeroDetect(benchmark::State& state) {
  using Clock = std::chrono::steady_clock;
  constexpr int kOps = 16;
  Image& img = *Shared::Get().image;
  daxstore::bench::Blocks blocks(state, kVirtual, 11);
  std::vector<uint8_t> late(kBlock, 0);
  auto round = [&](bool detect) {
    // Every thread sets the switch it is about to measure; with one thread
    // (the registered case) nothing else flips it meanwhile.
    img.set_detect_zeroes(detect);
    auto a = Clock::now();
    for (int i = 0; i < kOps; i++) {
      late[kBlock - 1] = static_cast<uint8_t>((late[kBlock - 1] + 1) | 1);
      if (!img.Write(blocks.Next(), late.data(), kBlock).ok()) std::abort();
    }
    return std::chrono::duration<double>(Clock::now() - a).count();
  };
  daxstore::bench::PairedRounds(
      state, kOps, "detect_on", [&] { return round(true); }, "detect_off",
      [&] { return round(false); });
  img.set_detect_zeroes(true);
}

void BM_PairedRead(benchmark::State& state) {
  Shared& s = Shared::Get();
  daxstore::bench::Paired(
      state, kVirtual, "image",
      [&](uint64_t off, uint8_t* b) {
        if (!s.image->Read(off, b, kBlock).ok()) std::abort();
      },
      "raw",
      [&](uint64_t off, uint8_t* b) {
        std::memcpy(b, s.raw->bytes() + off, kBlock);
        benchmark::DoNotOptimize(b);
      });
}

BENCHMARK(BM_PairedRead)
    ->Name("paired/read/image_vs_raw")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(BM_PairedOverwriteVolumes)
    ->Name("paired/overwrite/64_volumes")
    ->Threads(1)
    ->UseRealTime();
BENCHMARK(BM_PairedZeroDetect)
    ->Name("paired/zero_detect/late_nonzero")
    ->Threads(1)
    ->UseRealTime();
BENCHMARK(BM_ImageWrite4K)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_ImageWrite4KLateNonZero)->Threads(1)->UseRealTime();
BENCHMARK(BM_RawMemcpyPersist4K)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_ImageRead4K)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_RawRead4K)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_OpenSparse64GiB)->Unit(benchmark::kMillisecond)->Iterations(10);
BENCHMARK(BM_FirstWriteSparse64GiB)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(5)
    ->Arg(1)
    ->Arg(8);

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
