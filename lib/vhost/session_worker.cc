// Session's per-ring worker: inflight recovery and resubmission at start,
// then kick -> drain the ring -> call, with the inflight marks around each
// request and the test stall hook.
#include <linux/virtio_blk.h>

#include <cstdio>
#include <optional>

#include "vhost/session.h"

namespace daxstore::vhost {

bool Session::Stalls(Queue& q, VhostStall::Point point, uint64_t request) {
  if (stall_.after == 0 || request < stall_.after) return false;
  // Request `after` stops at its point, every later one as soon as taken.
  if (request == stall_.after ? point != stall_.point
                              : point != VhostStall::Point::kBeforeExecute)
    return false;
  if (request == stall_.after)
    std::fprintf(stderr, "daxstore vhost: queue %u: stalled at request %llu\n",
                 q.index, static_cast<unsigned long long>(request));
  WaitFd w{.fd = q.stop};
  (void)os_->Wait({&w, 1}, -1);
  return true;
}

void Session::LogMissed(Queue& q) {
  if (!log_missed_.exchange(true))
    std::fprintf(stderr,
                 "daxstore vhost: queue %u: a guest write lies past the dirty "
                 "log; a migration may miss it\n",
                 q.index);
}

bool Session::GuestMemoryShrank(Queue& q, Virtqueue& vq, InflightQueue* track,
                                const Chain* chain, const DirtyLog* log) {
  const int region = mem_.FaultedRegion();
  if (region < 0) return false;
  // Fail the request if its status byte is still the front end's: write
  // IOERR and complete only if that write did not fault too.
  const iovec* last = nullptr;
  uint64_t last_gpa = 0;
  if (chain != nullptr)
    for (size_t i = 0; i < chain->in.size(); ++i)
      if (chain->in[i].iov_len > 0) {
        last = &chain->in[i];
        last_gpa = chain->in_gpa[i] + last->iov_len - 1;
      }
  if (last != nullptr) {
    const uint64_t before = mem_.Faults();
    auto* status = static_cast<uint8_t*>(last->iov_base) + last->iov_len - 1;
    __atomic_store_n(status, uint8_t{VIRTIO_BLK_S_IOERR}, __ATOMIC_RELAXED);
    // Mark's OR is a release: the status byte is visible before its bit.
    if (log != nullptr && !log->Mark(last_gpa, 1)) LogMissed(q);
    if (mem_.Faults() == before) {
      if (track != nullptr) track->Returning(chain->head);
      vq.Push(chain->head, 1);
      if (track != nullptr) track->Returned(chain->head, vq.used_idx());
      if (mem_.Faults() == before && q.call >= 0) os_->SignalEvent(q.call);
    }
  }
  if (!dropping_.exchange(true)) {
    std::fprintf(stderr,
                 "daxstore vhost: guest memory region %d shrank under us "
                 "(front end truncated its fd); dropping the connection\n",
                 region);
    if (drop_event_ >= 0) os_->SignalEvent(drop_event_);
  }
  return true;
}

bool Session::Serve(Queue& q, Virtqueue& vq, InflightQueue* track, Chain& chain,
                    const Status& walk, bool resubmitted, const DirtyLog* log) {
  using Point = VhostStall::Point;
  if (track != nullptr && !resubmitted) track->Take(chain.head);
  const uint64_t n = taken_.fetch_add(1) + 1;
  if (Stalls(q, Point::kBeforeExecute, n)) return false;
  uint32_t len = 0;
  if (walk.ok()) {
    len = HandleBlkRequest(dev_, chain);
  } else {
    std::fprintf(stderr, "daxstore vhost: queue %u: %s\n", q.index,
                 walk.message().c_str());
    if (chain.error_status != nullptr) {
      __atomic_store_n(chain.error_status, uint8_t{VIRTIO_BLK_S_IOERR},
                       __ATOMIC_RELAXED);
      len = 1;
      // Mark's OR is a release: the status byte is visible before its bit.
      if (log != nullptr && !log->Mark(chain.error_status_gpa, 1)) LogMissed(q);
    }
  }
  // Mark's OR is a release: the data and status the request wrote are
  // visible before their bits.
  if (log != nullptr && walk.ok() && !LogBlkWrites(*log, chain, len))
    LogMissed(q);
  // Nothing is acknowledged after a fault: the request may have read
  // zeros for the front end's data.
  if (GuestMemoryShrank(q, vq, track, &chain, log)) return false;
  if (Stalls(q, Point::kBeforeUsed, n)) return false;
  if (track != nullptr) track->Returning(chain.head);
  vq.Push(chain.head, len);
  if (vq.log_misses() != 0) LogMissed(q);
  if (Stalls(q, Point::kBeforeClear, n)) return false;
  if (track != nullptr) track->Returned(chain.head, vq.used_idx());
  return true;
}

bool Session::AwaitLease(Queue& q) {
  if (lease_ == nullptr) return true;
  for (;;) {
    if (lease_->TryAcquire(this)) return true;
    if (!lease_wait_told_.exchange(true))
      std::fprintf(stderr,
                   "daxstore vhost: another front end's rings are running on "
                   "this volume; queue %u starts once they stop (the source "
                   "of a migration stops them at GET_VRING_BASE)\n",
                   q.index);
    // The holder gives the lease back from its message thread; a short
    // poll keeps the handover simple and only runs while both connect.
    WaitFd w{.fd = q.stop};
    auto n = os_->Wait({&w, 1}, 10);
    if (!n.ok() || w.ready) return false;
  }
}

void Session::Work(Queue& q, bool indirect, const DirtyLog* log, bool leased) {
  if (!leased && !AwaitLease(q)) return;
  auto vq = Virtqueue::Attach(mem_, q.addrs, q.num, q.base, indirect);
  if (!vq.ok()) {
    std::fprintf(stderr, "daxstore vhost: queue %u: %s\n", q.index,
                 vq.status().message().c_str());
    return;
  }
  if (log != nullptr && q.log_used) vq->SetLog(log, q.log_addr);
  std::optional<InflightQueue> track;
  Chain chain;
  if (q.inflight != nullptr) {
    track.emplace(q.inflight, inflight_.queue_size());
    const uint16_t used = vq->RingUsedIdx();
    auto resume = track->Start(q.num, used, q.base);
    if (!resume.ok()) {
      std::fprintf(stderr, "daxstore vhost: queue %u: %s; queue stopped\n",
                   q.index, resume.status().message().c_str());
      return;
    }
    vq->Resume(resume->next_avail, used);
    q.last_avail.store(vq->last_avail());
    if (!resume->heads.empty())
      std::fprintf(stderr,
                   "daxstore vhost: queue %u: resubmitting %zu requests the "
                   "last backend left in flight\n",
                   q.index, resume->heads.size());
    bool pushed = false;
    for (uint16_t head : resume->heads) {
      Status st = vq->ChainAt(mem_, head, &chain);
      if (!Serve(q, *vq, &*track, chain, st, true, log)) return;
      pushed = true;
    }
    if (pushed && q.call >= 0) os_->SignalEvent(q.call);
  }
  for (;;) {
    bool pushed = false;
    Status st;
    while (vq->Pop(mem_, &chain, &st)) {
      if (!Serve(q, *vq, track ? &*track : nullptr, chain, st, false, log))
        return;
      pushed = true;
    }
    q.last_avail.store(vq->last_avail());
    // The rings themselves may have faulted (zeros read, writes lost).
    if (GuestMemoryShrank(q, *vq, nullptr, nullptr, log)) return;
    if (vq->broken())
      std::fprintf(stderr,
                   "daxstore vhost: queue %u: driver overran the ring; "
                   "queue stopped\n",
                   q.index);
    if (pushed && q.call >= 0) os_->SignalEvent(q.call);
    WaitFd w[2] = {{.fd = q.kick}, {.fd = q.stop}};
    if (!os_->Wait(w, -1).ok()) return;
    if (w[1].ready) return;
    if (w[0].failed) return;
    if (w[0].ready) os_->ConsumeEvent(q.kick);
    if (vq->broken()) {
      // Wait only for the stop request.
      WaitFd s{.fd = q.stop};
      (void)os_->Wait({&s, 1}, -1);
      return;
    }
  }
}

}  // namespace daxstore::vhost
