#include "vhost/session.h"

#include <linux/vhost_types.h>
#include <linux/virtio_config.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace daxstore::vhost {

namespace {

template <typename T>
Status Decode(std::span<const uint8_t> payload, T* out, const char* what) {
  if (payload.size() != sizeof(T))
    return InvalidArgument(std::string(what) + ": payload of " +
                           std::to_string(payload.size()) + " bytes, want " +
                           std::to_string(sizeof(T)));
  std::memcpy(out, payload.data(), sizeof(T));
  return Status::Ok();
}

template <typename T>
void Encode(const T& v, std::vector<uint8_t>* out) {
  out->resize(sizeof(T));
  std::memcpy(out->data(), &v, sizeof(T));
}

Status NoFds(std::span<const int> fds, const char* what) {
  if (!fds.empty())
    return InvalidArgument(std::string(what) + " carries file descriptors");
  return Status::Ok();
}

}  // namespace

Session::Session(const BlkDevice& dev, uint32_t queues,
                 std::shared_ptr<Platform> os)
    : os_(os ? std::move(os) : DefaultPlatform()), dev_(dev) {
  for (uint32_t i = 0; i < queues; ++i) {
    queues_.push_back(std::make_unique<Queue>());
    queues_.back()->index = i;
  }
  auto ev = os_->MakeEvent();
  if (ev.ok()) drop_event_ = *ev;
}

Session::~Session() {
  StopAll();
  if (lease_ != nullptr) lease_->Release(this);
  CloseFd(&reply_fd_);
  CloseFd(&drop_event_);
  CloseFd(&log_fd_);
  for (auto& q : queues_) {
    CloseFd(&q->kick);
    CloseFd(&q->call);
    CloseFd(&q->err);
  }
}

void Session::CloseFd(int* fd) {
  if (*fd >= 0) os_->Close(*fd);
  *fd = -1;
}

uint64_t Session::OfferedFeatures() const {
  uint64_t f = (1ull << VIRTIO_F_VERSION_1) | (1ull << kFProtocolFeatures) |
               (1ull << VIRTIO_RING_F_INDIRECT_DESC) |
               (1ull << VIRTIO_BLK_F_SEG_MAX) |
               (1ull << VIRTIO_BLK_F_BLK_SIZE) | (1ull << VIRTIO_BLK_F_FLUSH) |
               (1ull << VIRTIO_BLK_F_MQ) | (1ull << VIRTIO_BLK_F_DISCARD) |
               (1ull << VIRTIO_BLK_F_WRITE_ZEROES);
  if (migration_) f |= 1ull << VHOST_F_LOG_ALL;
  if (dev_.read_only) f |= 1ull << VIRTIO_BLK_F_RO;
  return f;
}

uint64_t Session::OfferedProtocolFeatures() const {
  return (1ull << kProtoMq) | (migration_ ? 1ull << kProtoLogShmfd : 0) |
         (1ull << kProtoReplyAck) | (1ull << kProtoConfig) |
         (1ull << kProtoInflightShmfd);
}

Result<Session::Queue*> Session::QueueAt(uint32_t index) {
  if (index >= queues_.size())
    return InvalidArgument("vring index " + std::to_string(index) +
                           " out of range (" + std::to_string(queues_.size()) +
                           " queues)");
  return queues_[index].get();
}

Status Session::Handle(const MessageHeader& hdr,
                       std::span<const uint8_t> payload,
                       std::span<const int> fds, std::vector<uint8_t>* reply,
                       bool* has_reply) {
  *has_reply = false;
  reply->clear();
  CloseFd(&reply_fd_);
  if ((hdr.flags & kVersionMask) != kVersion)
    return InvalidArgument("message version " +
                           std::to_string(hdr.flags & kVersionMask));
  if (hdr.size != payload.size() || payload.size() > kMaxPayload)
    return InvalidArgument("message size mismatch");
  Status st = Dispatch(hdr, payload, fds, reply, has_reply);
  const bool ack = (protocol_features_ & (1ull << kProtoReplyAck)) &&
                   (hdr.flags & kNeedReplyFlag);
  if (ack && !*has_reply) {
    Encode<uint64_t>(st.ok() ? 0 : 1, reply);
    *has_reply = true;
  }
  return st;
}

Status Session::Dispatch(const MessageHeader& hdr,
                         std::span<const uint8_t> payload,
                         std::span<const int> fds, std::vector<uint8_t>* reply,
                         bool* has_reply) {
  uint64_t u64 = 0;
  vhost_vring_state state{};
  switch (hdr.request) {
    case kGetFeatures:
    case kGetProtocolFeatures:
    case kGetQueueNum:
      DAXSTORE_RETURN_IF_ERROR(NoFds(fds, "GET message"));
      if (!payload.empty()) return InvalidArgument("GET with a payload");
      u64 = hdr.request == kGetFeatures           ? OfferedFeatures()
            : hdr.request == kGetProtocolFeatures ? OfferedProtocolFeatures()
                                                  : queues_.size();
      Encode(u64, reply);
      *has_reply = true;
      return Status::Ok();
    case kSetFeatures:
      DAXSTORE_RETURN_IF_ERROR(NoFds(fds, "SET_FEATURES"));
      DAXSTORE_RETURN_IF_ERROR(Decode(payload, &u64, "SET_FEATURES"));
      if (u64 & ~OfferedFeatures())
        return InvalidArgument("SET_FEATURES: features that were not offered");
      if ((u64 ^ features_) & (1ull << VHOST_F_LOG_ALL)) {
        // Logging starts or stops: workers take the log when they start.
        if ((u64 & (1ull << VHOST_F_LOG_ALL)) && log_.mapped())
          DAXSTORE_RETURN_IF_ERROR(CheckLogCovers(log_, mem_));
        StopAll();
        features_ = u64;
        features_set_ = true;
        StartAll();
        return Status::Ok();
      }
      features_ = u64;
      features_set_ = true;
      return Status::Ok();
    case kSetProtocolFeatures:
      DAXSTORE_RETURN_IF_ERROR(NoFds(fds, "SET_PROTOCOL_FEATURES"));
      DAXSTORE_RETURN_IF_ERROR(Decode(payload, &u64, "SET_PROTOCOL_FEATURES"));
      if (u64 & ~OfferedProtocolFeatures())
        return InvalidArgument("SET_PROTOCOL_FEATURES: not offered");
      protocol_features_ = u64;
      return Status::Ok();
    case kSetOwner:
    case kResetOwner:
      DAXSTORE_RETURN_IF_ERROR(NoFds(fds, "SET_OWNER"));
      if (hdr.request == kResetOwner) {
        StopAll();
        for (auto& q : queues_) q->started = false;
        ReleaseLeaseIfIdle();
      }
      return Status::Ok();
    case kSetMemTable:
      return SetMemTable(payload, fds);
    case kSetVringNum:
    case kSetVringBase:
    case kGetVringBase:
    case kSetVringEnable: {
      DAXSTORE_RETURN_IF_ERROR(NoFds(fds, "vring message"));
      DAXSTORE_RETURN_IF_ERROR(Decode(payload, &state, "vring state"));
      DAXSTORE_ASSIGN_OR_RETURN(Queue * q, QueueAt(state.index));
      if (hdr.request == kGetVringBase) {
        Stop(*q);
        q->started = false;
        CloseFd(&q->kick);
        // The ring's last request is complete and returned (its worker
        // finished it before stopping) before another front end's rings
        // may run on the volume.
        ReleaseLeaseIfIdle();
        state.num = q->base;
        Encode(state, reply);
        *has_reply = true;
        return Status::Ok();
      }
      if (hdr.request == kSetVringEnable) {
        if (state.num > 1) return InvalidArgument("SET_VRING_ENABLE: not 0/1");
        Stop(*q);
        q->enabled = state.num == 1;
        Start(*q);
        return Status::Ok();
      }
      if (q->worker.joinable())
        return InvalidArgument("vring " + std::to_string(q->index) +
                               " changed while running");
      if (hdr.request == kSetVringNum) {
        if (state.num == 0 || state.num > kMaxQueueSize ||
            (state.num & (state.num - 1)) != 0)
          return InvalidArgument("SET_VRING_NUM " + std::to_string(state.num));
        q->num = state.num;
      } else {
        if (state.num > 0xffff) return InvalidArgument("SET_VRING_BASE");
        q->base = static_cast<uint16_t>(state.num);
      }
      return Status::Ok();
    }
    case kSetVringAddr: {
      DAXSTORE_RETURN_IF_ERROR(NoFds(fds, "SET_VRING_ADDR"));
      vhost_vring_addr a{};
      DAXSTORE_RETURN_IF_ERROR(Decode(payload, &a, "SET_VRING_ADDR"));
      DAXSTORE_ASSIGN_OR_RETURN(Queue * q, QueueAt(a.index));
      if (a.flags & ~(1u << VHOST_VRING_F_LOG))
        return InvalidArgument("SET_VRING_ADDR: unknown flags");
      const bool log_used = a.flags & (1u << VHOST_VRING_F_LOG);
      if (log_used && q->num != 0 && log_.mapped() &&
          !log_.Covers(a.log_guest_addr, UsedRingBytes(q->num)))
        return InvalidArgument(
            "SET_VRING_ADDR: the used ring's log address is past the dirty "
            "log");
      Stop(*q);
      q->addrs = {a.desc_user_addr, a.avail_user_addr, a.used_user_addr};
      q->has_addrs = true;
      q->log_used = log_used;
      q->log_addr = a.log_guest_addr;
      Start(*q);
      return Status::Ok();
    }
    case kSetLogBase:
      DAXSTORE_RETURN_IF_ERROR(SetLogBase(payload, fds, reply));
      *has_reply = true;
      return Status::Ok();
    case kSetLogFd:
      return SetLogFd(payload, fds);
    case kSetVringKick:
    case kSetVringCall:
    case kSetVringErr:
      return SetVringFd(hdr.request, payload, fds);
    case kGetConfig: {
      DAXSTORE_RETURN_IF_ERROR(NoFds(fds, "GET_CONFIG"));
      ConfigHeader ch;
      if (payload.size() < sizeof(ch))
        return InvalidArgument("GET_CONFIG: short payload");
      std::memcpy(&ch, payload.data(), sizeof(ch));
      if (ch.size > kMaxConfigSize || ch.offset > kMaxConfigSize - ch.size ||
          payload.size() != sizeof(ch) + ch.size)
        return InvalidArgument("GET_CONFIG: bad offset or size");
      uint8_t space[kMaxConfigSize] = {};
      virtio_blk_config c =
          MakeBlkConfig(dev_, static_cast<uint16_t>(queues_.size()));
      std::memcpy(space, &c, sizeof(c));
      reply->resize(sizeof(ch) + ch.size);
      std::memcpy(reply->data(), &ch, sizeof(ch));
      std::memcpy(reply->data() + sizeof(ch), space + ch.offset, ch.size);
      *has_reply = true;
      return Status::Ok();
    }
    case kGetInflightFd:
      DAXSTORE_RETURN_IF_ERROR(GetInflightFd(payload, fds, reply));
      *has_reply = true;
      return Status::Ok();
    case kSetInflightFd:
      return SetInflightFd(payload, fds);
    case kSetConfig:
      // Nothing in the config space is writable (no CONFIG_WCE).
      DAXSTORE_RETURN_IF_ERROR(NoFds(fds, "SET_CONFIG"));
      return Status::Ok();
    default:
      return InvalidArgument("unsupported request " +
                             std::to_string(hdr.request));
  }
}

Status Session::SetMemTable(std::span<const uint8_t> payload,
                            std::span<const int> fds) {
  MemoryTableHeader h;
  if (payload.size() < sizeof(h))
    return InvalidArgument("SET_MEM_TABLE: short payload");
  std::memcpy(&h, payload.data(), sizeof(h));
  if (h.nregions == 0 || h.nregions > kMaxRegions ||
      payload.size() != sizeof(h) + h.nregions * sizeof(MemoryRegion))
    return InvalidArgument("SET_MEM_TABLE: " + std::to_string(h.nregions) +
                           " regions in " + std::to_string(payload.size()) +
                           " bytes");
  std::vector<MemoryRegion> regions(h.nregions);
  std::memcpy(regions.data(), payload.data() + sizeof(h),
              h.nregions * sizeof(MemoryRegion));
  DAXSTORE_ASSIGN_OR_RETURN(MemoryTable t, MemoryTable::Map(regions, fds, os_));
  // While logging, the front end grows the log before it grows memory.
  if (ActiveLog() != nullptr) DAXSTORE_RETURN_IF_ERROR(CheckLogCovers(log_, t));
  if (t.AllSealed() && !mem_announced_sealed_) {
    mem_announced_sealed_ = true;
    std::fprintf(stderr,
                 "daxstore vhost: guest memory is size-sealed "
                 "(F_SEAL_SHRINK): it cannot shrink under us\n");
  }
  // Workers use the old table until they stop; the old one is unmapped
  // only after that.
  StopAll();
  mem_ = std::move(t);
  StartAll();
  return Status::Ok();
}

const DirtyLog* Session::ActiveLog() const {
  return (features_ & (1ull << VHOST_F_LOG_ALL)) && log_.mapped() ? &log_
                                                                  : nullptr;
}

Status Session::CheckLogCovers(const DirtyLog& log,
                               const MemoryTable& mem) const {
  const uint64_t need = DirtyLog::BytesFor(mem.GuestPhysEnd());
  if (log.size() < need)
    return InvalidArgument("dirty log of " + std::to_string(log.size()) +
                           " bytes is too small for guest memory ending at " +
                           std::to_string(mem.GuestPhysEnd()) + " (needs " +
                           std::to_string(need) + " bytes)");
  for (const auto& q : queues_)
    if (q->log_used && q->num != 0 &&
        !log.Covers(q->log_addr, UsedRingBytes(q->num)))
      return InvalidArgument(
          "dirty log is too small for the used ring of "
          "vring " +
          std::to_string(q->index));
  return Status::Ok();
}

Status Session::SetLogBase(std::span<const uint8_t> payload,
                           std::span<const int> fds,
                           std::vector<uint8_t>* reply) {
  if (!(protocol_features_ & (1ull << kProtoLogShmfd)))
    return InvalidArgument(
        "SET_LOG_BASE without VHOST_USER_PROTOCOL_F_LOG_SHMFD");
  LogInfo info;
  DAXSTORE_RETURN_IF_ERROR(Decode(payload, &info, "SET_LOG_BASE"));
  if (fds.size() != 1)
    return InvalidArgument("SET_LOG_BASE needs exactly one descriptor");
  DAXSTORE_ASSIGN_OR_RETURN(
      DirtyLog log,
      DirtyLog::Map(os_, fds[0], info.mmap_size, info.mmap_offset));
  if (mem_.size() != 0) DAXSTORE_RETURN_IF_ERROR(CheckLogCovers(log, mem_));
  // Workers mark the old log until they stop.
  StopAll();
  log_ = std::move(log);
  StartAll();
  // The front end waits for this reply before it reads the log.
  Encode<uint64_t>(0, reply);
  return Status::Ok();
}

Status Session::SetLogFd(std::span<const uint8_t> payload,
                         std::span<const int> fds) {
  if (payload.size() > sizeof(uint64_t))
    return InvalidArgument("SET_LOG_FD: payload of " +
                           std::to_string(payload.size()) + " bytes");
  if (fds.size() != 1)
    return InvalidArgument("SET_LOG_FD needs exactly one descriptor");
  auto d = os_->Duplicate(fds[0]);
  if (!d.ok()) return d.status().WithContext("log fd");
  CloseFd(&log_fd_);
  log_fd_ = *d;
  return Status::Ok();
}

Status Session::GetInflightFd(std::span<const uint8_t> payload,
                              std::span<const int> fds,
                              std::vector<uint8_t>* reply) {
  DAXSTORE_RETURN_IF_ERROR(NoFds(fds, "GET_INFLIGHT_FD"));
  if (!(protocol_features_ & (1ull << kProtoInflightShmfd)))
    return InvalidArgument(
        "GET_INFLIGHT_FD without VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD");
  InflightInfo info;
  DAXSTORE_RETURN_IF_ERROR(Decode(payload, &info, "GET_INFLIGHT_FD"));
  DAXSTORE_RETURN_IF_ERROR(
      CheckInflightRequest(info, static_cast<uint32_t>(queues_.size())));
  InflightInfo out;
  DAXSTORE_ASSIGN_OR_RETURN(
      InflightRegion r, InflightRegion::Create(os_, info, &reply_fd_, &out));
  // The front end maps its own copy; this one only set up the slots.
  (void)r;
  Encode(out, reply);
  return Status::Ok();
}

Status Session::SetInflightFd(std::span<const uint8_t> payload,
                              std::span<const int> fds) {
  if (!(protocol_features_ & (1ull << kProtoInflightShmfd)))
    return InvalidArgument(
        "SET_INFLIGHT_FD without VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD");
  InflightInfo info;
  DAXSTORE_RETURN_IF_ERROR(Decode(payload, &info, "SET_INFLIGHT_FD"));
  if (fds.size() != 1)
    return InvalidArgument("SET_INFLIGHT_FD needs exactly one descriptor");
  DAXSTORE_ASSIGN_OR_RETURN(
      InflightRegion r,
      InflightRegion::Map(os_, fds[0], info,
                          static_cast<uint32_t>(queues_.size())));
  // Workers use the old region until they stop.
  StopAll();
  inflight_ = std::move(r);
  for (auto& q : queues_)
    q->inflight =
        q->index < inflight_.num_queues() ? inflight_.queue(q->index) : nullptr;
  StartAll();
  return Status::Ok();
}

Status Session::SetVringFd(uint32_t request, std::span<const uint8_t> payload,
                           std::span<const int> fds) {
  uint64_t u64;
  DAXSTORE_RETURN_IF_ERROR(Decode(payload, &u64, "SET_VRING_KICK/CALL/ERR"));
  if (u64 & ~(kVringIndexMask | kVringNoFd))
    return InvalidArgument("SET_VRING_KICK/CALL/ERR: unknown flags");
  const bool nofd = u64 & kVringNoFd;
  if (fds.size() != (nofd ? 0u : 1u))
    return InvalidArgument("SET_VRING_KICK/CALL/ERR: wrong number of fds");
  DAXSTORE_ASSIGN_OR_RETURN(Queue * q,
                            QueueAt(static_cast<uint32_t>(u64 & 0xff)));
  int fd = -1;
  if (!nofd) {
    auto d = os_->Duplicate(fds[0]);
    if (!d.ok()) return d.status().WithContext("vring fd");
    fd = *d;
  }
  Stop(*q);
  int* slot = request == kSetVringKick   ? &q->kick
              : request == kSetVringCall ? &q->call
                                         : &q->err;
  CloseFd(slot);
  *slot = fd;
  if (request == kSetVringKick) {
    if (nofd) {
      Start(*q);
      return InvalidArgument("SET_VRING_KICK: polling mode is not supported");
    }
    q->started = true;
    // Without VHOST_USER_F_PROTOCOL_FEATURES a ring is enabled at start.
    if (!(features_ & (1ull << kFProtocolFeatures))) q->enabled = true;
  }
  Start(*q);
  return Status::Ok();
}

void Session::Start(Queue& q) {
  if (q.worker.joinable() || !q.started || !q.enabled || !q.has_addrs ||
      q.num == 0 || q.kick < 0 || mem_.size() == 0)
    return;
  auto stop = os_->MakeEvent();
  if (!stop.ok()) {
    std::fprintf(stderr, "daxstore vhost: %s\n",
                 stop.status().message().c_str());
    return;
  }
  q.stop = *stop;
  q.last_avail.store(q.base);
  // The worker gets its settings now: later messages may change features_.
  const bool indirect = features_ & (1ull << VIRTIO_RING_F_INDIRECT_DESC);
  const DirtyLog* log = ActiveLog();
  // Taken here if free, so the first front end to start a ring holds the
  // lease; otherwise the worker waits for it.
  const bool leased = lease_ == nullptr || lease_->TryAcquire(this);
  q.worker = std::thread(
      [this, &q, indirect, log, leased] { Work(q, indirect, log, leased); });
}

void Session::Stop(Queue& q) {
  if (!q.worker.joinable()) return;
  os_->SignalEvent(q.stop);
  q.worker.join();
  CloseFd(&q.stop);
  q.base = q.last_avail.load();
}

void Session::ReleaseLeaseIfIdle() {
  if (lease_ == nullptr) return;
  for (auto& q : queues_)
    if (q->started || q->worker.joinable()) return;
  lease_->Release(this);
}

void Session::StopAll() {
  for (auto& q : queues_) Stop(*q);
}

void Session::StartAll() {
  for (auto& q : queues_) Start(*q);
}

}  // namespace daxstore::vhost
