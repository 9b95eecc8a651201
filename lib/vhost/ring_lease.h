// Which front end's rings may run on a device. A server admits a second
// front end while the first is connected (the destination QEMU of a
// migration on the same host connects before the source has stopped), so
// two sessions can hold started rings on one volume. The lease makes sure
// only one of them ever processes requests: a session's ring workers take
// it before they touch a ring, and the session gives it back once none of
// its rings is started (GET_VRING_BASE on each, RESET_OWNER, or the
// connection's end). A worker that finds it held by another session waits.
#pragma once

#include <mutex>

namespace daxstore::vhost {

class RingLease {
 public:
  // Takes the lease for `holder` if it is free or already `holder`'s.
  bool TryAcquire(const void* holder);
  // Gives it back if `holder` has it; no-op otherwise.
  void Release(const void* holder);
  bool HeldBy(const void* holder) const;

 private:
  mutable std::mutex mu_;
  const void* holder_ = nullptr;
};

}  // namespace daxstore::vhost
