// Allocation and transaction throughput of daxstore's heap against raw
// libpmemobj, each on a 64 MiB pool in a file in the same directory.
//
// Both run with pmem flush semantics on an ordinary file: daxstore's
// mapping is declared emulated pmem (memory_controller: cache-line flushes
// through libpmem2), and libpmemobj is told the file is pmem
// (PMEM_IS_PMEM_FORCE=1: cache-line flushes through libpmem). Without that
// both would msync on every persist and measure the page cache instead.
//
//   heap_bench [--dir=/path] [google-benchmark flags]
#include <benchmark/benchmark.h>
#include <libpmemobj.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "daxstore/heap.h"

namespace {

using daxstore::Heap;
using daxstore::PPtr;
using daxstore::Status;
using daxstore::Transaction;

constexpr uint64_t kPool = 64 << 20;
constexpr int kSlots = 1024;
std::string g_dir = "/tmp";

struct OurRoot {
  PPtr<uint8_t> slot[kSlots];
  PPtr<uint8_t> records;  // kSlots records of 64 bytes
};

struct PmemRoot {
  PMEMoid slot[kSlots];
  PMEMoid records;
};

std::string PoolPath(const char* name) {
  return g_dir + "/heap_bench." + std::to_string(getpid()) + "." + name;
}

std::unique_ptr<Heap> OurHeap(benchmark::State& st) {
  std::string path = PoolPath("daxstore");
  std::remove(path.c_str());
  daxstore::MapOptions o;
  o.create_size = kPool;
  o.allocate = true;  // as pmemobj_create does
  o.emulate = daxstore::PersistenceDomain::kMemoryController;
  auto m = daxstore::Mapping::Open(path, o);
  std::remove(path.c_str());  // the mapping keeps it alive
  if (!m.ok()) {
    st.SkipWithError(m.status().ToString().c_str());
    return nullptr;
  }
  auto h = Heap::Create(std::move(*m), {.root_size = sizeof(OurRoot)});
  if (!h.ok()) {
    st.SkipWithError(h.status().ToString().c_str());
    return nullptr;
  }
  Heap& heap = **h;
  Status s = heap.Run([&](Transaction& tx) -> Status {
    OurRoot* r = heap.Get(heap.Root<OurRoot>());
    DAXSTORE_ASSIGN_OR_RETURN(uint64_t rec, tx.AllocateBytes(kSlots * 64));
    return tx.Set(&r->records, PPtr<uint8_t>(rec));
  });
  if (!s.ok()) st.SkipWithError(s.ToString().c_str());
  return std::move(*h);
}

PMEMobjpool* PmemPool(benchmark::State& st) {
  std::string path = PoolPath("pmemobj");
  std::remove(path.c_str());
  PMEMobjpool* pop = pmemobj_create(path.c_str(), "bench", kPool, 0644);
  std::remove(path.c_str());
  if (!pop) {
    st.SkipWithError(pmemobj_errormsg());
    return nullptr;
  }
  PMEMoid root = pmemobj_root(pop, sizeof(PmemRoot));
  auto* r = static_cast<PmemRoot*>(pmemobj_direct(root));
  if (pmemobj_tx_begin(pop, nullptr, TX_PARAM_NONE) == 0) {
    pmemobj_tx_add_range(root, offsetof(PmemRoot, records), sizeof(PMEMoid));
    r->records = pmemobj_tx_zalloc(kSlots * 64, 1);
    pmemobj_tx_commit();
  }
  if (pmemobj_tx_end() != 0) st.SkipWithError(pmemobj_errormsg());
  return pop;
}

// One transaction: free the slot's old block, allocate a new one, publish it.
void BM_Alloc_Ours(benchmark::State& st) {
  auto heap = OurHeap(st);
  if (!heap) return;
  const size_t size = st.range(0);
  OurRoot* r = heap->Get(heap->Root<OurRoot>());
  uint64_t i = 0;
  for (auto _ : st) {
    PPtr<uint8_t>* slot = &r->slot[i++ % kSlots];
    Status s = heap->Run([&](Transaction& tx) -> Status {
      if (*slot) DAXSTORE_RETURN_IF_ERROR(tx.Free(*slot));
      DAXSTORE_ASSIGN_OR_RETURN(uint64_t b, tx.AllocateBytes(size, false));
      return tx.Set(slot, PPtr<uint8_t>(b));
    });
    if (!s.ok()) st.SkipWithError(s.ToString().c_str());
  }
  st.SetItemsProcessed(st.iterations());
}

void BM_Alloc_Pmemobj(benchmark::State& st) {
  PMEMobjpool* pop = PmemPool(st);
  if (!pop) return;
  const size_t size = st.range(0);
  PMEMoid root = pmemobj_root(pop, sizeof(PmemRoot));
  auto* r = static_cast<PmemRoot*>(pmemobj_direct(root));
  uint64_t i = 0;
  for (auto _ : st) {
    const size_t k = i++ % kSlots;
    if (pmemobj_tx_begin(pop, nullptr, TX_PARAM_NONE) == 0) {
      pmemobj_tx_add_range(root, offsetof(PmemRoot, slot) + k * sizeof(PMEMoid),
                           sizeof(PMEMoid));
      if (!OID_IS_NULL(r->slot[k])) pmemobj_tx_free(r->slot[k]);
      r->slot[k] = pmemobj_tx_alloc(size, 1);
      pmemobj_tx_commit();
    }
    if (pmemobj_tx_end() != 0) st.SkipWithError(pmemobj_errormsg());
  }
  st.SetItemsProcessed(st.iterations());
  pmemobj_close(pop);
}

// One transaction: snapshot a 64-byte record and overwrite it.
void BM_Tx64_Ours(benchmark::State& st) {
  auto heap = OurHeap(st);
  if (!heap) return;
  OurRoot* r = heap->Get(heap->Root<OurRoot>());
  uint8_t* recs = heap->Get(r->records);
  uint64_t i = 0;
  for (auto _ : st) {
    auto* rec = reinterpret_cast<uint64_t*>(recs + (i % kSlots) * 64);
    Status s = heap->Run([&](Transaction& tx) -> Status {
      DAXSTORE_RETURN_IF_ERROR(tx.AddRange(rec, 64));
      for (int w = 0; w < 8; ++w) rec[w] = i + w;
      return Status::Ok();
    });
    ++i;
    if (!s.ok()) st.SkipWithError(s.ToString().c_str());
  }
  st.SetItemsProcessed(st.iterations());
}

void BM_Tx64_Pmemobj(benchmark::State& st) {
  PMEMobjpool* pop = PmemPool(st);
  if (!pop) return;
  auto* r = static_cast<PmemRoot*>(
      pmemobj_direct(pmemobj_root(pop, sizeof(PmemRoot))));
  auto* recs = static_cast<uint8_t*>(pmemobj_direct(r->records));
  uint64_t i = 0;
  for (auto _ : st) {
    auto* rec = reinterpret_cast<uint64_t*>(recs + (i % kSlots) * 64);
    if (pmemobj_tx_begin(pop, nullptr, TX_PARAM_NONE) == 0) {
      pmemobj_tx_add_range_direct(rec, 64);
      for (int w = 0; w < 8; ++w) rec[w] = i + w;
      pmemobj_tx_commit();
    }
    if (pmemobj_tx_end() != 0) st.SkipWithError(pmemobj_errormsg());
    ++i;
  }
  st.SetItemsProcessed(st.iterations());
  pmemobj_close(pop);
}

BENCHMARK(BM_Alloc_Ours)->Arg(64)->Arg(4096);
BENCHMARK(BM_Alloc_Pmemobj)->Arg(64)->Arg(4096);
BENCHMARK(BM_Tx64_Ours);
BENCHMARK(BM_Tx64_Pmemobj);

}  // namespace

int main(int argc, char** argv) {
  // libpmem reads PMEM_IS_PMEM_FORCE when it loads, before main: set it
  // and start again.
  if (!std::getenv("PMEM_IS_PMEM_FORCE")) {
    setenv("PMEM_IS_PMEM_FORCE", "1", 1);
    execv("/proc/self/exe", argv);
    std::perror("heap_bench: re-exec");
    return 1;
  }
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--dir=", 6) == 0) {
      g_dir = argv[i] + 6;
      for (int j = i; j < argc - 1; ++j) argv[j] = argv[j + 1];
      --argc;
      --i;
    }
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
