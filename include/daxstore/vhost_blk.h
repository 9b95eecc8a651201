// Serves an Image to a VMM as a vhost-user-blk device over a unix socket
// (QEMU: -chardev socket,path=SOCK,reconnect=1
//        -device vhost-user-blk-pci,chardev=...).
//
// One front end serves the volume at a time. When it disconnects the queues
// stop and guest memory is unmapped, the image stays open and the next
// connection is accepted. A second front end may connect while the first
// is still connected (the destination QEMU of a live migration on the same
// host, or of a QEMU upgrade in place): it negotiates and maps its guest
// memory at once, but its rings run only once every ring the first one
// started is stopped again (GET_VRING_BASE, which QEMU sends when the
// source VM stops). Two front ends never run rings on the volume at the
// same time; a third connection is refused. A malformed message drops the
// connection (one line on stderr); a malformed request from the guest
// fails that request.
//
// Backend restarts: the backend offers VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD.
// Each ring records in a shared-memory region the front end keeps which
// requests it took and has not returned; a backend started after a crash
// (QEMU reconnects with reconnect=1 and hands the region back) resubmits
// those first, in the order they were taken, so each completes once.
//
// Live migration: Run() offers VHOST_F_LOG_ALL and
// VHOST_USER_PROTOCOL_F_LOG_SHMFD (ServeOne(), where no second front end
// can take over, offers neither, and QEMU then refuses to migrate). While
// the front end logs, every page of guest memory the backend writes
// (request data, status bytes, used rings) is marked in the front end's
// dirty log; a log that does not cover guest memory is refused.
//
// Isolation: the backend reads and writes only the regions of guest memory
// the front end shared and the image; every ring, descriptor and buffer is
// bounds-checked against the memory table first (lib/vhost/).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "daxstore/image.h"
#include "daxstore/platform.h"
#include "daxstore/status.h"

namespace daxstore {
namespace vhost {
class RingLease;
}

// For tests of backend restarts: the backend stops as if it had crashed at
// `point` of request number `after` (counted from 1 over every queue of a
// connection, resubmitted ones included), and at kBeforeExecute of every
// later one: each ring's worker stops at its next request, which stays
// taken and in flight, and nothing is undone until the connection ends.
// after = 0: never.
struct VhostStall {
  enum class Point {
    kBeforeExecute,  // taken from the ring, not yet run
    kBeforeUsed,     // run, not yet returned to the driver
    kBeforeClear,    // returned, its inflight mark not yet cleared
  };
  uint64_t after = 0;
  Point point = Point::kBeforeExecute;
};

struct VhostBlkOptions {
  std::string socket_path;
  uint32_t queues = 1;  // 1 to 64
  bool read_only = false;
  std::string serial;  // GET_ID; up to 20 bytes
  // A front end that stops halfway through a message is dropped after this.
  int message_timeout_ms = 5000;
  // The OS seam (sockets, events, guest memory); null means
  // DefaultPlatform().
  std::shared_ptr<Platform> platform;
  VhostStall stall;  // tests only
};

class VhostBlkServer {
 public:
  // Creates the socket (mode 0600; a stale socket at the path is replaced,
  // anything else there is an error). `image` must outlive the server.
  [[nodiscard]] static Result<std::unique_ptr<VhostBlkServer>> Create(
      Image* image, const VhostBlkOptions& options);
  ~VhostBlkServer();  // closes and removes the socket

  // Accepts and serves front ends until Stop(); up to kMaxFrontEnds at
  // once, each on its own thread.
  Status Run();
  static constexpr size_t kMaxFrontEnds = 2;
  // Serves a single connection (waits for it first), without offering
  // live migration; for tests.
  Status ServeOne();
  // Makes Run/ServeOne return soon. Async-signal-safe.
  void Stop();

  uint64_t connections() const { return connections_.load(); }

 private:
  VhostBlkServer();
  // `migration`: offer live migration (a second front end can connect).
  Status Serve(int conn, bool migration);
  // Serve, count down *serving (if not null), close, log why it ended.
  void ServeConnection(int conn, std::atomic<size_t>* serving, bool migration);
  Image* image_ = nullptr;
  VhostBlkOptions options_;
  std::shared_ptr<Platform> os_;
  int listen_fd_ = -1;
  int stop_fd_ = -1;
  std::atomic<uint64_t> connections_{0};
  // Which connection's rings may run (lib/vhost/ring_lease.h).
  std::unique_ptr<vhost::RingLease> lease_;
};

}  // namespace daxstore
