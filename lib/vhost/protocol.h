// vhost-user wire format (QEMU docs/interop/vhost-user.rst): the message
// header, the request codes and payloads this backend understands, and the
// limits it enforces on them. The virtio structs come from <linux/...>.
#pragma once

#include <cstddef>
#include <cstdint>

namespace daxstore::vhost {

// Front-end requests (the subset this backend knows).
enum Request : uint32_t {
  kGetFeatures = 1,
  kSetFeatures = 2,
  kSetOwner = 3,
  kResetOwner = 4,
  kSetMemTable = 5,
  kSetLogBase = 6,
  kSetLogFd = 7,
  kSetVringNum = 8,
  kSetVringAddr = 9,
  kSetVringBase = 10,
  kGetVringBase = 11,
  kSetVringKick = 12,
  kSetVringCall = 13,
  kSetVringErr = 14,
  kGetProtocolFeatures = 15,
  kSetProtocolFeatures = 16,
  kGetQueueNum = 17,
  kSetVringEnable = 18,
  kGetConfig = 24,
  kSetConfig = 25,
  kGetInflightFd = 31,
  kSetInflightFd = 32,
};

// Header flags.
inline constexpr uint32_t kVersion = 0x1;
inline constexpr uint32_t kVersionMask = 0x3;
inline constexpr uint32_t kReplyFlag = 0x4;
inline constexpr uint32_t kNeedReplyFlag = 0x8;

// Feature bits.
inline constexpr int kFProtocolFeatures = 30;  // VHOST_USER_F_PROTOCOL_FEATURES
inline constexpr int kProtoMq = 0;
inline constexpr int kProtoLogShmfd = 1;
inline constexpr int kProtoReplyAck = 3;
inline constexpr int kProtoConfig = 9;
inline constexpr int kProtoInflightShmfd = 12;

// The vring index word of SET_VRING_KICK/CALL/ERR.
inline constexpr uint64_t kVringIndexMask = 0xff;
inline constexpr uint64_t kVringNoFd = 0x100;

// Limits.
inline constexpr size_t kMaxRegions = 8;  // VHOST_MEMORY_BASELINE_NREGIONS
inline constexpr size_t kMaxFds = kMaxRegions;
inline constexpr size_t kMaxConfigSize = 256;  // VHOST_USER_MAX_CONFIG_SIZE
inline constexpr size_t kMaxPayload = 4096;
inline constexpr uint32_t kMaxQueueSize = 32768;  // virtio: at most 2^15
inline constexpr uint32_t kMaxQueues = 64;

struct MessageHeader {
  uint32_t request;
  uint32_t flags;
  uint32_t size;  // payload bytes that follow
};
static_assert(sizeof(MessageHeader) == 12);

struct MemoryRegion {
  uint64_t guest_phys_addr;
  uint64_t memory_size;
  uint64_t userspace_addr;
  uint64_t mmap_offset;
};

struct MemoryTableHeader {
  uint32_t nregions;
  uint32_t padding;
};

struct ConfigHeader {
  uint32_t offset;
  uint32_t size;
  uint32_t flags;
};

// SET_LOG_BASE with VHOST_USER_PROTOCOL_F_LOG_SHMFD ("log description").
struct LogInfo {
  uint64_t mmap_size;
  uint64_t mmap_offset;
};
static_assert(sizeof(LogInfo) == 16);

// GET_INFLIGHT_FD / SET_INFLIGHT_FD ("inflight description"; the front end
// lays it out as a C struct, so it is 24 bytes with the tail padding).
struct InflightInfo {
  uint64_t mmap_size;
  uint64_t mmap_offset;
  uint16_t num_queues;
  uint16_t queue_size;
  uint32_t padding;
};
static_assert(sizeof(InflightInfo) == 24);

}  // namespace daxstore::vhost
