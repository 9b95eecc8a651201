// A split virtqueue in guest memory, as the device side sees it. The guest
// may change the rings at any time, so every field is read once into a
// local, every index is checked against the queue size, and every buffer
// is translated through the MemoryTable before use.
#pragma once

// (Users compile with VIRTIO_RING_NO_LEGACY: that part is C only.)
#include <linux/virtio_ring.h>
#include <sys/uio.h>

#include <cstdint>
#include <vector>

#include "daxstore/status.h"
#include "vhost/dirty_log.h"
#include "vhost/memory_table.h"

namespace daxstore::vhost {

// Ring addresses as the front end gives them (its virtual addresses).
struct VringAddrs {
  uint64_t desc = 0, avail = 0, used = 0;
};

// One descriptor chain, translated: driver-readable buffers first, then
// device-writable ones (virtio requires that order).
struct Chain {
  uint16_t head = 0;
  std::vector<iovec> out;        // device reads
  std::vector<iovec> in;         // device writes
  std::vector<uint64_t> in_gpa;  // guest-physical address of each `in`
  uint64_t out_bytes = 0, in_bytes = 0;
  // Set when the walk failed but the chain still ends in a writable byte
  // inside guest memory: where to report VIRTIO_BLK_S_IOERR.
  uint8_t* error_status = nullptr;
  uint64_t error_status_gpa = 0;
};

// Bytes of a used ring of `num` entries (flags, idx, ring, avail_event).
inline uint64_t UsedRingBytes(uint32_t num) {
  return 4 + sizeof(vring_used_elem) * uint64_t{num} + 2;
}

inline constexpr uint32_t kMaxIndirect = 1024;  // descriptors per table

// Walks the chain starting at `head` of a descriptor table with `num`
// entries. Rejects: head or next out of range, more than `num` hops (a
// loop), a nested or chained indirect table, an indirect table whose
// length is not a multiple of 16 or is outside guest memory, any buffer
// not wholly inside guest memory, a readable buffer after a writable one.
[[nodiscard]] Status WalkChain(const MemoryTable& mem, const vring_desc* table,
                               uint32_t num, uint16_t head, bool indirect_ok,
                               Chain* chain);

class Virtqueue {
 public:
  // Translates and checks the rings (sizes, alignment). num: 1 to 32768, a
  // power of two.
  [[nodiscard]] static Result<Virtqueue> Attach(const MemoryTable& mem,
                                                const VringAddrs& addrs,
                                                uint32_t num, uint16_t base,
                                                bool indirect_ok);

  // Next available chain. false: nothing pending (or the ring is broken).
  // A malformed chain comes back with ok() false in *status and its head
  // set, so the caller can fail that request and go on.
  bool Pop(const MemoryTable& mem, Chain* chain, Status* status);
  // Returns a chain to the driver with `len` bytes written.
  void Push(uint16_t head, uint32_t len);
  // From now on Push marks the used ring's writes in `log` at `used_gpa`
  // (the ring's log_guest_addr); nullptr: no logging. A write the log does
  // not cover is counted in log_misses().
  void SetLog(const DirtyLog* log, uint64_t used_gpa) {
    log_ = log;
    used_gpa_ = used_gpa;
  }
  uint64_t log_misses() const { return log_misses_; }
  // The chain at `head` again (a request resubmitted after a restart),
  // checked like Pop's.
  [[nodiscard]] Status ChainAt(const MemoryTable& mem, uint16_t head,
                               Chain* chain) const;

  // The used ring's idx as guest memory holds it now.
  uint16_t RingUsedIdx() const;
  // Continue taking requests at avail index `next_avail` and returning
  // them at used index `used_idx` (after inflight recovery).
  void Resume(uint16_t next_avail, uint16_t used_idx) {
    last_avail_ = next_avail;
    used_idx_ = used_idx;
  }

  uint16_t last_avail() const { return last_avail_; }
  uint16_t used_idx() const { return used_idx_; }
  // The driver published more entries than the ring holds: stop.
  bool broken() const { return broken_; }

 private:
  vring_desc* desc_ = nullptr;
  vring_avail* avail_ = nullptr;
  vring_used* used_ = nullptr;
  uint32_t num_ = 0;
  uint16_t last_avail_ = 0;
  uint16_t used_idx_ = 0;
  bool indirect_ok_ = false;
  bool broken_ = false;
  const DirtyLog* log_ = nullptr;
  uint64_t used_gpa_ = 0;
  uint64_t log_misses_ = 0;
};

}  // namespace daxstore::vhost
