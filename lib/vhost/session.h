// One vhost-user connection's device state: features, memory table,
// virtqueues and their worker threads (one per started, enabled ring: kick
// eventfd -> process the ring -> call eventfd). Handle() validates each
// message; a failed Status means the front end broke the protocol and the
// caller drops the connection. The destructor stops every worker and
// unmaps guest memory; the image stays open. Descriptors, events and guest
// memory go through the Platform `os` (null: DefaultPlatform()).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <thread>
#include <vector>

#include "daxstore/platform.h"
#include "daxstore/status.h"
#include "daxstore/vhost_blk.h"
#include "vhost/blk_request.h"
#include "vhost/dirty_log.h"
#include "vhost/inflight.h"
#include "vhost/memory_table.h"
#include "vhost/protocol.h"
#include "vhost/ring_lease.h"
#include "vhost/virtqueue.h"

namespace daxstore::vhost {

class Session {
 public:
  Session(const BlkDevice& dev, uint32_t queues,
          std::shared_ptr<Platform> os = nullptr);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Handles one message (payload already read, fds received with it and
  // still owned by the caller: the session dups what it keeps). Sets
  // *reply (and *has_reply) to the payload to send back, if any, and
  // reply_fd() to a descriptor to send with it (or -1).
  [[nodiscard]] Status Handle(const MessageHeader& hdr,
                              std::span<const uint8_t> payload,
                              std::span<const int> fds,
                              std::vector<uint8_t>* reply, bool* has_reply);

  // Owned by the session until the next Handle.
  int reply_fd() const { return reply_fd_; }
  // An event signalled when a worker gave up on the connection (guest
  // memory shrank under us); the caller then drops it. -1 if none could
  // be made (the platform has no events).
  int drop_event() const { return drop_event_; }
  // Tests: act as if crashed at a given request (VhostStall).
  void set_stall(const VhostStall& stall) { stall_ = stall; }
  // The device's lease, shared with every other session on it (null: the
  // session runs its rings unconditionally). Set before the first message;
  // must outlive the session.
  void set_ring_lease(RingLease* lease) { lease_ = lease; }

  // Whether to offer live migration (VHOST_F_LOG_ALL and
  // VHOST_USER_PROTOCOL_F_LOG_SHMFD): only where a second front end can
  // take over the device (default on). Set before the first message.
  void set_migration(bool on) { migration_ = on; }

  uint64_t features() const { return features_; }
  uint64_t OfferedFeatures() const;
  uint64_t OfferedProtocolFeatures() const;

 private:
  // One ring's settings and worker: the worker reads them, the message
  // thread changes them only while the worker is stopped.
  struct Queue {
    uint32_t index = 0;
    uint32_t num = 0;
    VringAddrs addrs;
    bool has_addrs = false;
    uint16_t base = 0;
    int kick = -1, call = -1, err = -1;
    bool started = false;  // a kick fd arrived (and no GET_VRING_BASE since)
    bool enabled = false;
    std::thread worker;
    int stop = -1;  // eventfd that ends the worker
    std::atomic<uint16_t> last_avail{0};
    InflightQueueHeader* inflight = nullptr;  // its slot, if tracked
    // SET_VRING_ADDR's VHOST_VRING_F_LOG and log_guest_addr: where the
    // used ring's writes are logged.
    bool log_used = false;
    uint64_t log_addr = 0;
  };
  Status Dispatch(const MessageHeader& hdr, std::span<const uint8_t> payload,
                  std::span<const int> fds, std::vector<uint8_t>* reply,
                  bool* has_reply);
  Status SetMemTable(std::span<const uint8_t> payload,
                     std::span<const int> fds);
  Status SetVringFd(uint32_t request, std::span<const uint8_t> payload,
                    std::span<const int> fds);
  Status GetInflightFd(std::span<const uint8_t> payload,
                       std::span<const int> fds, std::vector<uint8_t>* reply);
  Status SetInflightFd(std::span<const uint8_t> payload,
                       std::span<const int> fds);
  Status SetLogBase(std::span<const uint8_t> payload, std::span<const int> fds,
                    std::vector<uint8_t>* reply);
  Status SetLogFd(std::span<const uint8_t> payload, std::span<const int> fds);
  // Checks that `log` has a bit for every page of `mem` and of every ring
  // whose used writes are logged.
  Status CheckLogCovers(const DirtyLog& log, const MemoryTable& mem) const;
  // The log the workers mark: set only while VHOST_F_LOG_ALL is
  // negotiated and a log is mapped.
  const DirtyLog* ActiveLog() const;
  Result<Queue*> QueueAt(uint32_t index);
  void Start(Queue& q);
  void Stop(Queue& q);
  void StopAll();
  void StartAll();
  // The worker: only reads q, mem_ and dev_, which change only while it is
  // stopped.
  // `leased`: the session holds the ring lease already (else it waits).
  void Work(Queue& q, bool indirect, const DirtyLog* log, bool leased);
  // Runs one request (already taken) and returns it; false if the stall
  // hook stopped the worker.
  bool Serve(Queue& q, Virtqueue& vq, InflightQueue* track, Chain& chain,
             const Status& walk, bool resubmitted, const DirtyLog* log);
  // True (after failing the request, if chain is not null) if guest
  // memory faulted: logs once, signals drop_event().
  bool GuestMemoryShrank(Queue& q, Virtqueue& vq, InflightQueue* track,
                         const Chain* chain, const DirtyLog* log);
  // Waits until this session holds the ring lease; false if q.stop was
  // signalled first.
  bool AwaitLease(Queue& q);
  // Gives the lease back once no ring is started.
  void ReleaseLeaseIfIdle();
  // Logs once per connection that a write could not be logged.
  void LogMissed(Queue& q);
  // The stall hook: true if the worker must stop at `point` now.
  bool Stalls(Queue& q, VhostStall::Point point, uint64_t request);

  void CloseFd(int* fd);

  std::shared_ptr<Platform> os_;
  BlkDevice dev_;
  uint64_t features_ = 0;
  uint64_t protocol_features_ = 0;
  bool features_set_ = false;
  MemoryTable mem_;
  InflightRegion inflight_;  // unmapped until SET_INFLIGHT_FD
  DirtyLog log_;             // unmapped until SET_LOG_BASE
  int log_fd_ = -1;          // SET_LOG_FD's eventfd (kept, never signalled)
  std::atomic<bool> log_missed_{false};
  int reply_fd_ = -1;
  int drop_event_ = -1;
  bool mem_announced_sealed_ = false;
  std::atomic<bool> dropping_{false};  // the drop line is logged once
  VhostStall stall_;
  std::atomic<uint64_t> taken_{0};  // requests taken, for the stall hook
  RingLease* lease_ = nullptr;
  bool migration_ = true;
  std::atomic<bool> lease_wait_told_{false};  // the wait is logged once
  std::vector<std::unique_ptr<Queue>> queues_;
};

}  // namespace daxstore::vhost
