#include "vhost/channel.h"

#include <cstring>
#include <string>

namespace daxstore::vhost {
namespace {

// Waits for fd to be readable (or writable); false if the event stop_fd
// or drop_fd (-1: none) was signalled. Running out of time is an error.
Result<bool> WaitFor(Platform& os, int fd, bool write, int stop_fd,
                     int timeout_ms, int drop_fd = -1) {
  WaitFd w[3] = {{.fd = fd, .write = write}};
  size_t n_fds = 1;
  if (stop_fd >= 0) w[n_fds++].fd = stop_fd;
  if (drop_fd >= 0) w[n_fds++].fd = drop_fd;
  auto n = os.Wait({w, n_fds}, timeout_ms);
  if (!n.ok()) return n.status().WithContext("the vhost-user socket");
  if (*n == 0) return InvalidArgument("front end timed out mid-message");
  for (size_t i = 1; i < n_fds; ++i)
    if (w[i].ready) return false;
  return true;
}

}  // namespace

FdList::~FdList() {
  for (int fd : fds_) os_->Close(fd);
}

Result<ReadOutcome> ReadMessage(Platform& os, int fd, int stop_fd,
                                int timeout_ms, Message* msg, int drop_fd) {
  msg->payload.clear();
  auto* hdr = reinterpret_cast<uint8_t*>(&msg->hdr);
  size_t got = 0;
  while (got < sizeof(MessageHeader)) {
    // Without limit for a new message; within timeout_ms once it started.
    DAXSTORE_ASSIGN_OR_RETURN(
        bool ready,
        WaitFor(os, fd, false, stop_fd, got == 0 ? -1 : timeout_ms, drop_fd));
    if (!ready) return ReadOutcome::kStopped;
    auto r = os.Receive(fd, hdr + got, sizeof(MessageHeader) - got,
                        &msg->fds.fds_, kMaxFds);
    if (!r.ok())
      return r.status().WithContext("reading from the vhost-user socket");
    if (r->fds_truncated)
      return InvalidArgument("message carries more than 8 file descriptors");
    if (msg->fds.fds_.size() > kMaxFds)
      return InvalidArgument("message carries too many file descriptors");
    if (r->would_block) continue;
    if (r->bytes == 0) {
      if (got == 0) return ReadOutcome::kClosed;
      return InvalidArgument("connection closed mid-message");
    }
    got += r->bytes;
  }
  if (msg->hdr.size > kMaxPayload)
    return InvalidArgument("message payload of " +
                           std::to_string(msg->hdr.size) + " bytes");
  msg->payload.resize(msg->hdr.size);
  got = 0;
  while (got < msg->payload.size()) {
    DAXSTORE_ASSIGN_OR_RETURN(
        bool ready, WaitFor(os, fd, false, stop_fd, timeout_ms, drop_fd));
    if (!ready) return ReadOutcome::kStopped;
    // Descriptors belong with the header; any sent with the payload are
    // dropped by the kernel.
    auto r = os.Receive(fd, msg->payload.data() + got,
                        msg->payload.size() - got, nullptr, 0);
    if (!r.ok())
      return r.status().WithContext("reading from the vhost-user socket");
    if (r->would_block) continue;
    if (r->bytes == 0) return InvalidArgument("connection closed mid-message");
    got += r->bytes;
  }
  return ReadOutcome::kMessage;
}

Status WriteReply(Platform& os, int fd, uint32_t request,
                  const std::vector<uint8_t>& payload, int timeout_ms,
                  int send_fd) {
  std::vector<uint8_t> buf(sizeof(MessageHeader) + payload.size());
  MessageHeader h{request, kVersion | kReplyFlag,
                  static_cast<uint32_t>(payload.size())};
  std::memcpy(buf.data(), &h, sizeof(h));
  if (!payload.empty())
    std::memcpy(buf.data() + sizeof(h), payload.data(), payload.size());
  size_t sent = 0;
  while (sent < buf.size()) {
    DAXSTORE_ASSIGN_OR_RETURN(bool ready,
                              WaitFor(os, fd, true, -1, timeout_ms));
    (void)ready;
    // The descriptor goes with the first byte.
    auto n = sent == 0 && send_fd >= 0
                 ? os.SendWithFds(fd, buf.data(), buf.size(), {&send_fd, 1})
                 : os.Send(fd, buf.data() + sent, buf.size() - sent);
    if (!n.ok())
      return n.status().WithContext("writing to the vhost-user socket");
    sent += *n;
  }
  return Status::Ok();
}

}  // namespace daxstore::vhost
