#include "vhost/ring_lease.h"

namespace daxstore::vhost {

bool RingLease::TryAcquire(const void* holder) {
  std::lock_guard lock(mu_);
  if (holder_ != nullptr && holder_ != holder) return false;
  holder_ = holder;
  return true;
}

void RingLease::Release(const void* holder) {
  std::lock_guard lock(mu_);
  if (holder_ == holder) holder_ = nullptr;
}

bool RingLease::HeldBy(const void* holder) const {
  std::lock_guard lock(mu_);
  return holder_ == holder;
}

}  // namespace daxstore::vhost
