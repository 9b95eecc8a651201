// Inflight I/O tracking for split virtqueues (QEMU docs/interop/
// vhost-user.rst, "Inflight I/O tracking"). The backend creates a shared
// memory region on GET_INFLIGHT_FD; the front end keeps it and hands it to
// every backend it connects to with SET_INFLIGHT_FD. Each ring records there
// which requests it took from the driver and has not yet returned, so a
// backend started after a crash resubmits exactly those, in the order they
// were taken, before it takes new ones.
//
// The region lives in RAM (a memfd the front end holds): it survives the
// backend process, not the host. Nothing in it is trusted: a backend that
// maps one checks sizes against the file, and every index read from it
// against the ring.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "daxstore/platform.h"
#include "daxstore/status.h"
#include "vhost/protocol.h"

namespace daxstore::vhost {

// The spec's per-descriptor state (DescStateSplit).
struct InflightDesc {
  uint8_t inflight;  // 1: this head was taken and not yet returned
  uint8_t padding[5];
  uint16_t next;     // links the last batch of returned heads
  uint64_t counter;  // order in which heads were taken
};
static_assert(sizeof(InflightDesc) == 16);

// The spec's per-queue header (QueueRegionSplit), followed by desc_num
// InflightDesc.
struct InflightQueueHeader {
  uint64_t features;  // 0
  uint16_t version;   // 0: not yet used by any backend; 1: in use
  uint16_t desc_num;
  uint16_t last_batch_head;
  uint16_t used_idx;  // the used ring's idx once the last batch was cleared
};
static_assert(sizeof(InflightQueueHeader) == 16);

inline constexpr uint16_t kInflightVersion = 1;
inline constexpr uint64_t kInflightQueueAlign = 64;
inline constexpr uint64_t kInflightPageSize = 4096;  // mmap_offset unit

// Bytes of one queue's slot for queue_size descriptors.
uint64_t InflightQueueBytes(uint32_t queue_size);

// Checks a GET_INFLIGHT_FD request: 1 to max_queues queues of 1 to 32768
// descriptors.
[[nodiscard]] Status CheckInflightRequest(const InflightInfo& info,
                                          uint32_t max_queues);

// The whole region, mapped shared; unmapped on destruction.
class InflightRegion {
 public:
  InflightRegion() = default;
  InflightRegion(InflightRegion&&) noexcept;
  InflightRegion& operator=(InflightRegion&&) noexcept;
  InflightRegion(const InflightRegion&) = delete;
  InflightRegion& operator=(const InflightRegion&) = delete;
  ~InflightRegion();

  // A new zeroed region for `info` (CheckInflightRequest first) in sealed
  // shared memory; *fd gets its descriptor (the caller closes it) and
  // *reply the description to send back.
  [[nodiscard]] static Result<InflightRegion> Create(
      std::shared_ptr<Platform> os, const InflightInfo& info, int* fd,
      InflightInfo* reply);
  // Maps the region a front end handed back. Rejects: a count or size out of
  // range, mmap_size other than the layout's, an offset that is not
  // page-aligned, a file whose size is not sealed or that ends before
  // offset + size. Takes nothing from fd.
  [[nodiscard]] static Result<InflightRegion> Map(std::shared_ptr<Platform> os,
                                                  int fd,
                                                  const InflightInfo& info,
                                                  uint32_t max_queues);

  uint16_t num_queues() const { return num_queues_; }
  uint16_t queue_size() const { return queue_size_; }
  // Queue i's header (i < num_queues()).
  InflightQueueHeader* queue(uint32_t i) const;

 private:
  void Release();
  std::shared_ptr<Platform> os_;
  uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  uint16_t num_queues_ = 0;
  uint16_t queue_size_ = 0;
};

// One ring's view of its slot; used only by that ring's worker.
class InflightQueue {
 public:
  // `slot` holds a header and `desc_num` InflightDesc (desc_num is what
  // the region was made for; the header's copy is not trusted).
  InflightQueue(InflightQueueHeader* slot, uint16_t desc_num)
      : h_(slot),
        desc_(reinterpret_cast<InflightDesc*>(slot + 1)),
        desc_num_(desc_num) {}

  struct Resume {
    std::vector<uint16_t> heads;  // to resubmit, in the order taken
    uint16_t next_avail = 0;      // where to take new requests from
  };
  // At ring start. ring_num: the ring's size; used_idx: the used ring's
  // idx as guest memory holds it; base: SET_VRING_BASE. A fresh slot is
  // initialised and `base` kept; a used one is recovered: the last batch
  // the previous backend returned is cleared, the heads still in flight
  // are collected, and new requests follow them. Fails on a slot that
  // cannot be this ring's (version, sizes, indices out of range).
  [[nodiscard]] Result<Resume> Start(uint32_t ring_num, uint16_t used_idx,
                                     uint16_t base);
  // A head was taken from the available ring, before its request runs.
  void Take(uint16_t head);
  // Before the used element for `head` is published.
  void Returning(uint16_t head);
  // After the used ring's idx became `used_idx`.
  void Returned(uint16_t head, uint16_t used_idx);

 private:
  InflightQueueHeader* h_;
  InflightDesc* desc_;
  uint16_t desc_num_;
  uint64_t counter_ = 0;
};

}  // namespace daxstore::vhost
