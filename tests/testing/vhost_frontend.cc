#include "testing/vhost_frontend.h"

#include <fcntl.h>
#include <linux/vhost_types.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

namespace daxstore::testing {
namespace {
using namespace daxstore::vhost;

constexpr uint64_t kRingArea = 64 * 1024;  // rings of one queue

}  // namespace

Result<std::unique_ptr<VhostFrontend>> VhostFrontend::Connect(
    const std::string& path, const Options& o) {
  std::unique_ptr<VhostFrontend> f(new VhostFrontend());
  f->o_ = o;
  f->sock_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (f->sock_ < 0) return FromErrno(errno, "socket");
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, path.c_str(), sizeof(sa.sun_path) - 1);
  if (connect(f->sock_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0)
    return FromErrno(errno, "connecting to " + path);
  f->mem_fd_ = memfd_create("guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (f->mem_fd_ < 0) return FromErrno(errno, "memfd_create");
  size_t total = o.mmap_offset + o.mem_size;
  if (ftruncate(f->mem_fd_, static_cast<off_t>(total)) != 0)
    return FromErrno(errno, "ftruncate");
  if (o.seal_memory &&
      fcntl(f->mem_fd_, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0)
    return FromErrno(errno, "sealing guest memory");
  void* p =
      mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, f->mem_fd_, 0);
  if (p == MAP_FAILED) return FromErrno(errno, "mmap");
  f->map_ = static_cast<uint8_t*>(p);
  f->mem_ = f->map_ + o.mmap_offset;
  f->rings_.resize(o.queues);
  for (auto& r : f->rings_) {
    r.kick = eventfd(0, EFD_CLOEXEC);
    r.call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (r.kick < 0 || r.call < 0) return FromErrno(errno, "eventfd");
  }
  return f;
}

VhostFrontend::~VhostFrontend() {
  if (sock_ >= 0) close(sock_);
  for (auto& r : rings_) {
    if (r.kick >= 0) close(r.kick);
    if (r.call >= 0) close(r.call);
  }
  if (map_ != nullptr) munmap(map_, o_.mmap_offset + o_.mem_size);
  if (inflight_map_ != nullptr) munmap(inflight_map_, inflight_info_.mmap_size);
  if (inflight_fd_ >= 0) close(inflight_fd_);
  if (mem_fd_ >= 0) close(mem_fd_);
}

uint64_t VhostFrontend::QueueBase(uint32_t q) const {
  return kGpaBase + q * (o_.mem_size / o_.queues);
}

uint64_t VhostFrontend::UsedOffset() const {
  return (16ull * o_.queue_size + 6 + 2ull * o_.queue_size + 4095) & ~4095ull;
}

uint64_t VhostFrontend::ScratchGpa(uint32_t q) const {
  // After the rings and the batch slots.
  return QueueBase(q) + kRingArea + kMaxBatch * (kMaxData + 4096);
}

Status VhostFrontend::Send(uint32_t request, const void* payload, size_t n,
                           std::span<const int> fds, uint32_t flags) {
  std::vector<uint8_t> buf(sizeof(MessageHeader) + n);
  MessageHeader h{request, flags, static_cast<uint32_t>(n)};
  std::memcpy(buf.data(), &h, sizeof(h));
  if (n) std::memcpy(buf.data() + sizeof(h), payload, n);
  iovec iov{buf.data(), buf.size()};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
  if (!fds.empty()) {
    mh.msg_control = control.data();
    mh.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t s = sendmsg(sock_, &mh, MSG_NOSIGNAL);
  if (s != static_cast<ssize_t>(buf.size()))
    return FromErrno(s < 0 ? errno : EPIPE, "sending a vhost-user message");
  return Status::Ok();
}

Status VhostFrontend::SendBytes(const void* p, size_t n) {
  if (send(sock_, p, n, MSG_NOSIGNAL) != static_cast<ssize_t>(n))
    return FromErrno(errno, "sending bytes");
  return Status::Ok();
}

Result<std::vector<uint8_t>> VhostFrontend::Receive(uint32_t request) {
  int fd = -1;
  auto r = Receive(request, &fd);
  if (fd >= 0) close(fd);
  return r;
}

Result<std::vector<uint8_t>> VhostFrontend::Receive(uint32_t request, int* fd) {
  *fd = -1;
  auto read_all = [&](void* dst, size_t n) -> Status {
    size_t got = 0;
    while (got < n) {
      pollfd p{sock_, POLLIN, 0};
      if (poll(&p, 1, o_.timeout_ms) <= 0)
        return IoError("no reply from the backend", ETIMEDOUT);
      iovec iov{static_cast<uint8_t*>(dst) + got, n - got};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
      msghdr mh{};
      mh.msg_iov = &iov;
      mh.msg_iovlen = 1;
      mh.msg_control = control;
      mh.msg_controllen = sizeof(control);
      ssize_t r = recvmsg(sock_, &mh, MSG_CMSG_CLOEXEC);
      if (r <= 0) return IoError("backend closed the connection", EPIPE);
      for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr;
           c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
            *fd < 0)
          std::memcpy(fd, CMSG_DATA(c), sizeof(int));
      }
      got += static_cast<size_t>(r);
    }
    return Status::Ok();
  };
  MessageHeader h;
  DAXSTORE_RETURN_IF_ERROR(read_all(&h, sizeof(h)));
  if (h.request != request || !(h.flags & kReplyFlag) || h.size > kMaxPayload)
    return Internal("unexpected reply");
  std::vector<uint8_t> p(h.size);
  DAXSTORE_RETURN_IF_ERROR(read_all(p.data(), p.size()));
  return p;
}

Result<uint64_t> VhostFrontend::GetU64(uint32_t request) {
  DAXSTORE_RETURN_IF_ERROR(Send(request, nullptr, 0));
  DAXSTORE_ASSIGN_OR_RETURN(auto p, Receive(request));
  if (p.size() != 8) return Internal("reply is not a u64");
  uint64_t v;
  std::memcpy(&v, p.data(), 8);
  return v;
}

bool VhostFrontend::Closed(int timeout_ms) {
  pollfd p{sock_, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) <= 0) return false;
  char c;
  return recv(sock_, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0 ||
         (p.revents & (POLLHUP | POLLERR));
}

Status VhostFrontend::Setup() {
  auto acked = [&](uint32_t req, const void* p, size_t n,
                   std::span<const int> fds = {}) -> Status {
    DAXSTORE_RETURN_IF_ERROR(Send(req, p, n, fds, kVersion | kNeedReplyFlag));
    DAXSTORE_ASSIGN_OR_RETURN(auto r, Receive(req));
    uint64_t v = 1;
    if (r.size() == 8) std::memcpy(&v, r.data(), 8);
    if (v != 0)
      return Internal("backend refused request " + std::to_string(req));
    return Status::Ok();
  };
  DAXSTORE_ASSIGN_OR_RETURN(uint64_t offered, GetU64(kGetFeatures));
  DAXSTORE_ASSIGN_OR_RETURN(uint64_t proto, GetU64(kGetProtocolFeatures));
  proto &= (1ull << kProtoMq) | (1ull << kProtoReplyAck) |
           (1ull << kProtoConfig) |
           (o_.inflight ? 1ull << kProtoInflightShmfd : 0) |
           (o_.log ? 1ull << kProtoLogShmfd : 0);
  DAXSTORE_RETURN_IF_ERROR(Send(kSetProtocolFeatures, &proto, 8));
  DAXSTORE_RETURN_IF_ERROR(Send(kSetOwner, nullptr, 0));
  DAXSTORE_ASSIGN_OR_RETURN(uint64_t nq, GetU64(kGetQueueNum));
  if (nq < o_.queues) return Internal("backend has fewer queues");
  // Up to the write-zeroes fields (older backends know nothing further).
  constexpr uint32_t kCfg =
      offsetof(virtio_blk_config, max_secure_erase_sectors);
  uint8_t cfg[sizeof(ConfigHeader) + kCfg] = {};
  ConfigHeader ch{0, kCfg, 0};
  std::memcpy(cfg, &ch, sizeof(ch));
  DAXSTORE_RETURN_IF_ERROR(Send(kGetConfig, cfg, sizeof(cfg)));
  DAXSTORE_ASSIGN_OR_RETURN(auto cr, Receive(kGetConfig));
  if (cr.size() != sizeof(cfg)) return Internal("short config");
  std::memcpy(&config_, cr.data() + sizeof(ch), kCfg);
  features_ = offered & o_.features;
  DAXSTORE_RETURN_IF_ERROR(acked(kSetFeatures, &features_, 8));
  if (proto & (1ull << kProtoInflightShmfd)) {
    // As QEMU: a region once per device, handed back on every start.
    if (inflight_fd_ < 0) {
      InflightInfo ask{0, 0, static_cast<uint16_t>(o_.queues), o_.queue_size,
                       0};
      DAXSTORE_RETURN_IF_ERROR(Send(kGetInflightFd, &ask, sizeof(ask)));
      int fd = -1;
      DAXSTORE_ASSIGN_OR_RETURN(auto r, Receive(kGetInflightFd, &fd));
      if (r.size() != sizeof(InflightInfo) || fd < 0) {
        if (fd >= 0) close(fd);
        return Internal("GET_INFLIGHT_FD: bad reply");
      }
      inflight_fd_ = fd;
      std::memcpy(&inflight_info_, r.data(), sizeof(inflight_info_));
      void* m =
          mmap(nullptr, inflight_info_.mmap_size, PROT_READ | PROT_WRITE,
               MAP_SHARED, fd, static_cast<off_t>(inflight_info_.mmap_offset));
      if (m == MAP_FAILED) return FromErrno(errno, "mapping the inflight fd");
      inflight_map_ = static_cast<uint8_t*>(m);
    }
    DAXSTORE_RETURN_IF_ERROR(acked(kSetInflightFd, &inflight_info_,
                                   sizeof(inflight_info_), {&inflight_fd_, 1}));
  }
  struct {
    MemoryTableHeader h;
    MemoryRegion r;
  } mt{{1, 0}, {kGpaBase, o_.mem_size, kUserBase, o_.mmap_offset}};
  DAXSTORE_RETURN_IF_ERROR(acked(kSetMemTable, &mt, sizeof(mt), {&mem_fd_, 1}));
  for (uint32_t q = 0; q < o_.queues; ++q) {
    vhost_vring_state num{q, o_.queue_size};
    // The used idx as guest memory holds it (no backend runs the ring
    // now; a memcpy, as rings of odd queue counts may be misaligned).
    uint16_t used_idx = 0;
    std::memcpy(&used_idx, Host(QueueBase(q)) + UsedOffset() + 2, 2);
    vhost_vring_state base{q, base_at_avail_ ? rings_[q].avail_idx : used_idx};
    DAXSTORE_RETURN_IF_ERROR(acked(kSetVringNum, &num, sizeof(num)));
    DAXSTORE_RETURN_IF_ERROR(acked(kSetVringBase, &base, sizeof(base)));
    uint64_t desc = QueueBase(q) - kGpaBase + kUserBase;
    uint64_t avail = desc + 16ull * o_.queue_size;
    uint64_t used = (avail + 6 + 2ull * o_.queue_size + 4095) & ~4095ull;
    vhost_vring_addr a{q, 0, desc, used, avail, 0};
    DAXSTORE_RETURN_IF_ERROR(acked(kSetVringAddr, &a, sizeof(a)));
    uint64_t idx = q;
    DAXSTORE_RETURN_IF_ERROR(
        acked(kSetVringCall, &idx, 8, {&rings_[q].call, 1}));
    DAXSTORE_RETURN_IF_ERROR(
        acked(kSetVringKick, &idx, 8, {&rings_[q].kick, 1}));
    vhost_vring_state on{q, 1};
    DAXSTORE_RETURN_IF_ERROR(acked(kSetVringEnable, &on, sizeof(on)));
  }
  return Status::Ok();
}

Status VhostFrontend::StartLog(int log_fd, uint64_t size, uint64_t offset) {
  LogInfo info{size, offset};
  DAXSTORE_RETURN_IF_ERROR(
      Send(kSetLogBase, &info, sizeof(info), {&log_fd, 1}));
  DAXSTORE_ASSIGN_OR_RETURN(auto r, Receive(kSetLogBase));
  if (r.size() != 8) return Internal("SET_LOG_BASE: bad reply");
  features_ |= 1ull << VHOST_F_LOG_ALL;
  DAXSTORE_RETURN_IF_ERROR(Send(kSetFeatures, &features_, 8));
  for (uint32_t q = 0; q < o_.queues; ++q) {
    uint64_t desc = QueueBase(q) - kGpaBase + kUserBase;
    uint64_t avail = desc + 16ull * o_.queue_size;
    uint64_t used = (avail + 6 + 2ull * o_.queue_size + 4095) & ~4095ull;
    vhost_vring_addr a{q,         1u << VHOST_VRING_F_LOG, desc, used, avail,
                       UsedGpa(q)};
    DAXSTORE_RETURN_IF_ERROR(
        Send(kSetVringAddr, &a, sizeof(a), {}, kVersion | kNeedReplyFlag));
    DAXSTORE_ASSIGN_OR_RETURN(auto ack, Receive(kSetVringAddr));
    uint64_t v = 1;
    if (ack.size() == 8) std::memcpy(&v, ack.data(), 8);
    if (v != 0) return Internal("backend refused SET_VRING_ADDR with log");
  }
  return Status::Ok();
}

Status VhostFrontend::Reconnect(const std::string& path) {
  if (sock_ >= 0) close(sock_);
  sock_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock_ < 0) return FromErrno(errno, "socket");
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, path.c_str(), sizeof(sa.sun_path) - 1);
  if (connect(sock_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0)
    return FromErrno(errno, "connecting to " + path);
  return Setup();
}

Status VhostFrontend::Kick(uint32_t q) {
  uint64_t one = 1;
  if (write(rings_[q].kick, &one, 8) != 8) return FromErrno(errno, "kick");
  return Status::Ok();
}

uint16_t VhostFrontend::UsedIndex(uint32_t q) {
  uint64_t used_off =
      (16ull * o_.queue_size + 6 + 2ull * o_.queue_size + 4095) & ~4095ull;
  auto* used = reinterpret_cast<vring_used*>(Host(QueueBase(q)) + used_off);
  return __atomic_load_n(&used->idx, __ATOMIC_ACQUIRE);
}

Status VhostFrontend::WaitUsed(uint32_t q, uint16_t target) {
  uint8_t* base = Host(QueueBase(q));
  uint64_t used_off =
      (16ull * o_.queue_size + 6 + 2ull * o_.queue_size + 4095) & ~4095ull;
  auto* used = reinterpret_cast<vring_used*>(base + used_off);
  const uint16_t seen = rings_[q].used_seen;
  for (;;) {
    uint16_t now = __atomic_load_n(&used->idx, __ATOMIC_ACQUIRE);
    if (now == target) return Status::Ok();
    // More returned than were submitted: something came back twice.
    if (static_cast<uint16_t>(now - seen) >
        static_cast<uint16_t>(target - seen))
      return Internal("backend returned more requests than were submitted");
    pollfd p{rings_[q].call, POLLIN, 0};
    int n = poll(&p, 1, o_.timeout_ms);
    if (n == 0) return IoError("request timed out", ETIMEDOUT);
    uint64_t v;
    (void)!read(rings_[q].call, &v, 8);
  }
}

Status VhostFrontend::Run(uint32_t q, std::span<Req> reqs) {
  DAXSTORE_RETURN_IF_ERROR(Submit(q, reqs));
  return Complete(q, reqs);
}

Status VhostFrontend::Submit(uint32_t q, std::span<Req> reqs) {
  DAXSTORE_RETURN_IF_ERROR(Publish(q, reqs));
  return Kick(q);
}

uint64_t VhostFrontend::DataGpa(uint32_t q, size_t i) const {
  return QueueBase(q) + kRingArea + i * (kMaxData + 4096) + 4096;
}

Status VhostFrontend::Publish(uint32_t q, std::span<Req> reqs) {
  if (reqs.size() > kMaxBatch || q >= o_.queues)
    return InvalidArgument("batch too large");
  uint8_t* base = Host(QueueBase(q));
  auto* desc = reinterpret_cast<vring_desc*>(base);
  auto* avail = reinterpret_cast<vring_avail*>(base + 16ull * o_.queue_size);
  Ring& r = rings_[q];
  for (size_t i = 0; i < reqs.size(); ++i) {
    Req& rq = reqs[i];
    if (rq.out.size() > kMaxData || rq.in.size() > kMaxData)
      return InvalidArgument("request too large");
    uint64_t slot = QueueBase(q) + kRingArea + i * (kMaxData + 4096);
    virtio_blk_outhdr h{rq.type, 0, rq.sector};
    std::memcpy(Host(slot), &h, sizeof(h));
    uint64_t data = slot + 4096, status = slot + 64;
    *Host(status) = 0xff;
    uint16_t d = static_cast<uint16_t>(3 * i);
    uint16_t n = 0;
    desc[d + n++] = {slot, sizeof(h), VRING_DESC_F_NEXT, 0};
    if (!rq.out.empty()) {
      std::memcpy(Host(data), rq.out.data(), rq.out.size());
      desc[d + n++] = {data, static_cast<uint32_t>(rq.out.size()),
                       VRING_DESC_F_NEXT, 0};
    } else if (!rq.in.empty()) {
      desc[d + n++] = {data, static_cast<uint32_t>(rq.in.size()),
                       VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 0};
    }
    desc[d + n++] = {status, 1, VRING_DESC_F_WRITE, 0};
    for (uint16_t k = 0; k + 1 < n; ++k) desc[d + k].next = d + k + 1;
    avail->ring[(r.avail_idx + i) % o_.queue_size] = d;
  }
  r.avail_idx = static_cast<uint16_t>(r.avail_idx + reqs.size());
  __atomic_store_n(&avail->idx, r.avail_idx, __ATOMIC_RELEASE);
  return Status::Ok();
}

Status VhostFrontend::Complete(uint32_t q, std::span<Req> reqs) {
  Ring& r = rings_[q];
  if (static_cast<uint16_t>(r.avail_idx - r.used_seen) != reqs.size())
    return InvalidArgument("not the batch that was submitted");
  DAXSTORE_RETURN_IF_ERROR(WaitUsed(q, r.avail_idx));
  uint8_t* base = Host(QueueBase(q));
  uint64_t used_off =
      (16ull * o_.queue_size + 6 + 2ull * o_.queue_size + 4095) & ~4095ull;
  auto* used = reinterpret_cast<vring_used*>(base + used_off);
  std::vector<bool> seen(reqs.size());
  for (size_t k = 0; k < reqs.size(); ++k) {
    vring_used_elem e = used->ring[(r.used_seen + k) % o_.queue_size];
    size_t i = e.id / 3;
    if (e.id % 3 != 0 || i >= reqs.size()) return Internal("bad used id");
    if (seen[i]) return Internal("request returned twice");
    seen[i] = true;
    uint64_t slot = QueueBase(q) + kRingArea + i * (kMaxData + 4096);
    reqs[i].status = *Host(slot + 64);
    reqs[i].used_len = e.len;
    if (!reqs[i].in.empty())
      std::memcpy(reqs[i].in.data(), Host(slot + 4096), reqs[i].in.size());
  }
  r.used_seen = r.avail_idx;
  return Status::Ok();
}

Result<uint8_t> VhostFrontend::Request(uint32_t q, uint32_t type,
                                       uint64_t sector,
                                       std::span<const uint8_t> out,
                                       std::span<uint8_t> in) {
  Req r{type, sector, out, in};
  DAXSTORE_RETURN_IF_ERROR(Run(q, {&r, 1}));
  return r.status;
}

Result<uint32_t> VhostFrontend::RunChain(uint32_t q,
                                         std::span<const vring_desc> descs,
                                         uint16_t head) {
  uint8_t* base = Host(QueueBase(q));
  auto* desc = reinterpret_cast<vring_desc*>(base);
  auto* avail = reinterpret_cast<vring_avail*>(base + 16ull * o_.queue_size);
  Ring& r = rings_[q];
  for (size_t i = 0; i < descs.size() && i < o_.queue_size; ++i)
    desc[i] = descs[i];
  avail->ring[r.avail_idx % o_.queue_size] = head;
  ++r.avail_idx;
  __atomic_store_n(&avail->idx, r.avail_idx, __ATOMIC_RELEASE);
  DAXSTORE_RETURN_IF_ERROR(Kick(q));
  DAXSTORE_RETURN_IF_ERROR(WaitUsed(q, r.avail_idx));
  uint64_t used_off =
      (16ull * o_.queue_size + 6 + 2ull * o_.queue_size + 4095) & ~4095ull;
  auto* used = reinterpret_cast<vring_used*>(base + used_off);
  vring_used_elem e = used->ring[r.used_seen % o_.queue_size];
  r.used_seen = r.avail_idx;
  if (e.id != head) return Internal("used id is not the head");
  return e.len;
}

}  // namespace daxstore::testing
