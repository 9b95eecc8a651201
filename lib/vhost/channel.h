// Reading and writing vhost-user messages on a connected unix socket, with
// the file descriptors that come with them (SCM_RIGHTS). Every OS call goes
// through the Platform.
#pragma once

#include <cstdint>
#include <vector>

#include "daxstore/platform.h"
#include "daxstore/status.h"
#include "vhost/protocol.h"

namespace daxstore::vhost {

// Received file descriptors, closed (through os) on destruction.
class FdList {
 public:
  explicit FdList(Platform* os) : os_(os) {}
  FdList(FdList&& o) noexcept : os_(o.os_), fds_(std::move(o.fds_)) {
    o.fds_.clear();
  }
  FdList(const FdList&) = delete;
  FdList& operator=(const FdList&) = delete;
  ~FdList();

  Platform* os_;
  std::vector<int> fds_;
};

struct Message {
  explicit Message(Platform* os) : fds(os) {}
  MessageHeader hdr{};
  std::vector<uint8_t> payload;
  FdList fds;
};

enum class ReadOutcome { kMessage, kClosed, kStopped };

// *msg must be fresh. Waits (without limit) for a message header, or for
// the event stop_fd or drop_fd (-1: none) to be signalled (kStopped); the
// rest of the message must follow within timeout_ms. More than kMaxFds
// descriptors, a payload over kMaxPayload or a short read are errors.
[[nodiscard]] Result<ReadOutcome> ReadMessage(Platform& os, int fd, int stop_fd,
                                              int timeout_ms, Message* msg,
                                              int drop_fd = -1);
// Sends a reply (REPLY flag set) with the given payload and, if send_fd is
// not -1, that descriptor with it.
[[nodiscard]] Status WriteReply(Platform& os, int fd, uint32_t request,
                                const std::vector<uint8_t>& payload,
                                int timeout_ms, int send_fd = -1);

}  // namespace daxstore::vhost
