#include "vhost/inflight.h"

#include <sys/mman.h>  // PROT_* and MAP_* for Platform::Map

#include <algorithm>
#include <cstring>
#include <string>

namespace daxstore::vhost {
namespace {

template <typename T>
void Store(T* p, T v) {
  __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

template <typename T>
T Load(const T* p) {
  return __atomic_load_n(p, __ATOMIC_RELAXED);
}

Status Bad(const std::string& what) {
  return InvalidArgument("inflight region: " + what);
}

}  // namespace

uint64_t InflightQueueBytes(uint32_t queue_size) {
  uint64_t n = sizeof(InflightQueueHeader) + sizeof(InflightDesc) * queue_size;
  return (n + kInflightQueueAlign - 1) / kInflightQueueAlign *
         kInflightQueueAlign;
}

Status CheckInflightRequest(const InflightInfo& info, uint32_t max_queues) {
  if (info.num_queues == 0 || info.num_queues > max_queues)
    return Bad(std::to_string(info.num_queues) + " queues; this device has " +
               std::to_string(max_queues) + " (start it with more --queues)");
  if (info.queue_size == 0 || info.queue_size > kMaxQueueSize)
    return Bad("queue size " + std::to_string(info.queue_size) +
               " is not 1 to 32768");
  return Status::Ok();
}

InflightRegion::InflightRegion(InflightRegion&& o) noexcept {
  *this = std::move(o);
}

InflightRegion& InflightRegion::operator=(InflightRegion&& o) noexcept {
  if (this != &o) {
    Release();
    os_ = std::move(o.os_);
    base_ = o.base_;
    size_ = o.size_;
    num_queues_ = o.num_queues_;
    queue_size_ = o.queue_size_;
    o.base_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

InflightRegion::~InflightRegion() { Release(); }

void InflightRegion::Release() {
  if (base_ != nullptr && os_) (void)os_->Unmap(base_, size_);
  base_ = nullptr;
}

InflightQueueHeader* InflightRegion::queue(uint32_t i) const {
  return reinterpret_cast<InflightQueueHeader*>(
      base_ + uint64_t{i} * InflightQueueBytes(queue_size_));
}

Result<InflightRegion> InflightRegion::Create(std::shared_ptr<Platform> os,
                                              const InflightInfo& info, int* fd,
                                              InflightInfo* reply) {
  const uint64_t size =
      uint64_t{info.num_queues} * InflightQueueBytes(info.queue_size);
  DAXSTORE_ASSIGN_OR_RETURN(int f,
                            os->MakeSharedMemory("daxstore-inflight", size));
  auto p = os->Map(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
  if (!p.ok()) {
    os->Close(f);
    return p.status().WithContext("mapping a new inflight region");
  }
  InflightRegion r;
  r.os_ = std::move(os);
  r.base_ = static_cast<uint8_t*>(*p);
  r.size_ = size;
  r.num_queues_ = info.num_queues;
  r.queue_size_ = info.queue_size;
  // Zero-filled by the OS: version 0 marks every slot unused.
  for (uint32_t i = 0; i < r.num_queues_; ++i)
    r.queue(i)->desc_num = info.queue_size;
  *fd = f;
  *reply = {size, 0, info.num_queues, info.queue_size, 0};
  return r;
}

Result<InflightRegion> InflightRegion::Map(std::shared_ptr<Platform> os, int fd,
                                           const InflightInfo& info,
                                           uint32_t max_queues) {
  DAXSTORE_RETURN_IF_ERROR(CheckInflightRequest(info, max_queues));
  const uint64_t size =
      uint64_t{info.num_queues} * InflightQueueBytes(info.queue_size);
  if (info.mmap_size != size)
    return Bad("mmap_size " + std::to_string(info.mmap_size) + " for " +
               std::to_string(info.num_queues) + " queues of " +
               std::to_string(info.queue_size) + ", want " +
               std::to_string(size) +
               " (pass back what GET_INFLIGHT_FD returned)");
  if (info.mmap_offset % kInflightPageSize != 0 ||
      info.mmap_offset > UINT64_MAX - size)
    return Bad("mmap_offset " + std::to_string(info.mmap_offset) +
               " is not page-aligned");
  // A file that could shrink under the mapping would fault the backend.
  DAXSTORE_ASSIGN_OR_RETURN(bool sealed, os->SizeIsSealed(fd));
  if (!sealed)
    return Bad(
        "the file's size is not sealed (pass back the descriptor "
        "GET_INFLIGHT_FD returned)");
  DAXSTORE_ASSIGN_OR_RETURN(FileInfo st, os->Stat(fd));
  if (st.size < info.mmap_offset + size)
    return Bad("the file has " + std::to_string(st.size) + " bytes, need " +
               std::to_string(info.mmap_offset + size));
  DAXSTORE_ASSIGN_OR_RETURN(
      void* p, os->Map(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                       info.mmap_offset));
  InflightRegion r;
  r.os_ = std::move(os);
  r.base_ = static_cast<uint8_t*>(p);
  r.size_ = size;
  r.num_queues_ = info.num_queues;
  r.queue_size_ = info.queue_size;
  return r;
}

Result<InflightQueue::Resume> InflightQueue::Start(uint32_t ring_num,
                                                   uint16_t used_idx,
                                                   uint16_t base) {
  if (ring_num == 0 || ring_num > desc_num_)
    return Bad("ring of " + std::to_string(ring_num) +
               " descriptors in a region made for " +
               std::to_string(desc_num_));
  Resume r;
  const uint16_t version = Load(&h_->version);
  if (version == 0) {
    // First use of this slot: nothing can be in flight.
    for (uint32_t i = 0; i < desc_num_; ++i)
      Store(&desc_[i].inflight, uint8_t{0});
    Store(&h_->desc_num, desc_num_);
    Store(&h_->last_batch_head, uint16_t{0});
    Store(&h_->used_idx, used_idx);
    Store(&h_->version, kInflightVersion);
    counter_ = 0;
    r.next_avail = base;
    return r;
  }
  if (version != kInflightVersion || Load(&h_->desc_num) != desc_num_)
    return Bad("slot has version " + std::to_string(version) + " and " +
               std::to_string(Load(&h_->desc_num)) +
               " descriptors; not one this backend wrote");
  // The previous backend published `batch` used elements but may have died
  // before clearing their heads: clear them now.
  const uint16_t batch = static_cast<uint16_t>(used_idx - Load(&h_->used_idx));
  if (batch > ring_num)
    return Bad("used ring is " + std::to_string(batch) +
               " entries past the region's used_idx (ring of " +
               std::to_string(ring_num) + ")");
  uint32_t head = Load(&h_->last_batch_head);
  for (uint16_t k = 0; k < batch; ++k) {
    if (head >= ring_num)
      return Bad("last batch names head " + std::to_string(head) +
                 " outside the ring");
    Store(&desc_[head].inflight, uint8_t{0});
    head = Load(&desc_[head].next);
  }
  Store(&h_->used_idx, used_idx);
  // Heads still in flight, oldest first; any beyond the ring are stale.
  std::vector<std::pair<uint64_t, uint16_t>> taken;
  for (uint32_t i = 0; i < desc_num_; ++i) {
    if (Load(&desc_[i].inflight) == 0) continue;
    if (i >= ring_num) {
      Store(&desc_[i].inflight, uint8_t{0});
      continue;
    }
    taken.emplace_back(Load(&desc_[i].counter), static_cast<uint16_t>(i));
  }
  std::sort(taken.begin(), taken.end());
  counter_ = taken.empty() ? 0 : taken.back().first + 1;
  for (const auto& t : taken) r.heads.push_back(t.second);
  // Requests are taken in ring order, so everything before the in-flight
  // ones was returned and everything after them was never taken.
  r.next_avail = static_cast<uint16_t>(used_idx + taken.size());
  return r;
}

void InflightQueue::Take(uint16_t head) {
  __atomic_store_n(&desc_[head].counter, counter_++, __ATOMIC_RELAXED);
  Store(&desc_[head].inflight, uint8_t{1});
  // The mark is visible before any effect of the request (a backend crash
  // after this resubmits it).
  __atomic_thread_fence(__ATOMIC_RELEASE);
}

void InflightQueue::Returning(uint16_t head) {
  // The batch list is visible before the used idx that publishes it.
  Store(&desc_[head].next, Load(&h_->last_batch_head));
  Store(&h_->last_batch_head, head);
}

void InflightQueue::Returned(uint16_t head, uint16_t used_idx) {
  // Cleared only after the used idx is published, then used_idx records
  // that the batch is done (a crash in between is undone by Start).
  Store(&desc_[head].inflight, uint8_t{0});
  Store(&h_->used_idx, used_idx);
}

}  // namespace daxstore::vhost
