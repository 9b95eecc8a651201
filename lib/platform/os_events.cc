// Event and waiting half of OsPlatform (eventfd, poll, dup), and the
// Platform defaults for implementations without them.
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <iterator>
#include <vector>

#include "platform/os_platform.h"

namespace daxstore {

Result<int> Platform::MakeEvent() {
  return Unsupported("this platform has no events");
}
void Platform::SignalEvent(int) {}
void Platform::ConsumeEvent(int) {}
Result<int> Platform::Wait(std::span<WaitFd>, int) {
  return Unsupported("this platform cannot wait on descriptors");
}
Result<int> Platform::Duplicate(int) {
  return Unsupported("this platform cannot duplicate descriptors");
}

Result<int> OsPlatform::MakeEvent() {
  int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return FromErrno(errno, "eventfd");
  return fd;
}

void OsPlatform::SignalEvent(int event_fd) {
  uint64_t one = 1;
  // Fails only when the counter would overflow: it is signalled anyway.
  (void)!::write(event_fd, &one, sizeof(one));
}

void OsPlatform::ConsumeEvent(int event_fd) {
  uint64_t n;
  (void)!::read(event_fd, &n, sizeof(n));
}

Result<int> OsPlatform::Wait(std::span<WaitFd> fds, int timeout_ms) {
  // The vhost workers wait on two descriptors per round: no allocation.
  pollfd small[4];
  std::vector<pollfd> large;
  pollfd* p = small;
  if (fds.size() > std::size(small)) {
    large.resize(fds.size());
    p = large.data();
  }
  for (size_t i = 0; i < fds.size(); ++i) {
    p[i] = {fds[i].fd, static_cast<short>(fds[i].write ? POLLOUT : POLLIN), 0};
  }
  int n;
  do {
    n = ::poll(p, fds.size(), timeout_ms);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return FromErrno(errno, "poll");
  for (size_t i = 0; i < fds.size(); ++i) {
    fds[i].ready = p[i].revents != 0;
    fds[i].failed = (p[i].revents & (POLLERR | POLLHUP | POLLNVAL)) != 0;
  }
  return n;
}

Result<int> OsPlatform::Duplicate(int fd) {
  int d = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (d < 0) return FromErrno(errno, "cannot duplicate a descriptor");
  return d;
}

}  // namespace daxstore
