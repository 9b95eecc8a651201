// Backend restarts with inflight tracking (VHOST_USER_PROTOCOL_F_INFLIGHT_
// SHMFD): a backend stopped part-way through a batch, a new backend on the
// same socket, the front end reconnecting with its inflight region; every
// request completes exactly once with its data in the image. Also the
// region's messages from a hostile front end.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "unit/vhost_fixture.h"
#include "vhost/inflight.h"

namespace daxstore::testing {
namespace {

using namespace daxstore::vhost;
using Bytes = std::vector<uint8_t>;
using Point = VhostStall::Point;

constexpr uint32_t kReqs = 8;
constexpr uint32_t kStallAt = 3;  // requests 1 and 2 complete first

Bytes Pattern(uint32_t v) { return Bytes(4096, static_cast<uint8_t>(v)); }

// Waits until queue q's used idx is `n` (the backend stalls after that).
bool WaitUsedIdx(VhostFrontend& f, uint32_t q, uint16_t n) {
  for (int i = 0; i < 500; ++i) {
    if (f.UsedIndex(q) == n) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

VhostBlkOptions Queues(uint32_t n) {
  VhostBlkOptions o;
  o.queues = n;
  return o;
}

const InflightDesc& DescOf(const VhostFrontend& f, uint32_t q, uint16_t head) {
  auto* slot = reinterpret_cast<const InflightQueueHeader*>(
      f.inflight() + q * InflightQueueBytes(f.inflight_info().queue_size));
  return reinterpret_cast<const InflightDesc*>(slot + 1)[head];
}

class VhostInflightTest : public VhostTest {
 protected:
  // kReqs writes for queue q, request i's pattern (distinct per queue and
  // generation) to its own 4 KiB.
  std::vector<VhostFrontend::Req> Writes(uint32_t q, uint32_t gen = 0) {
    patterns_[q].clear();
    for (uint32_t i = 0; i < kReqs; ++i)
      patterns_[q].push_back(Pattern(1 + i + 16 * q + 40 * gen));
    std::vector<VhostFrontend::Req> reqs(kReqs);
    for (uint32_t i = 0; i < kReqs; ++i)
      reqs[i] = {VIRTIO_BLK_T_OUT, Sector(q, i), patterns_[q][i], {}};
    return reqs;
  }
  static uint64_t Sector(uint32_t q, uint32_t i) { return 8 * (i + 16 * q); }

  void ExpectImageHolds(uint32_t q) {
    for (uint32_t i = 0; i < kReqs; ++i) {
      Bytes got(4096);
      ASSERT_TRUE(
          image_->Read(Sector(q, i) * 512, got.data(), got.size()).ok());
      EXPECT_EQ(got, patterns_[q][i]) << "queue " << q << " request " << i;
    }
  }
  bool ImageHas(uint32_t q, uint32_t i) {
    Bytes got(4096);
    EXPECT_TRUE(image_->Read(Sector(q, i) * 512, got.data(), got.size()).ok());
    return got == patterns_[q][i];
  }
  // Closes and reopens the image, as a new backend process would.
  void ReopenImage() {
    image_.reset();
    MapOptions mo;
    mo.emulate = PersistenceDomain::kMemoryController;
    auto img = Image::Open(dir_ / "disk.img", mo);
    ASSERT_TRUE(img.ok()) << img.status().ToString();
    image_ = std::make_unique<Image>(std::move(img).value());
  }

  std::vector<Bytes> patterns_[4];
};

class VhostRestartTest : public VhostInflightTest,
                         public ::testing::WithParamInterface<Point> {};

TEST_P(VhostRestartTest, InFlightRequestsCompleteOnceAfterRestart) {
  const Point point = GetParam();
  VhostBlkOptions o;
  o.stall = {kStallAt, point};
  Serve(o);
  VhostFrontend::Options fo;
  fo.inflight = true;
  auto f = Attach(fo);
  ASSERT_TRUE(f);
  ASSERT_NE(f->inflight(), nullptr);
  auto reqs = Writes(0);
  ASSERT_TRUE(f->Submit(0, reqs).ok());
  // The third request's head is descriptor 6 (three per request).
  const uint16_t third = 3 * (kStallAt - 1);
  const uint16_t returned =
      point == Point::kBeforeClear ? kStallAt : kStallAt - 1;
  ASSERT_TRUE(WaitUsedIdx(*f, 0, returned)) << f->UsedIndex(0);
  // The stalled request is marked in flight in the region the front end
  // holds; the ones before it were cleared, the ones after never taken.
  EXPECT_EQ(DescOf(*f, 0, third).inflight, 1);
  EXPECT_EQ(DescOf(*f, 0, 0).inflight, 0);
  EXPECT_EQ(DescOf(*f, 0, third + 3).inflight, 0);
  EXPECT_EQ(ImageHas(0, kStallAt - 1), point != Point::kBeforeExecute);
  EXPECT_FALSE(ImageHas(0, kStallAt));

  StopServer();
  ReopenImage();
  StartServer();
  ASSERT_TRUE(f->Reconnect(dir_ / "vhost.sock").ok());
  Status st = f->Complete(0, reqs);
  ASSERT_TRUE(st.ok()) << st.ToString();
  for (const auto& r : reqs) EXPECT_EQ(r.status, VIRTIO_BLK_S_OK);
  EXPECT_EQ(f->UsedIndex(0), kReqs);  // each returned once
  ExpectImageHolds(0);
  // Nothing is left marked, and the queue goes on.
  for (uint16_t h = 0; h < 3 * kReqs; ++h)
    EXPECT_EQ(DescOf(*f, 0, h).inflight, 0);
  Bytes back(4096);
  auto rd = f->Request(0, VIRTIO_BLK_T_IN, Sector(0, kStallAt - 1), {}, back);
  ASSERT_TRUE(rd.ok());
  EXPECT_EQ(back, patterns_[0][kStallAt - 1]);
}

INSTANTIATE_TEST_SUITE_P(Points, VhostRestartTest,
                         ::testing::Values(Point::kBeforeExecute,
                                           Point::kBeforeUsed,
                                           Point::kBeforeClear),
                         [](const auto& info) {
                           switch (info.param) {
                             case Point::kBeforeExecute:
                               return "BeforeExecute";
                             case Point::kBeforeUsed:
                               return "BeforeUsed";
                             default:
                               return "BeforeClear";
                           }
                         });

// The restarted backend takes its position from the region, not from the
// front end's SET_VRING_BASE. A front end that says every published
// request was taken (base = avail idx) still gets the stalled request and
// the ones never taken; without the region (the control) they are lost.
class VhostStaleBaseTest : public VhostInflightTest,
                           public ::testing::WithParamInterface<bool> {};

TEST_P(VhostStaleBaseTest, RegionOverridesAStaleVringBase) {
  const bool inflight = GetParam();
  VhostBlkOptions o;
  o.stall = {kStallAt, Point::kBeforeExecute};
  Serve(o);
  VhostFrontend::Options fo;
  fo.inflight = inflight;
  fo.timeout_ms = inflight ? 5000 : 300;
  auto f = Attach(fo);
  ASSERT_TRUE(f);
  auto reqs = Writes(0);
  ASSERT_TRUE(f->Submit(0, reqs).ok());
  ASSERT_TRUE(WaitUsedIdx(*f, 0, kStallAt - 1));
  StopServer();
  StartServer();
  f->set_base_at_avail(true);
  ASSERT_TRUE(f->Reconnect(dir_ / "vhost.sock").ok());
  Status st = f->Complete(0, reqs);
  if (inflight) {
    ASSERT_TRUE(st.ok()) << st.ToString();
    ExpectImageHolds(0);
  } else {
    EXPECT_FALSE(st.ok());
    EXPECT_EQ(f->UsedIndex(0), kStallAt - 1);
    EXPECT_FALSE(ImageHas(0, kStallAt - 1));
  }
}

INSTANTIATE_TEST_SUITE_P(WithAndWithoutRegion, VhostStaleBaseTest,
                         ::testing::Bool(), [](const auto& info) {
                           return info.param ? "Region" : "NoRegion";
                         });

// Two queues, each stalled mid-batch on its own worker thread; the
// restarted backend resubmits both.
TEST_F(VhostInflightTest, TwoQueuesRestartConcurrent) {
  VhostBlkOptions o;
  o.queues = 2;
  // Queue 0's batch completes; queue 1 stalls at its third request, and
  // queue 0 then at the first of its second batch.
  o.stall = {kStallAt + kReqs, Point::kBeforeUsed};
  Serve(o);
  VhostFrontend::Options fo;
  fo.inflight = true;
  fo.queues = 2;
  auto f = Attach(fo);
  ASSERT_TRUE(f);
  auto r0 = Writes(0), r1 = Writes(1);
  ASSERT_TRUE(f->Run(0, r0).ok());  // the first kReqs complete
  ASSERT_TRUE(f->Submit(1, r1).ok());
  ASSERT_TRUE(WaitUsedIdx(*f, 1, kStallAt - 1));
  auto again = Writes(0, 1);
  ASSERT_TRUE(f->Submit(0, again).ok());
  for (int i = 0; i < 500 && DescOf(*f, 0, 0).inflight == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_EQ(DescOf(*f, 0, 0).inflight, 1);
  EXPECT_EQ(DescOf(*f, 1, 3 * (kStallAt - 1)).inflight, 1);
  StopServer();
  StartServer(Queues(2));
  ASSERT_TRUE(f->Reconnect(dir_ / "vhost.sock").ok());
  ASSERT_TRUE(f->Complete(1, r1).ok());
  ASSERT_TRUE(f->Complete(0, again).ok());
  EXPECT_EQ(f->UsedIndex(0), 2 * kReqs);
  EXPECT_EQ(f->UsedIndex(1), kReqs);
  ExpectImageHolds(0);
  ExpectImageHolds(1);
}

// A front end that does not negotiate the feature: no region is made and
// reconnect works as before.
TEST_F(VhostInflightTest, WithoutTheFeatureNoRegion) {
  Serve();
  auto f = Attach();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->inflight(), nullptr);
  auto reqs = Writes(0);
  ASSERT_TRUE(f->Run(0, reqs).ok());
  ExpectImageHolds(0);
}

TEST_F(VhostInflightTest, RegionIsSealedAndSizedForTheQueues) {
  Serve(Queues(2));
  VhostFrontend::Options fo;
  fo.inflight = true;
  fo.queues = 2;
  fo.queue_size = 256;
  auto f = Attach(fo);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->inflight_info().num_queues, 2);
  EXPECT_EQ(f->inflight_info().queue_size, 256);
  EXPECT_EQ(f->inflight_info().mmap_size, 2 * InflightQueueBytes(256));
  EXPECT_EQ(f->inflight_info().mmap_offset, 0u);
  int seals = fcntl(f->inflight_fd(), F_GET_SEALS);
  EXPECT_EQ(seals & (F_SEAL_SHRINK | F_SEAL_GROW), F_SEAL_SHRINK | F_SEAL_GROW);
  for (uint32_t q = 0; q < 2; ++q) {
    // A request through the ring: its worker has started by then.
    auto st = f->Request(q, VIRTIO_BLK_T_FLUSH, 0, {}, {});
    ASSERT_TRUE(st.ok() && *st == VIRTIO_BLK_S_OK);
    auto* h = reinterpret_cast<const InflightQueueHeader*>(
        f->inflight() + q * InflightQueueBytes(256));
    EXPECT_EQ(h->version, kInflightVersion) << "started rings use their slot";
    EXPECT_EQ(h->desc_num, 256);
  }
}

// --- hostile front ends -------------------------------------------------

class VhostInflightHostileTest : public VhostInflightTest {
 protected:
  // A connection with INFLIGHT_SHMFD negotiated and nothing else set up.
  std::unique_ptr<VhostFrontend> Negotiated() {
    auto f = Connect();
    if (!f) return nullptr;
    uint64_t p = (1ull << kProtoInflightShmfd) | (1ull << kProtoMq);
    EXPECT_TRUE(f->Send(kSetProtocolFeatures, &p, 8).ok());
    return f;
  }
  // A new inflight-tracking front end is served as usual.
  void ExpectServed() {
    VhostFrontend::Options fo;
    fo.inflight = true;
    auto g = Attach(fo);
    ASSERT_TRUE(g);
    auto reqs = Writes(0);
    ASSERT_TRUE(g->Run(0, reqs).ok());
  }
  void ExpectDroppedThenServed(VhostFrontend& f) {
    EXPECT_TRUE(f.Closed(5000));
    ExpectServed();
  }
  void ExpectGetRejected(InflightInfo info) {
    auto f = Negotiated();
    ASSERT_TRUE(f);
    ASSERT_TRUE(f->Send(kGetInflightFd, &info, sizeof(info)).ok());
    ExpectDroppedThenServed(*f);
  }
  // A region from GET_INFLIGHT_FD for 1 x 128, then SET with `info` and fd.
  void ExpectSetRejected(InflightInfo info, int fd) {
    auto f = Negotiated();
    ASSERT_TRUE(f);
    ASSERT_TRUE(f->Send(kSetInflightFd, &info, sizeof(info), {&fd, 1}).ok());
    ExpectDroppedThenServed(*f);
  }
  // A good region's descriptor and description.
  int GoodRegion(InflightInfo* info) {
    auto f = Negotiated();
    InflightInfo ask{0, 0, 1, 128, 0};
    EXPECT_TRUE(f->Send(kGetInflightFd, &ask, sizeof(ask)).ok());
    int fd = -1;
    auto r = f->Receive(kGetInflightFd, &fd);
    EXPECT_TRUE(r.ok() && r->size() == sizeof(InflightInfo));
    if (r.ok() && r->size() == sizeof(InflightInfo))
      std::memcpy(info, r->data(), sizeof(*info));
    return fd;
  }
};

TEST_F(VhostInflightHostileTest, GetBeforeNegotiating) {
  Serve();
  auto f = Connect();
  ASSERT_TRUE(f);
  InflightInfo ask{0, 0, 1, 128, 0};
  ASSERT_TRUE(f->Send(kGetInflightFd, &ask, sizeof(ask)).ok());
  ExpectDroppedThenServed(*f);
}

TEST_F(VhostInflightHostileTest, GetWithBadCounts) {
  Serve();
  ExpectGetRejected({0, 0, 0, 128, 0});    // no queues
  ExpectGetRejected({0, 0, 2, 128, 0});    // more than the device has
  ExpectGetRejected({0, 0, 1, 0, 0});      // empty queues
  ExpectGetRejected({0, 0, 1, 40000, 0});  // larger than virtio allows
}

TEST_F(VhostInflightHostileTest, GetWithFdsOrShortPayload) {
  Serve();
  auto f = Negotiated();
  ASSERT_TRUE(f);
  uint8_t shortp[16] = {};
  ASSERT_TRUE(f->Send(kGetInflightFd, shortp, sizeof(shortp)).ok());
  ExpectDroppedThenServed(*f);
}

TEST_F(VhostInflightHostileTest, SetWithABadRegion) {
  Serve();
  InflightInfo good{};
  int fd = GoodRegion(&good);
  ASSERT_GE(fd, 0);
  InflightInfo bad = good;
  bad.mmap_size += 64;  // not the layout's size
  ExpectSetRejected(bad, fd);
  bad = good;
  bad.mmap_offset = 100;  // not page-aligned
  ExpectSetRejected(bad, fd);
  bad = good;
  bad.mmap_offset = 4096;  // past the end of the file
  ExpectSetRejected(bad, fd);
  bad = good;
  bad.mmap_offset = ~uint64_t{4095};  // wraps
  ExpectSetRejected(bad, fd);
  bad = good;
  bad.queue_size = 256;  // mmap_size then does not fit
  ExpectSetRejected(bad, fd);
  // A file whose size is not sealed could shrink under the mapping.
  int plain = memfd_create("plain", MFD_CLOEXEC);
  ASSERT_EQ(ftruncate(plain, static_cast<off_t>(good.mmap_size)), 0);
  ExpectSetRejected(good, plain);
  close(plain);
  // No descriptor at all.
  auto f = Negotiated();
  ASSERT_TRUE(f->Send(kSetInflightFd, &good, sizeof(good)).ok());
  ExpectDroppedThenServed(*f);
  close(fd);
}

// Slot contents no backend of ours wrote: the ring is not started (one line
// on stderr), nothing crashes, the connection stays up.
TEST_F(VhostInflightHostileTest, CorruptSlotStopsOnlyThatQueue) {
  Serve();
  struct Case {
    uint16_t version, desc_num, last_batch_head, used_idx;
  };
  // Wrong version; wrong size; a last batch naming a head past the ring
  // (used_idx one behind the used ring); a batch longer than the ring.
  for (Case c : {Case{7, 128, 0, 0}, Case{1, 64, 0, 0},
                 Case{1, 128, 500, 65535}, Case{1, 128, 0, 65000}}) {
    VhostFrontend::Options fo;
    fo.inflight = true;
    auto f = Attach(fo);
    ASSERT_TRUE(f);
    // Once a request went through, the worker is done with the slot.
    ASSERT_TRUE(f->Request(0, VIRTIO_BLK_T_FLUSH, 0, {}, {}).ok());
    auto* slot = reinterpret_cast<InflightQueueHeader*>(
        const_cast<uint8_t*>(f->inflight()));
    slot->version = c.version;
    slot->desc_num = c.desc_num;
    slot->last_batch_head = c.last_batch_head;
    slot->used_idx = c.used_idx;
    ASSERT_TRUE(f->Reconnect(dir_ / "vhost.sock").ok());
    Bytes buf(4096, 1);
    // Only the request that must go unanswered waits briefly.
    f->set_timeout_ms(300);
    EXPECT_FALSE(f->Request(0, VIRTIO_BLK_T_OUT, 0, buf, {}).ok())
        << "queue ran on a slot with version " << c.version;
    EXPECT_FALSE(f->Closed(0));
  }
  ExpectServed();
}

}  // namespace
}  // namespace daxstore::testing
