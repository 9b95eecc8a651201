// pmem vs page-cache I/O: durable writes and reads, side by side in one run.
//
// Engines (each writes `size` bytes and makes them durable):
//   daxstore   Mapping::MemcpyPersist on emulated pmem (cache-line
//              granularity, a DRAM-backed file under --pmem_dir)
//   libpmem    pmem_memcpy_persist on the same mapping
//   pwrite     pwrite + fdatasync to a file under --disk_dir
//   msync      memcpy into an mmap of the disk file + msync
//   odirect    O_DIRECT|O_DSYNC pwrite to the disk file
// Sizes 64 B .. 1 MiB, sequential and random offsets, 1 and 2 threads; each
// thread owns its own slice of the file.
//
// paired/daxstore_vs_libpmem: the two memcpy_persist engines in one
// benchmark, taking turns in short rounds (the order alternating) on two
// halves of the same slice, so both see the same machine at the same
// moment. Its `ratio` counter is the median over rounds of
// libpmem time / daxstore time: >= 1 means daxstore is at least as fast.
// On a shared 2-vCPU VM this is the comparison to trust; the separate
// write/daxstore and write/libpmem rows drift by more than 5% between runs.
// Reads: mapping memcpy, guarded Mapping::Read, and pread through the page
// cache.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <libpmem.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "daxstore/mapping.h"
#include "paired.h"

namespace {

using daxstore::Mapping;

constexpr size_t kFileSize = 256ull << 20;
std::string g_pmem_dir = "/dev/shm";
std::string g_disk_dir = "/var/tmp";

// Targets are created once, on first use, and shared by every benchmark.
struct Targets {
  std::unique_ptr<Mapping> pmem;  // emulated pmem, cache-line granularity
  int disk_fd = -1;               // page-cache file on the disk
  int direct_fd = -1;             // the same file, O_DIRECT|O_DSYNC
  uint8_t* disk_map = nullptr;    // mmap of the disk file
  std::string pmem_path, disk_path;

  static Targets& Get() {
    static Targets t = Make();
    return t;
  }

  static Targets Make() {
    Targets t;
    t.pmem_path = g_pmem_dir + "/daxstore-bench-pmem.img";
    t.disk_path = g_disk_dir + "/daxstore-bench-disk.img";
    daxstore::MapOptions o;
    o.create_size = kFileSize;
    o.allocate = true;
    o.emulate = daxstore::PersistenceDomain::kMemoryController;
    auto m = Mapping::Open(t.pmem_path, o);
    if (!m.ok()) {
      std::fprintf(stderr, "bench: %s\n", m.status().message().c_str());
      std::exit(1);
    }
    t.pmem = std::make_unique<Mapping>(std::move(m).value());
    std::memset(t.pmem->data(), 1, kFileSize);  // fault every page in
    t.disk_fd = ::open(t.disk_path.c_str(), O_RDWR | O_CREAT, 0644);
    if (t.disk_fd < 0 || ::posix_fallocate(t.disk_fd, 0, kFileSize) != 0) {
      std::perror(t.disk_path.c_str());
      std::exit(1);
    }
    t.direct_fd = ::open(t.disk_path.c_str(), O_RDWR | O_DIRECT | O_DSYNC);
    void* p = ::mmap(nullptr, kFileSize, PROT_READ | PROT_WRITE, MAP_SHARED,
                     t.disk_fd, 0);
    if (p == MAP_FAILED) std::exit(1);
    t.disk_map = static_cast<uint8_t*>(p);
    return t;
  }
};

enum class Engine { kDaxstore, kLibpmem, kPwrite, kMsync, kODirect };
enum class Pattern { kSeq, kRandom };

// Offsets within this thread's slice.
class Offsets {
 public:
  Offsets(const benchmark::State& s, size_t size, Pattern p)
      : size_(size), pattern_(p), rng_(1234 + s.thread_index()) {
    size_t slice = kFileSize / static_cast<size_t>(s.threads());
    base_ = slice * static_cast<size_t>(s.thread_index());
    slots_ = slice / size;
  }
  size_t Next() {
    size_t i = pattern_ == Pattern::kSeq ? n_++ % slots_ : rng_() % slots_;
    return base_ + i * size_;
  }

 private:
  size_t size_, base_ = 0, slots_ = 1, n_ = 0;
  Pattern pattern_;
  std::mt19937_64 rng_;
};

void* AlignedBuffer(size_t size) {
  void* p = nullptr;
  if (::posix_memalign(&p, 4096, std::max<size_t>(size, 4096)) != 0) {
    std::exit(1);
  }
  std::memset(p, 0x5a, size);
  return p;
}

void BM_Write(benchmark::State& state, Engine engine, Pattern pattern) {
  Targets& t = Targets::Get();
  const size_t size = static_cast<size_t>(state.range(0));
  if (engine == Engine::kODirect && (t.direct_fd < 0 || size % 512 != 0)) {
    state.SkipWithError(t.direct_fd < 0
                            ? "O_DIRECT not supported by this file system"
                            : "O_DIRECT needs multiples of 512 bytes");
    return;
  }
  std::unique_ptr<void, decltype(&std::free)> buf(AlignedBuffer(size),
                                                  &std::free);
  Offsets offsets(state, size, pattern);
  for (auto _ : state) {
    size_t off = offsets.Next();
    switch (engine) {
      case Engine::kDaxstore:
        t.pmem->MemcpyPersist(t.pmem->bytes() + off, buf.get(), size);
        break;
      case Engine::kLibpmem:
        pmem_memcpy_persist(t.pmem->bytes() + off, buf.get(), size);
        break;
      case Engine::kPwrite:
        if (::pwrite(t.disk_fd, buf.get(), size, static_cast<off_t>(off)) !=
                static_cast<ssize_t>(size) ||
            ::fdatasync(t.disk_fd) != 0) {
          state.SkipWithError("pwrite/fdatasync failed");
        }
        break;
      case Engine::kMsync: {
        std::memcpy(t.disk_map + off, buf.get(), size);
        auto start = (reinterpret_cast<uintptr_t>(t.disk_map) + off) & ~4095ul;
        auto end = reinterpret_cast<uintptr_t>(t.disk_map) + off + size;
        ::msync(reinterpret_cast<void*>(start), end - start, MS_SYNC);
        break;
      }
      case Engine::kODirect:
        if (::pwrite(t.direct_fd, buf.get(), size, static_cast<off_t>(off)) !=
            static_cast<ssize_t>(size)) {
          state.SkipWithError("O_DIRECT pwrite failed");
        }
        break;
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
}

// Offsets for one engine of a pair: its half of this thread's slice.
class HalfOffsets {
 public:
  HalfOffsets(const benchmark::State& s, size_t size, Pattern p, int half)
      : size_(size), pattern_(p), rng_(99 + s.thread_index()) {
    size_t slice = kFileSize / static_cast<size_t>(s.threads());
    base_ = slice * static_cast<size_t>(s.thread_index()) +
            static_cast<size_t>(half) * (slice / 2);
    slots_ = std::max<size_t>(1, slice / 2 / size);
  }
  size_t Next() {
    size_t i = pattern_ == Pattern::kSeq ? n_++ % slots_ : rng_() % slots_;
    return base_ + i * size_;
  }

 private:
  size_t size_, base_ = 0, slots_ = 1, n_ = 0;
  Pattern pattern_;
  std::mt19937_64 rng_;
};

void BM_Paired(benchmark::State& state, Pattern pattern) {
  using Clock = std::chrono::steady_clock;
  Targets& t = Targets::Get();
  const size_t size = static_cast<size_t>(state.range(0));
  std::unique_ptr<void, decltype(&std::free)> buf(AlignedBuffer(size),
                                                  &std::free);
  HalfOffsets dax_off(state, size, pattern, 0),
      pmem_off(state, size, pattern, 1);
  // About 64 KiB per engine per round: long enough to time, short enough
  // that a burst of load from elsewhere lands on both engines alike.
  const size_t ops = std::max<size_t>(1, (64 << 10) / size);
  uint8_t* base = t.pmem->bytes();
  auto run_dax = [&] {
    auto a = Clock::now();
    for (size_t i = 0; i < ops; i++) {
      t.pmem->MemcpyPersist(base + dax_off.Next(), buf.get(), size);
    }
    return std::chrono::duration<double>(Clock::now() - a).count();
  };
  auto run_pmem = [&] {
    auto a = Clock::now();
    for (size_t i = 0; i < ops; i++) {
      pmem_memcpy_persist(base + pmem_off.Next(), buf.get(), size);
    }
    return std::chrono::duration<double>(Clock::now() - a).count();
  };
  daxstore::bench::PairedRounds(state, ops, "daxstore", run_dax, "libpmem",
                                run_pmem);
  state.SetBytesProcessed(
      static_cast<int64_t>(2 * state.iterations() * ops * size));
}

enum class Reader { kMapping, kGuarded, kPread };

void BM_Read(benchmark::State& state, Reader reader, Pattern pattern) {
  Targets& t = Targets::Get();
  const size_t size = static_cast<size_t>(state.range(0));
  std::unique_ptr<void, decltype(&std::free)> buf(AlignedBuffer(size),
                                                  &std::free);
  Offsets offsets(state, size, pattern);
  for (auto _ : state) {
    size_t off = offsets.Next();
    switch (reader) {
      case Reader::kMapping:
        std::memcpy(buf.get(), t.pmem->bytes() + off, size);
        break;
      case Reader::kGuarded:
        if (!t.pmem->Read(off, buf.get(), size).ok()) {
          state.SkipWithError("read failed");
        }
        break;
      case Reader::kPread:
        if (::pread(t.disk_fd, buf.get(), size, static_cast<off_t>(off)) !=
            static_cast<ssize_t>(size)) {
          state.SkipWithError("pread failed");
        }
        break;
    }
    benchmark::DoNotOptimize(buf.get());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
}

void Register() {
  const std::pair<const char*, Engine> engines[] = {
      {"daxstore", Engine::kDaxstore},
      {"libpmem", Engine::kLibpmem},
      {"pwrite_fdatasync", Engine::kPwrite},
      {"mmap_msync", Engine::kMsync},
      {"odirect_dsync", Engine::kODirect}};
  const std::pair<const char*, Pattern> patterns[] = {
      {"seq", Pattern::kSeq}, {"rand", Pattern::kRandom}};
  for (auto [pname, pattern] : patterns) {
    for (auto [ename, engine] : engines) {
      std::string name = std::string("write/") + ename + "/" + pname;
      auto* b =
          benchmark::RegisterBenchmark(name.c_str(), BM_Write, engine, pattern);
      b->RangeMultiplier(4)->Arg(64)->Arg(256)->Arg(4096)->Arg(65536)->Arg(
          1 << 20);
      b->Threads(1)->Threads(2)->UseRealTime();
    }
  }
  for (auto [pname, pattern] : patterns) {
    std::string name = std::string("paired/daxstore_vs_libpmem/") + pname;
    auto* b = benchmark::RegisterBenchmark(name.c_str(), BM_Paired, pattern);
    b->RangeMultiplier(4)->Arg(64)->Arg(256)->Arg(4096)->Arg(65536)->Arg(1
                                                                         << 20);
    b->Threads(1)->Threads(2)->UseRealTime();
  }
  const std::pair<const char*, Reader> readers[] = {
      {"daxstore_memcpy", Reader::kMapping},
      {"daxstore_guarded", Reader::kGuarded},
      {"pread_pagecache", Reader::kPread}};
  for (auto [pname, pattern] : patterns) {
    for (auto [rname, reader] : readers) {
      std::string name = std::string("read/") + rname + "/" + pname;
      auto* b =
          benchmark::RegisterBenchmark(name.c_str(), BM_Read, reader, pattern);
      b->Arg(64)
          ->Arg(4096)
          ->Arg(1 << 20)
          ->Threads(1)
          ->Threads(2)
          ->UseRealTime();
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Our own flags first; Google Benchmark gets the rest.
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--pmem_dir=", 0) == 0) {
      g_pmem_dir = a.substr(11);
    } else if (a.rfind("--disk_dir=", 0) == 0) {
      g_disk_dir = a.substr(11);
    } else {
      rest.push_back(argv[i]);
    }
  }
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  Register();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  Targets& t = Targets::Get();
  ::unlink(t.pmem_path.c_str());
  ::unlink(t.disk_path.c_str());
  return 0;
}
