// A persistent heap on a daxstore Mapping: a root object, offset-based typed
// pointers, allocate and free, and all-or-nothing transactions that an Open
// after a crash rolls back.
//
//   auto heap = Heap::Create(std::move(mapping), {.root_size = sizeof(Root)});
//   Status s = (*heap)->Run([&](Transaction& tx) -> Status {
//     Root* root = (*heap)->Get((*heap)->Root<Root>());
//     DAXSTORE_ASSIGN_OR_RETURN(PPtr<Node> n, tx.Allocate<Node>());
//     (*heap)->Get(n)->value = 42;               // new: no snapshot needed
//     return tx.Set(&root->head, n);             // old: snapshot, then store
//   });
//
// Own allocator, not libpmemobj: every store and flush goes through the
// Mapping's persist functions, so it runs on any Mapping (fsdax, devdax,
// page-cache or emulated files, the power-failure simulator), with no 8 MiB
// minimum and no second mapping of the file.
//
// Transactions use an undo log: Transaction::AddRange copies the old bytes
// into the log and makes them durable before the caller stores; commit makes
// every store durable, then retires the log with one 8-byte store. A crash
// before that store is rolled back by the next Open; after it, the
// transaction is durable. Allocations and frees are logged the same way, so
// a crash never leaks or double-frees.
//
// Space: 64-byte units. Requests up to 4 KiB take a run of units inside one
// 4 KiB page (a 4 KiB request takes a whole, 4 KiB-aligned page); larger
// ones take whole consecutive pages.
//
// Thread safety: Run() may be called from many threads; transactions on one
// heap run one at a time (a heap-wide lock held for the whole body). Get(),
// Root() and PtrOf() are lock-free arithmetic. Reading objects that another
// thread's transaction may be changing needs the caller's own
// synchronisation. A Heap must outlive its Transactions and must not be
// destroyed while a Run() is in progress.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <type_traits>

#include "daxstore/mapping.h"
#include "daxstore/status.h"

namespace daxstore {

// The offset of an object from the start of its heap; 0 is null. An 8-byte
// trivially copyable value: store it inside persistent objects. Valid at any
// address the heap is mapped at.
template <typename T>
class PPtr {
 public:
  PPtr() = default;
  explicit PPtr(uint64_t offset) : off_(offset) {}
  uint64_t offset() const { return off_; }
  explicit operator bool() const { return off_ != 0; }
  bool operator==(const PPtr&) const = default;

 private:
  uint64_t off_ = 0;
};

struct HeapOptions {
  // Create: bytes of the root object, zeroed (0: no root).
  uint64_t root_size = 0;
  // Create: bytes of undo log, which bounds what one transaction may
  // snapshot. 0: 1/32 of the mapping, at least 16 KiB, at most 8 MiB.
  uint64_t log_size = 0;
};

struct HeapStats {
  uint64_t capacity = 0;   // bytes available to allocations
  uint64_t used = 0;       // bytes in live allocations (root included)
  uint64_t log_size = 0;   // undo-log bytes
  bool recovered = false;  // Open rolled back an interrupted transaction
};

class Transaction;
namespace heap {
struct TxScratch;  // the library's; opaque here
}

class Heap {
 public:
  static constexpr uint64_t kMinSize = 64 << 10;
  static constexpr uint64_t kUnit = 64;    // allocation unit
  static constexpr uint64_t kPage = 4096;  // one bitmap word of units

  // Formats the whole mapping as an empty heap. Fails with kInvalidArgument
  // if the mapping is read-only or smaller than kMinSize, or the root or log
  // do not fit. A crash during Create leaves a mapping Open rejects.
  [[nodiscard]] static Result<std::unique_ptr<Heap>> Create(
      Mapping mapping, const HeapOptions& options = {});
  // Opens a heap Create made, rolling back the transaction a crash
  // interrupted, if any. kNotFound if the mapping holds no heap (or a Create
  // that did not finish), kCorruption if its metadata is inconsistent.
  [[nodiscard]] static Result<std::unique_ptr<Heap>> Open(Mapping mapping);

  ~Heap();
  Heap(const Heap&) = delete;
  Heap& operator=(const Heap&) = delete;

  template <typename T>
  PPtr<T> Root() const {
    return PPtr<T>(root_offset());
  }
  uint64_t root_offset() const;
  uint64_t root_size() const;

  // The object's address in this mapping; null for a null pointer.
  // Precondition: p came from this heap.
  template <typename T>
  T* Get(PPtr<T> p) const {
    return p ? reinterpret_cast<T*>(base() + p.offset()) : nullptr;
  }
  // The inverse of Get. Precondition: obj lies inside this heap.
  template <typename T>
  PPtr<T> PtrOf(const T* obj) const {
    return obj ? PPtr<T>(reinterpret_cast<const uint8_t*>(obj) - base())
               : PPtr<T>();
  }

  // Runs `body` as one transaction. If body returns a failure, or the
  // transaction runs out of log or heap space, everything it stored through
  // the Transaction, allocated or freed is rolled back and that failure is
  // returned. Blocks while another thread's transaction runs. Do not call
  // Run() from inside a body (it would deadlock).
  Status Run(const std::function<Status(Transaction&)>& body);

  HeapStats Stats() const;
  // Calls fn(offset, size) for every live allocation, in address order
  // (sizes rounded up to whole units). Waits for running transactions.
  void ForEachAllocation(
      const std::function<void(uint64_t offset, uint64_t size)>& fn) const;
  // Verifies the allocation metadata; kCorruption says what is wrong.
  Status Check() const;

  const Mapping& mapping() const;

  struct State;  // the library's; opaque here

 private:
  friend class Transaction;
  explicit Heap(std::unique_ptr<State> state);
  uint8_t* base() const;

  std::unique_ptr<State> s_;
};

// The handle a transaction body uses. Valid only inside Heap::Run; not
// thread-safe (one thread per transaction). A failed call leaves the
// transaction doomed: Run rolls it back whatever the body returns.
class Transaction {
 public:
  // Snapshots [p, p + n) into the undo log so rollback restores it. Call it
  // before storing into memory that existed before this transaction; memory
  // allocated in it needs none. kInvalidArgument outside the allocatable
  // area, kNoSpace when the log is full.
  Status AddRange(const void* p, size_t n);
  template <typename T>
  Status Add(T* obj) {
    return AddRange(obj, sizeof(T));
  }
  // Snapshots *field, then stores value into it.
  template <typename T>
  Status Set(T* field, const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    DAXSTORE_RETURN_IF_ERROR(AddRange(field, sizeof(T)));
    *field = value;
    return Status::Ok();
  }

  // Allocates n bytes (64-byte aligned; 4 KiB aligned from 4 KiB up),
  // zeroed if asked. Durable with the transaction; freed again on rollback.
  Result<uint64_t> AllocateBytes(size_t n, bool zero = true);
  template <typename T>
  Result<PPtr<T>> Allocate(size_t n = sizeof(T)) {
    static_assert(std::is_trivially_copyable_v<T>);
    DAXSTORE_ASSIGN_OR_RETURN(uint64_t off, AllocateBytes(n, true));
    return PPtr<T>(off);
  }
  // Frees the allocation starting at `offset` when the transaction commits;
  // it stays readable until then. kInvalidArgument if offset does not start
  // a live allocation or is already freed in this transaction.
  Status FreeBytes(uint64_t offset);
  template <typename T>
  Status Free(PPtr<T> p) {
    return FreeBytes(p.offset());
  }

 private:
  friend class Heap;
  explicit Transaction(Heap::State& heap);
  ~Transaction();
  Status Commit();
  void Rollback();

  Heap::State& heap_;
  heap::TxScratch& s_;  // the heap's, reused by every transaction
};

}  // namespace daxstore
