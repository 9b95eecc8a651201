// A hostile guest or front end: bad descriptors fail the request (the
// backend keeps serving that queue); bad messages drop the connection and
// the next front end is served.
#include <linux/vhost_types.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "unit/vhost_fixture.h"

namespace daxstore::testing {
namespace {

using namespace daxstore::vhost;
using Bytes = std::vector<uint8_t>;
constexpr uint64_t kG = VhostFrontend::kGpaBase;
constexpr uint64_t kMem = 16 << 20;

class VhostHostileTest : public VhostTest {
 protected:
  // Header + `data` + status in the scratch area of queue 0.
  struct Layout {
    uint64_t hdr, status, data;
  };
  Layout Prepare(VhostFrontend& f, uint32_t type) {
    Layout l{f.ScratchGpa(0), f.ScratchGpa(0) + 32, f.ScratchGpa(0) + 4096};
    virtio_blk_outhdr h{type, 0, 0};
    std::memcpy(f.Host(l.hdr), &h, sizeof(h));
    *f.Host(l.status) = 0xee;
    return l;
  }
  // The chain came back with nothing written, and the queue still works.
  void ExpectRejected(VhostFrontend& f, std::vector<vring_desc> descs,
                      const Layout& l) {
    auto len = f.RunChain(0, descs);
    ASSERT_TRUE(len.ok()) << len.status().ToString();
    EXPECT_EQ(*len, 0u);
    EXPECT_EQ(*f.Host(l.status), 0xee);
    ExpectStillServing(f);
  }
  // The chain failed with VIRTIO_BLK_S_IOERR in its status byte.
  void ExpectIoError(VhostFrontend& f, std::vector<vring_desc> descs,
                     const Layout& l) {
    auto len = f.RunChain(0, descs);
    ASSERT_TRUE(len.ok()) << len.status().ToString();
    EXPECT_EQ(*len, 1u);
    EXPECT_EQ(*f.Host(l.status), VIRTIO_BLK_S_IOERR);
    *f.Host(l.status) = 0xee;
    ExpectStillServing(f);
  }
  void ExpectStillServing(VhostFrontend& f) {
    Bytes buf(4096, 1);
    auto st = f.Request(0, VIRTIO_BLK_T_OUT, 8, buf, {});
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    EXPECT_EQ(*st, VIRTIO_BLK_S_OK);
  }
  // The backend hung up on `f`, and a new front end is served.
  void ExpectDroppedThenServed(VhostFrontend& f) {
    EXPECT_TRUE(f.Closed(5000));
    auto g = Attach();
    ASSERT_TRUE(g);
    ExpectStillServing(*g);
  }
};

constexpr uint16_t N = VRING_DESC_F_NEXT, W = VRING_DESC_F_WRITE;

TEST_F(VhostHostileTest, BufferOutsideGuestMemory) {
  Serve();
  auto f = Attach();
  ASSERT_TRUE(f);
  auto l = Prepare(*f, VIRTIO_BLK_T_IN);
  ExpectIoError(*f,
                {{l.hdr, 16, N, 1},
                 {kG + kMem - 512, 4096, N | W, 2},  // runs past the end
                 {l.status, 1, W, 0}},
                l);
  ExpectIoError(*f,
                {{l.hdr, 16, N, 1},
                 {0x1000, 512, N | W, 2},  // below RAM
                 {l.status, 1, W, 0}},
                l);
}

TEST_F(VhostHostileTest, LengthThatWrapsAround) {
  Serve();
  auto f = Attach();
  ASSERT_TRUE(f);
  auto l = Prepare(*f, VIRTIO_BLK_T_IN);
  ExpectIoError(*f,
                {{l.hdr, 16, N, 1},
                 {~0ull - 100, 0xffffffff, N | W, 2},
                 {l.status, 1, W, 0}},
                l);
}

TEST_F(VhostHostileTest, LoopInChain) {
  Serve();
  auto f = Attach();
  ASSERT_TRUE(f);
  auto l = Prepare(*f, VIRTIO_BLK_T_IN);
  ExpectRejected(*f, {{l.hdr, 16, N, 1}, {l.data, 512, N | W, 0}}, l);
  // A status outside guest memory is not written either.
  ExpectRejected(
      *f, {{l.hdr, 16, N, 1}, {0x1000, 512, N | W, 2}, {kG + kMem, 1, W, 0}},
      l);
  ExpectRejected(*f, {{l.hdr, 16, N, 1}, {l.data, 512, N | W, 500}}, l);
}

TEST_F(VhostHostileTest, BadIndirectTables) {
  Serve();
  auto f = Attach();
  ASSERT_TRUE(f);
  auto l = Prepare(*f, VIRTIO_BLK_T_IN);
  // Outside memory, a length not a multiple of 16, and a nested table.
  ExpectRejected(*f, {{kG + kMem - 16, 64, VRING_DESC_F_INDIRECT, 0}}, l);
  ExpectRejected(*f, {{l.data, 40, VRING_DESC_F_INDIRECT, 0}}, l);
  vring_desc nested[2] = {{l.data, 32, VRING_DESC_F_INDIRECT, 0}, {}};
  std::memcpy(f->Host(l.data + 8192), nested, sizeof(nested));
  ExpectRejected(*f, {{l.data + 8192, 32, VRING_DESC_F_INDIRECT, 0}}, l);
  // A valid indirect table works.
  vring_desc good[3] = {
      {l.hdr, 16, N, 1}, {l.data, 512, N | W, 2}, {l.status, 1, W, 0}};
  std::memcpy(f->Host(l.data + 8192), good, sizeof(good));
  auto len = f->RunChain(0, {{{l.data + 8192, 48, VRING_DESC_F_INDIRECT, 0}}});
  ASSERT_TRUE(len.ok());
  EXPECT_EQ(*len, 513u);
  EXPECT_EQ(*f->Host(l.status), VIRTIO_BLK_S_OK);
}

TEST_F(VhostHostileTest, ShortHeaderAndMissingStatus) {
  Serve();
  auto f = Attach();
  ASSERT_TRUE(f);
  auto l = Prepare(*f, VIRTIO_BLK_T_IN);
  auto len = f->RunChain(0, {{{l.hdr, 8, N, 1}, {l.status, 1, W, 0}}});
  ASSERT_TRUE(len.ok());
  EXPECT_EQ(*len, 1u);
  EXPECT_EQ(*f->Host(l.status), VIRTIO_BLK_S_IOERR);
  len = f->RunChain(0, {{{l.hdr, 16, 0, 0}}});
  ASSERT_TRUE(len.ok());
  EXPECT_EQ(*len, 0u);
  ExpectStillServing(*f);
}

TEST_F(VhostHostileTest, WrongPayloadSizeDropsConnection) {
  Serve();
  auto f = Attach();
  ASSERT_TRUE(f);
  uint32_t four = 0;
  ASSERT_TRUE(f->Send(kSetFeatures, &four, sizeof(four)).ok());
  ExpectDroppedThenServed(*f);
}

TEST_F(VhostHostileTest, OversizedPayloadDropsConnection) {
  Serve();
  auto f = Connect();
  ASSERT_TRUE(f);
  Bytes big(kMaxPayload + 1);
  ASSERT_TRUE(f->Send(kSetMemTable, big.data(), big.size()).ok());
  ExpectDroppedThenServed(*f);
}

TEST_F(VhostHostileTest, TooManyFdsDropsConnection) {
  Serve();
  auto f = Connect();
  ASSERT_TRUE(f);
  std::vector<int> fds(kMaxFds + 1, f->mem_fd());
  uint64_t idx = 0;
  ASSERT_TRUE(f->Send(kSetVringCall, &idx, 8, fds).ok());
  ExpectDroppedThenServed(*f);
}

TEST_F(VhostHostileTest, FdsOnAMessageThatTakesNone) {
  Serve();
  auto f = Connect();
  ASSERT_TRUE(f);
  uint64_t feat = 0;
  int fd = f->mem_fd();
  ASSERT_TRUE(f->Send(kSetFeatures, &feat, 8, {&fd, 1}).ok());
  ExpectDroppedThenServed(*f);
}

struct Table {
  MemoryTableHeader h;
  MemoryRegion r[2];
};

TEST_F(VhostHostileTest, OverlappingRegionsDropConnection) {
  Serve();
  auto f = Connect();
  ASSERT_TRUE(f);
  Table t{{2, 0},
          {{kG, 1 << 20, 0x10000000, 0}, {kG + 4096, 1 << 20, 0x20000000, 0}}};
  int fds[2] = {f->mem_fd(), f->mem_fd()};
  ASSERT_TRUE(f->Send(kSetMemTable, &t, sizeof(t), fds).ok());
  ExpectDroppedThenServed(*f);
}

TEST_F(VhostHostileTest, WrappingRegionDropsConnection) {
  Serve();
  auto f = Connect();
  ASSERT_TRUE(f);
  struct {
    MemoryTableHeader h;
    MemoryRegion r;
  } t{{1, 0}, {~0ull - 4095, 1 << 20, 0x10000000, 0}};
  int fd = f->mem_fd();
  ASSERT_TRUE(f->Send(kSetMemTable, &t, sizeof(t), {&fd, 1}).ok());
  ExpectDroppedThenServed(*f);
}

TEST_F(VhostHostileTest, RegionLargerThanItsFileDropsConnection) {
  Serve();
  auto f = Connect();
  ASSERT_TRUE(f);
  struct {
    MemoryTableHeader h;
    MemoryRegion r;
  } t{{1, 0}, {kG, kMem * 4, 0x10000000, 0}};
  int fd = f->mem_fd();
  ASSERT_TRUE(f->Send(kSetMemTable, &t, sizeof(t), {&fd, 1}).ok());
  ExpectDroppedThenServed(*f);
}

TEST_F(VhostHostileTest, RegionCountAndFdCountDisagree) {
  Serve();
  auto f = Connect();
  ASSERT_TRUE(f);
  Table t{{2, 0}, {{kG, 1 << 20, 0x10000000, 0}, {kG * 64, 1 << 20, 0, 0}}};
  int fd = f->mem_fd();
  ASSERT_TRUE(f->Send(kSetMemTable, &t, sizeof(t), {&fd, 1}).ok());
  ExpectDroppedThenServed(*f);
}

TEST_F(VhostHostileTest, VringIndexOutOfRangeDropsConnection) {
  Serve();
  auto f = Connect();
  ASSERT_TRUE(f);
  vhost_vring_state s{7, 128};
  ASSERT_TRUE(f->Send(kSetVringNum, &s, sizeof(s)).ok());
  ExpectDroppedThenServed(*f);
}

TEST_F(VhostHostileTest, StalledMessageTimesOut) {
  Serve();
  auto f = Connect();
  ASSERT_TRUE(f);
  // A header announcing 8 bytes, then silence.
  MessageHeader h{kSetFeatures, kVersion, 8};
  ASSERT_TRUE(f->SendBytes(&h, sizeof(h)).ok());
  ExpectDroppedThenServed(*f);
}

TEST_F(VhostHostileTest, AvailIndexRunsAhead) {
  Serve();
  auto f = Attach();
  ASSERT_TRUE(f);
  // The driver claims 1000 new entries on a 128-entry ring: that queue stops,
  // the connection and the next front end are unaffected.
  auto* avail =
      reinterpret_cast<vring_avail*>(f->Host(f->desc_gpa(0)) + 16 * 128);
  __atomic_store_n(&avail->idx, 1000, __ATOMIC_RELEASE);
  ASSERT_TRUE(f->Kick(0).ok());
  usleep(200 * 1000);
  EXPECT_EQ(f->UsedIndex(0), 0);  // nothing was taken from the ring
  f.reset();
  auto g = Attach();
  ASSERT_TRUE(g);
  ExpectStillServing(*g);
}

}  // namespace
}  // namespace daxstore::testing
