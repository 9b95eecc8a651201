// A small vhost-user front end for tests and benchmarks: guest memory in a
// memfd, split virtqueues laid out in it, messages (with SCM_RIGHTS) over
// the unix socket, virtio-blk requests submitted in batches and completed
// through the call eventfd. Plays the part QEMU and the guest driver play.
#pragma once

#include <linux/virtio_blk.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "daxstore/status.h"
#include "vhost/protocol.h"
#include "vhost/virtqueue.h"

namespace daxstore::testing {

class VhostFrontend {
 public:
  struct Options {
    uint32_t queues = 1;
    uint16_t queue_size = 128;
    size_t mem_size = 16 << 20;  // guest RAM
    uint64_t mmap_offset = 0;    // where guest RAM starts in the memfd
    // ANDed with what the backend offers: what this front end implements.
    uint64_t features = kKnownFeatures;
    int timeout_ms = 5000;
    // Negotiate VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD if offered: get the
    // region once and hand it back on every Setup, as QEMU does.
    bool inflight = false;
    // Seal guest memory's size (F_SEAL_SHRINK | F_SEAL_GROW), as QEMU's
    // memory-backend-memfd does by default.
    bool seal_memory = false;
    // Negotiate VHOST_USER_PROTOCOL_F_LOG_SHMFD if offered.
    bool log = false;
  };
  static constexpr uint64_t kKnownFeatures =
      (1ull << 32) | (1ull << 30) | (1ull << 28) |
      (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_RO) |
      (1ull << VIRTIO_BLK_F_BLK_SIZE) | (1ull << VIRTIO_BLK_F_FLUSH) |
      (1ull << VIRTIO_BLK_F_MQ) | (1ull << VIRTIO_BLK_F_DISCARD) |
      (1ull << VIRTIO_BLK_F_WRITE_ZEROES);
  static constexpr uint64_t kGpaBase = 0x100000;
  static constexpr uint64_t kUserBase = 0x7f0000000000;
  static constexpr uint32_t kMaxBatch = 32;
  static constexpr uint32_t kMaxData = 64 * 1024;

  // Connects (no messages yet).
  [[nodiscard]] static Result<std::unique_ptr<VhostFrontend>> Connect(
      const std::string& socket_path, const Options& options);
  ~VhostFrontend();

  // The whole handshake: features, config, memory table, inflight region
  // (if asked for), every ring (based at the used ring's idx, as QEMU does
  // after losing a backend).
  [[nodiscard]] Status Setup();
  // Drops the connection and connects again to `socket_path` (a restarted
  // backend), keeping guest memory, rings, requests and the inflight
  // region; then Setup().
  [[nodiscard]] Status Reconnect(const std::string& socket_path);
  // From now on SET_VRING_BASE says the avail idx: a front end that takes
  // every published request as taken (QEMU says the used idx).
  void set_base_at_avail(bool on) { base_at_avail_ = on; }
  // How long a reply is waited for from now on (Options::timeout_ms).
  void set_timeout_ms(int ms) { o_.timeout_ms = ms; }

  // Raw messages.
  [[nodiscard]] Status Send(uint32_t request, const void* payload, size_t n,
                            std::span<const int> fds = {},
                            uint32_t flags = vhost::kVersion);
  [[nodiscard]] Status SendBytes(const void* p, size_t n);
  [[nodiscard]] Result<std::vector<uint8_t>> Receive(uint32_t request);
  // Receive, also taking a descriptor sent with the reply (-1 if none).
  [[nodiscard]] Result<std::vector<uint8_t>> Receive(uint32_t request, int* fd);
  [[nodiscard]] Result<uint64_t> GetU64(uint32_t request);
  // True once the backend has closed the connection (waits up to timeout).
  bool Closed(int timeout_ms);

  // Guest memory.
  uint8_t* Host(uint64_t gpa) { return mem_ + (gpa - kGpaBase); }
  int mem_fd() const { return mem_fd_; }
  // A free scratch area of kMaxData bytes for raw chains on queue q.
  uint64_t ScratchGpa(uint32_t q) const;
  uint64_t desc_gpa(uint32_t q) const { return QueueBase(q); }

  struct Req {
    uint32_t type = VIRTIO_BLK_T_IN;
    uint64_t sector = 0;
    std::span<const uint8_t> out;  // driver data after the header
    std::span<uint8_t> in;         // device data before the status
    uint8_t status = 0xff;         // filled in on completion
    uint32_t used_len = 0;
  };
  // Submits the requests (at most kMaxBatch) on queue q together, kicks
  // once, waits for all of them; copies results back into each Req.
  [[nodiscard]] Status Run(uint32_t q, std::span<Req> reqs);
  // Run in two halves: publish and kick; then wait until every request
  // submitted on q is returned, check each came back once, copy results.
  [[nodiscard]] Status Submit(uint32_t q, std::span<Req> reqs);
  // Submit without the kick (Kick separately).
  [[nodiscard]] Status Publish(uint32_t q, std::span<Req> reqs);
  // Where request i of a batch on queue q keeps its data buffer.
  uint64_t DataGpa(uint32_t q, size_t i) const;
  [[nodiscard]] Status Complete(uint32_t q, std::span<Req> reqs);
  [[nodiscard]] Result<uint8_t> Request(uint32_t q, uint32_t type,
                                        uint64_t sector,
                                        std::span<const uint8_t> out,
                                        std::span<uint8_t> in);
  // Places `descs` at table indices 0..n-1 of queue q, publishes `head`,
  // kicks and waits for one used entry; returns its length.
  [[nodiscard]] Status Kick(uint32_t q);
  // The used index of queue q as the backend last published it.
  uint16_t UsedIndex(uint32_t q);
  [[nodiscard]] Result<uint32_t> RunChain(uint32_t q,
                                          std::span<const vring_desc> descs,
                                          uint16_t head = 0);

  // Starts dirty logging as QEMU does when a migration begins:
  // SET_LOG_BASE (log_fd, size, offset; waits for its reply), SET_FEATURES
  // with VHOST_F_LOG_ALL, SET_VRING_ADDR with VHOST_VRING_F_LOG at each
  // used ring's guest-physical address.
  [[nodiscard]] Status StartLog(int log_fd, uint64_t size, uint64_t offset);
  // The guest-physical address of queue q's used ring.
  uint64_t UsedGpa(uint32_t q) const { return QueueBase(q) + UsedOffset(); }
  uint16_t queue_size() const { return o_.queue_size; }

  const virtio_blk_config& config() const { return config_; }
  // The inflight region as the front end maps it (nullptr without one).
  const uint8_t* inflight() const { return inflight_map_; }
  const vhost::InflightInfo& inflight_info() const { return inflight_info_; }
  int inflight_fd() const { return inflight_fd_; }
  uint64_t features() const { return features_; }

 private:
  VhostFrontend() = default;
  uint64_t QueueBase(uint32_t q) const;
  uint64_t UsedOffset() const;  // of the used ring from QueueBase
  Status WaitUsed(uint32_t q, uint16_t target);

  Options o_;
  int sock_ = -1;
  int mem_fd_ = -1;
  uint8_t* map_ = nullptr;  // the whole memfd
  uint8_t* mem_ = nullptr;  // guest RAM (map_ + mmap_offset)
  struct Ring {
    int kick = -1, call = -1;
    uint16_t avail_idx = 0, used_seen = 0;
  };
  std::vector<Ring> rings_;
  bool base_at_avail_ = false;
  int inflight_fd_ = -1;
  uint8_t* inflight_map_ = nullptr;
  vhost::InflightInfo inflight_info_{};
  virtio_blk_config config_{};
  uint64_t features_ = 0;
};

}  // namespace daxstore::testing
