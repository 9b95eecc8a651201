// Crash consistency of the heap on the power-failure simulator: at every
// crash point of a transaction, Open recovers the state from before it or
// after it, with no leaked allocation and valid root and pointers.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <set>

#include "daxstore/heap.h"
#include "powerfail/crash.h"

namespace daxstore {
namespace {

using powerfail::CrashCase;
using powerfail::Explore;
using powerfail::ExploreOptions;
using powerfail::ExploreReport;

constexpr size_t kSize = 128 << 10;
constexpr size_t kBlock = 4096;

struct Node {
  uint64_t value;
  PPtr<Node> next;
  PPtr<uint8_t> block;  // kBlock bytes, each equal to value & 0xff
};

struct Root {
  uint64_t count;
  PPtr<Node> head;
};

// Seed from DAXSTORE_POWERFAIL_SEED to replay a failure; 0 picks one.
ExploreOptions Options() {
  ExploreOptions o;
  if (const char* s = std::getenv("DAXSTORE_POWERFAIL_SEED")) {
    o.seed = std::strtoull(s, nullptr, 10);
  }
  return o;
}

std::unique_ptr<Heap> Must(Result<std::unique_ptr<Heap>> r) {
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : nullptr;
}

// What the heap holds, as a comparable value; and a leak check.
Result<std::string> Signature(const Heap& h) {
  DAXSTORE_RETURN_IF_ERROR(h.Check());
  std::set<uint64_t> reachable{h.root_offset()};
  const Root* r = h.Get(h.Root<Root>());
  std::string sig = "count=" + std::to_string(r->count) + ":";
  uint64_t n = 0;
  for (PPtr<Node> p = r->head; p; p = h.Get(p)->next) {
    if (++n > r->count || !reachable.insert(p.offset()).second) {
      return Corruption("list longer than count, or a cycle");
    }
    const Node* node = h.Get(p);
    sig += std::to_string(node->value);
    if (node->block) {
      reachable.insert(node->block.offset());
      const uint8_t* b = h.Get(node->block);
      for (size_t i = 0; i < kBlock; ++i) {
        if (b[i] != (node->value & 0xff)) {
          return Corruption("block of node " + std::to_string(node->value) +
                            " torn at byte " + std::to_string(i));
        }
      }
      sig += "+b";
    }
    sig += ",";
  }
  if (n != r->count) return Corruption("count says more than the list has");
  std::set<uint64_t> live;
  h.ForEachAllocation([&](uint64_t off, uint64_t) { live.insert(off); });
  size_t leaked = 0, dangling = 0;
  for (uint64_t o : live) leaked += !reachable.contains(o);
  for (uint64_t o : reachable) dangling += !live.contains(o);
  if (leaked || dangling) {
    return Corruption(std::to_string(leaked) + " allocations leaked, " +
                      std::to_string(dangling) +
                      " reachable objects not allocated");
  }
  return sig;
}

Status Push(Heap& h, Transaction& tx, uint64_t v, bool with_block) {
  Root* r = h.Get(h.Root<Root>());
  DAXSTORE_ASSIGN_OR_RETURN(PPtr<Node> n, tx.Allocate<Node>());
  PPtr<uint8_t> blk;
  if (with_block) {
    DAXSTORE_ASSIGN_OR_RETURN(uint64_t b, tx.AllocateBytes(kBlock, false));
    blk = PPtr<uint8_t>(b);
    std::memset(h.Get(blk), static_cast<int>(v & 0xff), kBlock);
  }
  *h.Get(n) = Node{v, r->head, blk};
  DAXSTORE_RETURN_IF_ERROR(tx.Set(&r->head, n));
  return tx.Set(&r->count, r->count + 1);
}

Status PopFront(Heap& h, Transaction& tx) {
  Root* r = h.Get(h.Root<Root>());
  if (!r->head) return Status::Ok();
  Node* n = h.Get(r->head);
  if (n->block) DAXSTORE_RETURN_IF_ERROR(tx.Free(n->block));
  DAXSTORE_RETURN_IF_ERROR(tx.Free(r->head));
  DAXSTORE_RETURN_IF_ERROR(tx.Set(&r->head, n->next));
  return tx.Set(&r->count, r->count - 1);
}

// Heap with nodes 1..3 (3 has a block).
Result<std::unique_ptr<Heap>> MakeHeap(Mapping m) {
  auto h = Heap::Create(std::move(m),
                        {.root_size = sizeof(Root), .log_size = 16 << 10});
  if (!h.ok()) return h.status();
  for (uint64_t v = 1; v <= 3; ++v) {
    DAXSTORE_RETURN_IF_ERROR(
        (*h)->Run([&](Transaction& tx) { return Push(**h, tx, v, v == 3); }));
  }
  return h;
}

// Recovers from the crash image and requires one of `allowed`.
Status RecoversTo(Mapping m, const std::set<std::string>& allowed) {
  auto h = Heap::Open(std::move(m));
  if (!h.ok()) return h.status();
  DAXSTORE_ASSIGN_OR_RETURN(std::string sig, Signature(**h));
  if (!allowed.contains(sig)) {
    return Corruption("recovered to a state between transactions: " + sig);
  }
  return Status::Ok();
}

// One transaction that allocates (a node and a 4 KiB block), frees (the
// head and its block), and overwrites existing fields.
Status MixedTransaction(Heap& h) {
  return h.Run([&](Transaction& tx) -> Status {
    DAXSTORE_RETURN_IF_ERROR(PopFront(h, tx));
    Root* r = h.Get(h.Root<Root>());
    Node* second = h.Get(r->head);
    DAXSTORE_RETURN_IF_ERROR(tx.Set(&second->value, second->value + 40));
    return Push(h, tx, 9, true);
  });
}

TEST(HeapCrash, EveryCrashPointOfATransactionRecoversBeforeOrAfter) {
  std::unique_ptr<Heap> heap;
  std::set<std::string> allowed;
  auto setup = [&](Mapping m) -> Status {
    DAXSTORE_ASSIGN_OR_RETURN(heap, MakeHeap(std::move(m)));
    DAXSTORE_ASSIGN_OR_RETURN(std::string sig, Signature(*heap));
    allowed.insert(sig);
    return Status::Ok();
  };
  auto op = [&](Mapping) -> Status {
    DAXSTORE_RETURN_IF_ERROR(MixedTransaction(*heap));
    DAXSTORE_ASSIGN_OR_RETURN(std::string sig, Signature(*heap));
    allowed.insert(sig);
    return Status::Ok();
  };
  auto check = [&](Mapping m, const CrashCase&) {
    return RecoversTo(std::move(m), allowed);
  };
  auto rep = Explore(kSize, setup, op, check, Options());
  ASSERT_TRUE(rep.status.ok()) << rep.status.ToString();
  EXPECT_EQ(allowed.size(), 2u);
  EXPECT_GE(rep.fences, 6u);
  EXPECT_EQ(rep.points, rep.fences + 1);  // exhaustive
  EXPECT_GT(rep.images, rep.points * 3);
}

TEST(HeapCrash, RolledBackTransactionRecoversToBefore) {
  std::unique_ptr<Heap> heap;
  std::set<std::string> allowed;
  auto setup = [&](Mapping m) -> Status {
    DAXSTORE_ASSIGN_OR_RETURN(heap, MakeHeap(std::move(m)));
    DAXSTORE_ASSIGN_OR_RETURN(std::string sig, Signature(*heap));
    allowed.insert(sig);
    return Status::Ok();
  };
  auto op = [&](Mapping) -> Status {
    Status s = heap->Run([&](Transaction& tx) -> Status {
      DAXSTORE_RETURN_IF_ERROR(PopFront(*heap, tx));
      DAXSTORE_RETURN_IF_ERROR(Push(*heap, tx, 5, true));
      return Busy("abort on purpose");
    });
    return s.kind() == ErrorKind::kBusy ? Status::Ok() : Internal(s.ToString());
  };
  auto check = [&](Mapping m, const CrashCase&) {
    return RecoversTo(std::move(m), allowed);
  };
  auto rep = Explore(kSize, setup, op, check, Options());
  ASSERT_TRUE(rep.status.ok()) << rep.status.ToString();
}

TEST(HeapCrash, CrashDuringCreateLeavesNoHeapOrAnEmptyOne) {
  auto op = [](Mapping m) -> Status {
    return Heap::Create(std::move(m), {.root_size = sizeof(Root)}).status();
  };
  auto check = [](Mapping m, const CrashCase&) -> Status {
    auto h = Heap::Open(std::move(m));
    if (h.status().kind() == ErrorKind::kNotFound) return Status::Ok();
    if (!h.ok()) return h.status();
    DAXSTORE_ASSIGN_OR_RETURN(std::string sig, Signature(**h));
    return sig == "count=0:" ? Status::Ok() : Corruption("not empty: " + sig);
  };
  auto rep = Explore(
      kSize, [](Mapping) { return Status::Ok(); }, op, check, Options());
  ASSERT_TRUE(rep.status.ok()) << rep.status.ToString();
}

TEST(HeapCrash, CrashDuringRecoveryRecoversAgain) {
  // A crash image from the middle of MixedTransaction, every dirty line kept:
  // the most recovery has to undo.
  std::vector<uint8_t> image;
  std::set<std::string> before;
  {
    auto sim = powerfail::Simulator::Create(kSize);
    ASSERT_TRUE(sim.ok());
    auto h = Must(MakeHeap(std::move((*sim)->Map()).value()));
    before.insert(Signature(*h).value());
    powerfail::Recorder rec(*sim, 0, 1);
    ASSERT_TRUE(MixedTransaction(*h).ok());
    auto points = rec.Finish();
    ASSERT_GT(points.size(), 4u);
    std::mt19937_64 rng(1);
    image = powerfail::Materialize(
        points[points.size() / 2],
        [](size_t) { return powerfail::Fate::kKept; }, rng);
  }
  auto setup = [&](Mapping m) {
    m.MemcpyPersist(m.data(), image.data(), image.size());
    return Status::Ok();
  };
  auto op = [](Mapping m) { return Heap::Open(std::move(m)).status(); };
  auto check = [&](Mapping m, const CrashCase&) {
    return RecoversTo(std::move(m), before);
  };
  auto rep = Explore(kSize, setup, op, check, Options());
  ASSERT_TRUE(rep.status.ok()) << rep.status.ToString();
  EXPECT_GT(rep.fences, 0u);
}

TEST(HeapCrash, RandomSequenceSampledCrashPoints) {
  ExploreOptions o = Options();
  o.max_points = 60;
  std::unique_ptr<Heap> heap;
  std::set<std::string> allowed;
  auto setup = [&](Mapping m) -> Status {
    DAXSTORE_ASSIGN_OR_RETURN(heap, MakeHeap(std::move(m)));
    allowed.insert(Signature(*heap).value());
    return Status::Ok();
  };
  auto op = [&](Mapping) -> Status {
    std::mt19937_64 rng(7);  // the workload is fixed; crash points are not
    for (int i = 0; i < 40; ++i) {
      int kind = static_cast<int>(rng() % 4);
      Status s = heap->Run([&](Transaction& tx) -> Status {
        if (kind == 0) return PopFront(*heap, tx);
        DAXSTORE_RETURN_IF_ERROR(Push(*heap, tx, 100 + i, kind == 1));
        if (kind == 3) return Busy("rolled back");
        return Status::Ok();
      });
      if (!s.ok() && s.kind() != ErrorKind::kBusy) return s;
      allowed.insert(Signature(*heap).value());
    }
    return Status::Ok();
  };
  auto check = [&](Mapping m, const CrashCase&) {
    return RecoversTo(std::move(m), allowed);
  };
  auto rep = Explore(kSize, setup, op, check, o);
  ASSERT_TRUE(rep.status.ok()) << rep.status.ToString();
  EXPECT_EQ(rep.points, 61u);
  EXPECT_GT(rep.fences, 100u);
}

TEST(HeapCrash, ImagePatternManyBlocksPerTransaction) {
  // What an image backend does: several 4 KiB blocks and their small map
  // records in one transaction, replacing older blocks.
  ExploreOptions o = Options();
  o.max_points = 80;
  o.random_variants = 3;
  std::unique_ptr<Heap> heap;
  std::set<std::string> allowed;
  auto setup = [&](Mapping m) -> Status {
    DAXSTORE_ASSIGN_OR_RETURN(heap, MakeHeap(std::move(m)));
    allowed.insert(Signature(*heap).value());
    return Status::Ok();
  };
  auto op = [&](Mapping) -> Status {
    for (uint64_t round = 0; round < 3; ++round) {
      DAXSTORE_RETURN_IF_ERROR(heap->Run([&](Transaction& tx) -> Status {
        for (uint64_t k = 0; k < 4; ++k) {
          DAXSTORE_RETURN_IF_ERROR(PopFront(*heap, tx));
        }
        for (uint64_t k = 0; k < 4; ++k) {
          DAXSTORE_RETURN_IF_ERROR(Push(*heap, tx, 10 * round + k, true));
        }
        return Status::Ok();
      }));
      allowed.insert(Signature(*heap).value());
    }
    return Status::Ok();
  };
  auto check = [&](Mapping m, const CrashCase&) {
    return RecoversTo(std::move(m), allowed);
  };
  auto rep = Explore(kSize, setup, op, check, o);
  ASSERT_TRUE(rep.status.ok()) << rep.status.ToString();
  EXPECT_EQ(allowed.size(), 4u);
}

}  // namespace
}  // namespace daxstore
