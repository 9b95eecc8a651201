#include "vhost/virtqueue.h"

#include <cstddef>
#include <string>

namespace daxstore::vhost {
namespace {

template <typename T>
T Load(const T* p) {
  return __atomic_load_n(p, __ATOMIC_RELAXED);
}

vring_desc LoadDesc(const vring_desc* d) {
  vring_desc v;
  v.addr = Load(&d->addr);
  v.len = Load(&d->len);
  v.flags = Load(&d->flags);
  v.next = Load(&d->next);
  return v;
}

Status Bad(const std::string& what) {
  return InvalidArgument("descriptor chain: " + what);
}

// Walks one table (the ring's or an indirect one), appending buffers.
Status WalkTable(const MemoryTable& mem, const vring_desc* table, uint32_t num,
                 uint16_t first, bool indirect_ok, Chain* chain) {
  uint32_t i = first;
  for (uint32_t hops = 0;; ++hops) {
    if (i >= num) return Bad("index " + std::to_string(i) + " out of range");
    if (hops >= num) return Bad("longer than its table (a loop?)");
    vring_desc d = LoadDesc(&table[i]);
    if (d.flags & VRING_DESC_F_INDIRECT) {
      if (!indirect_ok) return Bad("indirect descriptor not allowed here");
      if (d.flags & VRING_DESC_F_NEXT) return Bad("indirect with next");
      if (d.len == 0 || d.len % sizeof(vring_desc) != 0 ||
          d.len / sizeof(vring_desc) > kMaxIndirect)
        return Bad("indirect table of " + std::to_string(d.len) + " bytes");
      void* t = mem.Translate(d.addr, d.len);
      if (t == nullptr || reinterpret_cast<uintptr_t>(t) % 16 != 0)
        return Bad("indirect table outside guest memory or misaligned");
      return WalkTable(mem, static_cast<const vring_desc*>(t),
                       d.len / sizeof(vring_desc), 0, false, chain);
    }
    void* p = mem.Translate(d.addr, d.len);
    if (p == nullptr) return Bad("buffer outside guest memory");
    if (d.flags & VRING_DESC_F_WRITE) {
      chain->in.push_back({p, d.len});
      chain->in_gpa.push_back(d.addr);
      chain->in_bytes += d.len;
    } else {
      if (!chain->in.empty()) return Bad("readable buffer after writable");
      chain->out.push_back({p, d.len});
      chain->out_bytes += d.len;
    }
    if (!(d.flags & VRING_DESC_F_NEXT)) return Status::Ok();
    i = d.next;
  }
}

// For a chain that failed validation: its last descriptor, followed with
// the same hop limits but without needing the middle buffers to be valid,
// if it is a device-writable buffer inside guest memory; *gpa is its
// guest-physical address.
uint8_t* FindStatusByte(const MemoryTable& mem, const vring_desc* table,
                        uint32_t num, uint16_t head, bool indirect_ok,
                        uint64_t* gpa) {
  uint32_t i = head;
  for (uint32_t hops = 0; i < num && hops < num; ++hops) {
    vring_desc d = LoadDesc(&table[i]);
    if ((d.flags & VRING_DESC_F_INDIRECT) && indirect_ok) {
      if (d.len == 0 || d.len % sizeof(vring_desc) != 0 ||
          d.len / sizeof(vring_desc) > kMaxIndirect)
        return nullptr;
      void* t = mem.Translate(d.addr, d.len);
      if (t == nullptr || reinterpret_cast<uintptr_t>(t) % 16 != 0)
        return nullptr;
      return FindStatusByte(mem, static_cast<const vring_desc*>(t),
                            d.len / sizeof(vring_desc), 0, false, gpa);
    }
    if (!(d.flags & VRING_DESC_F_NEXT)) {
      if (!(d.flags & VRING_DESC_F_WRITE) || d.len == 0 ||
          (d.flags & VRING_DESC_F_INDIRECT) || d.addr + d.len - 1 < d.addr)
        return nullptr;
      *gpa = d.addr + d.len - 1;
      return static_cast<uint8_t*>(mem.Translate(*gpa, 1));
    }
    i = d.next;
  }
  return nullptr;  // out of range or a loop
}

}  // namespace

Status WalkChain(const MemoryTable& mem, const vring_desc* table, uint32_t num,
                 uint16_t head, bool indirect_ok, Chain* chain) {
  chain->head = head;
  chain->out.clear();
  chain->in.clear();
  chain->in_gpa.clear();
  chain->out_bytes = chain->in_bytes = 0;
  chain->error_status = nullptr;
  chain->error_status_gpa = 0;
  Status st = WalkTable(mem, table, num, head, indirect_ok, chain);
  if (!st.ok())
    chain->error_status = FindStatusByte(mem, table, num, head, indirect_ok,
                                         &chain->error_status_gpa);
  return st;
}

Result<Virtqueue> Virtqueue::Attach(const MemoryTable& mem, const VringAddrs& a,
                                    uint32_t num, uint16_t base,
                                    bool indirect_ok) {
  if (num == 0 || num > kMaxQueueSize || (num & (num - 1)) != 0)
    return InvalidArgument("vring size " + std::to_string(num) +
                           " is not a power of two up to 32768");
  Virtqueue q;
  q.desc_ = static_cast<vring_desc*>(
      mem.TranslateUser(a.desc, uint64_t{num} * sizeof(vring_desc)));
  q.avail_ = static_cast<vring_avail*>(
      mem.TranslateUser(a.avail, 4 + 2 * uint64_t{num} + 2));
  q.used_ =
      static_cast<vring_used*>(mem.TranslateUser(a.used, UsedRingBytes(num)));
  if (q.desc_ == nullptr || q.avail_ == nullptr || q.used_ == nullptr)
    return InvalidArgument("vring outside guest memory");
  if (reinterpret_cast<uintptr_t>(q.desc_) % 16 != 0 ||
      reinterpret_cast<uintptr_t>(q.avail_) % 2 != 0 ||
      reinterpret_cast<uintptr_t>(q.used_) % 4 != 0)
    return InvalidArgument("vring misaligned");
  q.num_ = num;
  q.last_avail_ = base;
  q.used_idx_ = base;
  q.indirect_ok_ = indirect_ok;
  return q;
}

bool Virtqueue::Pop(const MemoryTable& mem, Chain* chain, Status* status) {
  if (broken_) return false;
  uint16_t avail_idx = __atomic_load_n(&avail_->idx, __ATOMIC_ACQUIRE);
  uint16_t pending = static_cast<uint16_t>(avail_idx - last_avail_);
  if (pending == 0) return false;
  if (pending > num_) {
    broken_ = true;
    return false;
  }
  uint16_t head = Load(&avail_->ring[last_avail_ % num_]);
  ++last_avail_;
  if (head >= num_) {
    chain->head = head;
    *status = Bad("head " + std::to_string(head) + " out of range");
    // There is no valid id to return; the ring cannot continue.
    broken_ = true;
    return false;
  }
  *status = WalkChain(mem, desc_, num_, head, indirect_ok_, chain);
  return true;
}

Status Virtqueue::ChainAt(const MemoryTable& mem, uint16_t head,
                          Chain* chain) const {
  if (head >= num_) {
    chain->head = head;
    return Bad("head " + std::to_string(head) + " out of range");
  }
  return WalkChain(mem, desc_, num_, head, indirect_ok_, chain);
}

uint16_t Virtqueue::RingUsedIdx() const { return Load(&used_->idx); }

void Virtqueue::Push(uint16_t head, uint32_t len) {
  const uint32_t slot = used_idx_ % num_;
  vring_used_elem* e = &used_->ring[slot];
  __atomic_store_n(&e->id, head, __ATOMIC_RELAXED);
  __atomic_store_n(&e->len, len, __ATOMIC_RELAXED);
  ++used_idx_;
  // The used element is visible before the index that publishes it.
  __atomic_store_n(&used_->idx, used_idx_, __ATOMIC_RELEASE);
  if (log_ != nullptr) {
    // Mark's OR is a release: both writes are visible before their bits.
    const uint64_t elem = used_gpa_ + offsetof(vring_used, ring) +
                          uint64_t{slot} * sizeof(vring_used_elem);
    if (!log_->Mark(elem, sizeof(vring_used_elem))) ++log_misses_;
    if (!log_->Mark(used_gpa_ + offsetof(vring_used, idx), sizeof(uint16_t)))
      ++log_misses_;
  }
}

}  // namespace daxstore::vhost
