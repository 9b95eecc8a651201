// What an out-of-place block write costs at the least, whatever the engine
// around it: the memory traffic and fences of a commit protocol with no
// locks, lookups, checks or allocation, on the same emulated pmem as the
// image benchmarks, paired against raw MemcpyPersist of 4 KiB (the image
// benchmarks' baseline; target >= 0.7x for the image).
//
//   floor/two_fence/vs_raw: an apply that waits for its own fence (as the
//     image commits a write whose old entry is a hole or shared;
//     lib/image/commit.cc) stripped to its stores: the data into a spare block
//     with non-temporal stores and a 64-byte record, one fence; then the new
//     block's refcount, the map entry and the old block's refcount, flushed, a
//     second fence.
//   floor/two_fence_locked/vs_raw: the same under a mutex and a
//     shared_mutex (the engine's stripe lock is lighter: one word).
//   floor/one_fence/vs_raw: a self-committing record: the data, the record
//     and the previous write's three metadata lines under ONE fence, the
//     metadata stores left to the next write's fence, with no checksum of
//     the data in the record.
//   floor/one_fence_crc32c/vs_raw: the same with the record carrying the
//     data's CRC32C (isa-l's crc32_iscsi, SSE4.2 and PCLMULQDQ), computed
//     from the caller's buffer after the non-temporal copy is issued, so
//     it runs while the copy drains: the checksum a real engine needs to
//     tell after a crash whether the data reached media.
//   floor/one_fence_crc32c_first/vs_raw: the same with the CRC32C computed
//     before the copy (the copy then reads a buffer the sum brought into
//     the cache).
//   floor/one_fence_xxh3/vs_raw: the same with XXH3-64 (libxxhash, which
//     the image already links for dedup) instead of CRC32C.
//   floor/read/vs_raw: a read through the map: load the block's entry,
//     then copy the 4 KiB block it names, paired against copying 4 KiB at
//     the offset itself (capi_bench's raw read). The entry's cache and TLB
//     miss come before the data's, so they add to its latency.
//
// The image's own ratio (capi_bench paired/write) can only be below the
// floor of its protocol: the gap between them is the engine's software.
// Flags: --pmem_dir=DIR (default /dev/shm) and
// --domain=memory_controller|cpu_cache (what the file is declared as: with
// cpu_cache, flushes are no-ops and only fences remain).
#include <benchmark/benchmark.h>
#include <isa-l/crc.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "daxstore/mapping.h"
#include "paired.h"
#include "xxhash.h"

namespace {

using daxstore::bench::kBlock;

constexpr uint64_t kData = 256ull << 20;  // blocks the writes land in
constexpr uint64_t kBlocks = kData / kBlock;
constexpr uint64_t kSpares = 64;  // one per thread, beyond kBlocks
constexpr uint64_t kLine = 64;
std::string g_dir = "/dev/shm";
daxstore::PersistenceDomain g_domain =
    daxstore::PersistenceDomain::kMemoryController;

// One mapping: map entries, refcounts, records (one line per thread), data.
struct Layout {
  daxstore::Mapping* m = nullptr;
  uint64_t* map = nullptr;
  uint32_t* ref = nullptr;
  uint8_t* records = nullptr;
  uint8_t* data = nullptr;
  uint8_t* raw = nullptr;  // the raw baseline's blocks (same mapping)
  // Each thread's free block, kept across benchmarks (block i starts as
  // the spare of thread i - kBlocks).
  uint64_t spare[kSpares] = {};

  static Layout& Get() {
    static Layout l = Make();
    return l;
  }
  static Layout Make() {
    const uint64_t map_bytes = (kBlocks + kSpares) * 8;
    const uint64_t ref_bytes = (kBlocks + kSpares) * 4;
    const uint64_t rec_bytes = kSpares * kLine;
    auto round = [](uint64_t n) { return (n + 4095) & ~uint64_t{4095}; };
    const uint64_t meta =
        round(map_bytes) + round(ref_bytes) + round(rec_bytes);
    const uint64_t size = meta + (kBlocks + kSpares) * kBlock + kData;
    std::string path = g_dir + "/daxstore-bench-floor.img";
    ::unlink(path.c_str());
    daxstore::MapOptions mo;
    mo.emulate = g_domain;
    mo.create_size = size;
    auto m = daxstore::Mapping::Open(path, mo);
    ::unlink(path.c_str());
    if (!m.ok()) {
      std::fprintf(stderr, "protocol_floor_bench: %s\n",
                   m.status().ToString().c_str());
      std::exit(1);
    }
    Layout l;
    l.m = new daxstore::Mapping(std::move(m).value());
    uint8_t* p = l.m->bytes();
    l.map = reinterpret_cast<uint64_t*>(p);
    l.ref = reinterpret_cast<uint32_t*>(p + round(map_bytes));
    l.records = p + round(map_bytes) + round(ref_bytes);
    l.data = p + meta;
    l.raw = l.data + (kBlocks + kSpares) * kBlock;
    // Everything written once, so no measured loop takes a page fault:
    // block i maps lba i, each spare is free.
    std::vector<uint8_t> buf(1 << 20, 0x5a);
    for (uint64_t off = 0; off + buf.size() <= size - meta; off += buf.size()) {
      l.m->MemcpyPersist(l.data + off, buf.data(), buf.size());
    }
    for (uint64_t t = 0; t < kSpares; t++) l.spare[t] = kBlocks + t;
    for (uint64_t i = 0; i < kBlocks + kSpares; i++) {
      l.map[i] = i;
      l.ref[i] = i < kBlocks ? 1 : 0;
    }
    std::memset(l.records, 0, rec_bytes);
    l.m->Persist(p, meta);
    return l;
  }
  uint8_t* Block(uint64_t pba) const { return data + pba * kBlock; }
};

// One thread's protocol state: its spare block, its record line and the
// metadata lines its last write left unflushed (one_fence only).
struct Writer {
  explicit Writer(const benchmark::State& state)
      : spare(Layout::Get().spare[state.thread_index()]),
        record(Layout::Get().records +
               static_cast<uint64_t>(state.thread_index()) * kLine) {}
  uint64_t& spare;
  uint8_t* record;
  const void* pending[3] = {nullptr, nullptr, nullptr};
  uint64_t seq = 0;

  // Copies the data into the spare and seals a record naming the move,
  // with sum(buf) (computed after the copy is issued, while it drains) as
  // its data checksum. Returns the old block.
  // With sum_first, the sum is computed before the copy instead.
  template <typename Sum>
  uint64_t Stage(const Layout& l, uint64_t lba, const uint8_t* buf, Sum sum,
                 bool sum_first = false) {
    const uint64_t old = l.map[lba];
    const uint64_t early = sum_first ? sum(buf) : 0;
    l.m->MemcpyPersist(l.Block(spare), buf, kBlock,
                       daxstore::kCopyNonTemporal | daxstore::kCopyNoDrain);
    const uint64_t check = sum_first ? early : sum(buf);
    uint64_t rec[kLine / 8] = {1, ++seq, lba, old, spare, 1, check, 0};
    // Stands in for the record's own checksum.
    rec[7] = rec[1] ^ rec[2] ^ rec[3] ^ rec[4] ^ rec[6];
    std::memcpy(record, rec, sizeof rec);
    l.m->Flush(record, kLine);
    return old;
  }
  void Apply(const Layout& l, uint64_t lba, uint64_t old) {
    l.ref[spare] = 1;
    l.map[lba] = spare;
    l.ref[old] = 0;
    pending[0] = &l.ref[spare];
    pending[1] = &l.map[lba];
    pending[2] = &l.ref[old];
    spare = old;
  }
  void FlushPending(const Layout& l) {
    for (const void* p : pending) {
      if (p) l.m->Flush(p, 8);
    }
  }
};

uint64_t NoSum(const uint8_t*) { return 0; }
uint64_t Crc32c(const uint8_t* b) {
  return crc32_iscsi(const_cast<uint8_t*>(b), static_cast<int>(kBlock), ~0u);
}
uint64_t Xxh3(const uint8_t* b) { return XXH3_64bits(b, kBlock); }

void RawWrite(const Layout& l, uint64_t off, const uint8_t* b) {
  l.m->MemcpyPersist(l.raw + off, b, kBlock, daxstore::kCopyNonTemporal);
}

// Moves block `lba` to the writer's spare with the engine's protocol.
void TwoFenceWrite(const Layout& l, Writer& w, uint64_t lba, const uint8_t* b) {
  const uint64_t old = w.Stage(l, lba, b, NoSum);
  // The data and the record are durable before the map changes.
  l.m->Drain();
  w.Apply(l, lba, old);
  w.FlushPending(l);
  // The move is durable before the write returns.
  l.m->Drain();
}

// One operation per block offset, paired against RawWrite.
template <typename Op>
void AgainstRaw(benchmark::State& state, const Layout& l, Op op) {
  daxstore::bench::Paired(
      state, kData, "floor",
      [&](uint64_t off, uint8_t* b) { op(off / kBlock, b); }, "raw",
      [&](uint64_t off, uint8_t* b) { RawWrite(l, off, b); });
}

void BM_TwoFence(benchmark::State& state) {
  Layout& l = Layout::Get();
  Writer w(state);
  AgainstRaw(state, l,
             [&](uint64_t lba, uint8_t* b) { TwoFenceWrite(l, w, lba, b); });
}

// The same under the locks the engine takes for a write: the thread's lane
// mutex and the block's stripe lock, exclusive (lib/image/engine.h).
void BM_TwoFenceLocked(benchmark::State& state) {
  static std::mutex lanes[kSpares];
  static std::shared_mutex stripes[1024];
  Layout& l = Layout::Get();
  Writer w(state);
  std::mutex& lane = lanes[state.thread_index()];
  AgainstRaw(state, l, [&](uint64_t lba, uint8_t* b) {
    std::lock_guard lane_lock(lane);
    std::lock_guard stripe_lock(
        stripes[(lba * 0x9e3779b97f4a7c15ull >> 32) % 1024]);
    TwoFenceWrite(l, w, lba, b);
  });
}

template <uint64_t (*Sum)(const uint8_t*), bool kSumFirst = false>
void BM_OneFence(benchmark::State& state) {
  Layout& l = Layout::Get();
  Writer w(state);
  AgainstRaw(state, l, [&](uint64_t lba, uint8_t* b) {
    const uint64_t old = w.Stage(l, lba, b, Sum, kSumFirst);
    w.FlushPending(l);
    // The data, the record and the last write's map update are durable
    // before this write returns (and before its own update).
    l.m->Drain();
    w.Apply(l, lba, old);
  });
}

void BM_Read(benchmark::State& state) {
  Layout& l = Layout::Get();
  daxstore::bench::Paired(
      state, kData, "floor",
      [&](uint64_t off, uint8_t* b) {
        const uint64_t pba = l.map[off / kBlock];
        std::memcpy(b, l.Block(pba), kBlock);
        benchmark::DoNotOptimize(b);
      },
      "raw",
      [&](uint64_t off, uint8_t* b) {
        std::memcpy(b, l.raw + off, kBlock);
        benchmark::DoNotOptimize(b);
      });
}

BENCHMARK(BM_TwoFence)
    ->Name("floor/two_fence/vs_raw")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(BM_TwoFenceLocked)
    ->Name("floor/two_fence_locked/vs_raw")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(BM_OneFence<NoSum>)
    ->Name("floor/one_fence/vs_raw")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(BM_OneFence<Crc32c>)
    ->Name("floor/one_fence_crc32c/vs_raw")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(BM_OneFence<Crc32c, true>)
    ->Name("floor/one_fence_crc32c_first/vs_raw")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(BM_OneFence<Xxh3>)
    ->Name("floor/one_fence_xxh3/vs_raw")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(BM_Read)
    ->Name("floor/read/vs_raw")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; i++) {
    if (std::strncmp(argv[i], "--pmem_dir=", 11) == 0) g_dir = argv[i] + 11;
    if (std::strncmp(argv[i], "--domain=", 9) == 0) {
      auto d = daxstore::ParsePersistenceDomain(argv[i] + 9);
      if (!d.ok()) {
        std::fprintf(stderr, "protocol_floor_bench: %s\n",
                     d.status().ToString().c_str());
        return 2;
      }
      g_domain = *d;
    }
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
