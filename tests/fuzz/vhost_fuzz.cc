#include "fuzz/vhost_fuzz.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daxstore/image.h"
#include "daxstore/platform.h"
#include "vhost/blk_request.h"
#include "vhost/inflight.h"
#include "vhost/session.h"
#include "vhost/virtqueue.h"

namespace daxstore::fuzz {
namespace {
using namespace daxstore::vhost;

constexpr uint64_t kGpa = 0x10000;
constexpr size_t kMem = 64 * 1024;

Image* SharedImage() {
  static Image* image = [] {
    char dir[] = "/tmp/daxstore-vhost-fuzz-XXXXXX";
    if (mkdtemp(dir) == nullptr) std::abort();
    std::string path = std::string(dir) + "/img";
    ImageOptions o;
    o.virtual_size = 1 << 20;
    o.lanes = 4;
    auto r = Image::Create(path, o);
    if (!r.ok()) std::abort();
    unlink(path.c_str());  // stays mapped
    rmdir(dir);
    return new Image(std::move(r).value());
  }();
  return image;
}

// A sealed shared-memory file that SET_INFLIGHT_FD messages carry.
int InflightFile() {
  static int fd = [] {
    auto r = DefaultPlatform()->MakeSharedMemory("fuzz-inflight", 1 << 16);
    if (!r.ok()) std::abort();
    return *r;
  }();
  return fd;
}

// A shared-memory file that SET_LOG_BASE and SET_LOG_FD messages carry.
int LogFile() {
  static int fd = [] {
    auto r = DefaultPlatform()->MakeSharedMemory("fuzz-log", 1 << 16);
    if (!r.ok()) std::abort();
    return *r;
  }();
  return fd;
}

void Messages(const BlkDevice& dev, const uint8_t* p, size_t n) {
  Session s(dev, 2);
  const int inflight_fd = InflightFile();
  const int log_fd = LogFile();
  std::vector<uint8_t> reply;
  while (n >= sizeof(MessageHeader)) {
    MessageHeader h;
    std::memcpy(&h, p, sizeof(h));
    p += sizeof(h);
    n -= sizeof(h);
    size_t len = std::min<size_t>(h.size, n);
    bool has_reply;
    std::span<const int> fds;
    if (h.request == kSetInflightFd) fds = {&inflight_fd, 1};
    if (h.request == kSetLogBase || h.request == kSetLogFd) fds = {&log_fd, 1};
    Status st = s.Handle(h, {p, len}, fds, &reply, &has_reply);
    p += len;
    n -= len;
    if (!st.ok()) return;
  }
}

void Chains(const BlkDevice& dev, const uint8_t* p, size_t n) {
  if (n < 4) return;
  alignas(4096) static uint8_t guest[kMem];
  std::memset(guest, 0, kMem);
  uint32_t num = 1u << (p[0] % 9);  // 1 to 256
  bool indirect = p[1] & 1;
  bool tracked = p[1] & 2;  // an inflight slot at 48 KiB of guest memory
  bool logged = p[1] & 4;   // a dirty log of p[2] bytes (maybe too small)
  const uint64_t log_bytes = p[2];
  p += 4;
  n -= 4;
  std::memcpy(guest, p, std::min(n, kMem));
  MemoryRegion r{kGpa, kMem, kGpa, 0};
  void* base = guest;
  auto mem = MemoryTable::Borrow({&r, 1}, {&base, 1});
  if (!mem.ok()) std::abort();
  // desc at 0, avail after it, used at 32 KiB (user address == gpa here).
  VringAddrs a{kGpa, kGpa + 16ull * num, kGpa + 32 * 1024};
  auto vq = Virtqueue::Attach(*mem, a, num, 0, indirect);
  if (!vq.ok()) return;
  static uint8_t log_bits[256];
  DirtyLog log = DirtyLog::Borrow(log_bits, log_bytes);
  if (logged) vq->SetLog(&log, a.used);
  auto mark = [&](const Chain& ch, uint32_t len) {
    if (logged) (void)LogBlkWrites(log, ch, len);
  };
  Chain c;
  Status st;
  std::optional<InflightQueue> track;
  if (tracked) {
    // As a restarted backend: recover the slot, resubmit what it lists.
    track.emplace(reinterpret_cast<InflightQueueHeader*>(guest + 48 * 1024),
                  256);
    const uint16_t used = vq->RingUsedIdx();
    auto r = track->Start(num, used, 0);
    if (!r.ok()) return;
    vq->Resume(r->next_avail, used);
    for (uint16_t head : r->heads) {
      st = vq->ChainAt(*mem, head, &c);
      uint32_t len = st.ok() ? HandleBlkRequest(dev, c) : 0;
      if (st.ok()) mark(c, len);
      track->Returning(head);
      vq->Push(head, len);
      track->Returned(head, vq->used_idx());
    }
  }
  for (int i = 0; i < 64 && vq->Pop(*mem, &c, &st); ++i) {
    if (track) track->Take(c.head);
    uint32_t len = st.ok() ? HandleBlkRequest(dev, c) : 0;
    if (st.ok()) mark(c, len);
    if (track) track->Returning(c.head);
    vq->Push(c.head, len);
    if (track) track->Returned(c.head, vq->used_idx());
  }
}

}  // namespace

int VhostMessagesAndChains(const uint8_t* data, size_t size) {
  BlkDevice dev;
  dev.image = SharedImage();
  dev.serial = "fuzz";
  if (size < 2) return 0;
  size_t n = data[0] | (size_t{data[1]} << 8);
  n = std::min(n, size - 2);
  Messages(dev, data + 2, n);
  Chains(dev, data + 2 + n, size - 2 - n);
  return 0;
}

}  // namespace daxstore::fuzz
