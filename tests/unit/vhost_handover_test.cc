// Two front ends on one socket, as during a live migration on one host:
// the destination connects and sets up while the source runs; its rings
// run only once the source's rings are stopped (GET_VRING_BASE) or the
// source is gone; a third connection is refused.
#include <linux/vhost_types.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <thread>
#include <vector>

#include "unit/vhost_fixture.h"

namespace daxstore::testing {
namespace {

using namespace daxstore::vhost;
using Req = VhostFrontend::Req;

// What a stopping source sends for ring q: the ring's next avail index.
Result<uint32_t> GetVringBase(VhostFrontend& f, uint32_t q) {
  vhost_vring_state s{q, 0};
  DAXSTORE_RETURN_IF_ERROR(f.Send(kGetVringBase, &s, sizeof(s)));
  DAXSTORE_ASSIGN_OR_RETURN(auto r, f.Receive(kGetVringBase));
  if (r.size() != sizeof(s)) return Internal("GET_VRING_BASE: bad reply");
  std::memcpy(&s, r.data(), sizeof(s));
  return s.num;
}

std::vector<uint8_t> Block(uint8_t v) { return std::vector<uint8_t>(4096, v); }

// Reads the 4 KiB block at sector 8 through f.
std::vector<uint8_t> ReadBlock(VhostFrontend& f) {
  std::vector<uint8_t> got(4096);
  auto st = f.Request(0, VIRTIO_BLK_T_IN, 8, {}, got);
  EXPECT_TRUE(st.ok()) << st.status().ToString();
  if (st.ok()) {
    EXPECT_EQ(*st, VIRTIO_BLK_S_OK);
  }
  return got;
}

TEST_F(VhostTest, SecondFrontEndRunsOnceTheFirstStopsItsRings) {
  Serve();
  auto src = Attach();
  ASSERT_TRUE(src);
  auto a = Block(0xa1);
  auto st = src->Request(0, VIRTIO_BLK_T_OUT, 8, a, {});
  ASSERT_TRUE(st.ok()) << st.status().ToString();

  // The destination's whole setup is answered while the source holds the
  // volume; a write it submits waits.
  auto dst = Attach();
  ASSERT_TRUE(dst);
  auto b = Block(0xb2);
  Req w{.type = VIRTIO_BLK_T_OUT, .sector = 8, .out = b, .in = {}};
  ASSERT_TRUE(dst->Submit(0, {&w, 1}).ok());
  // The source goes on writing and reading: the destination's write never
  // lands in between.
  for (int i = 0; i < 20; ++i) {
    auto c = Block(static_cast<uint8_t>(0xc0 + i));
    ASSERT_TRUE(src->Request(0, VIRTIO_BLK_T_OUT, 8, c, {}).ok());
    EXPECT_EQ(ReadBlock(*src), c) << i;
    usleep(10000);
  }
  EXPECT_EQ(dst->UsedIndex(0), 0);

  // The source stops its ring as QEMU does when the VM stops: the
  // destination's write runs, after every write of the source.
  auto base = GetVringBase(*src, 0);
  ASSERT_TRUE(base.ok()) << base.status().ToString();
  EXPECT_EQ(*base, 41u);  // the source's 41 requests, all returned
  Status done = dst->Complete(0, {&w, 1});
  ASSERT_TRUE(done.ok()) << done.ToString();
  EXPECT_EQ(w.status, VIRTIO_BLK_S_OK);
  EXPECT_EQ(ReadBlock(*dst), b);

  // A source that starts its ring again (a `cont` after the handover)
  // waits for the destination, which keeps the volume until it is gone.
  ASSERT_TRUE(src->Setup().ok());
  auto d = Block(0xd4);
  Req late{.type = VIRTIO_BLK_T_OUT, .sector = 8, .out = d, .in = {}};
  ASSERT_TRUE(src->Submit(0, {&late, 1}).ok());
  usleep(100000);
  EXPECT_EQ(ReadBlock(*dst), b);
  dst.reset();
  done = src->Complete(0, {&late, 1});
  ASSERT_TRUE(done.ok()) << done.ToString();
  EXPECT_EQ(ReadBlock(*src), d);
}

TEST_F(VhostTest, SecondFrontEndRunsOnceTheFirstDisconnects) {
  Serve();
  auto src = Attach();
  ASSERT_TRUE(src);
  auto dst = Attach();
  ASSERT_TRUE(dst);
  auto b = Block(0xb2);
  Req w{.type = VIRTIO_BLK_T_OUT, .sector = 8, .out = b, .in = {}};
  ASSERT_TRUE(dst->Submit(0, {&w, 1}).ok());
  auto a = Block(0xa1);
  ASSERT_TRUE(src->Request(0, VIRTIO_BLK_T_OUT, 8, a, {}).ok());
  src.reset();  // the source QEMU quits (or dies)
  Status done = dst->Complete(0, {&w, 1});
  ASSERT_TRUE(done.ok()) << done.ToString();
  EXPECT_EQ(ReadBlock(*dst), b);
}

TEST_F(VhostTest, ThirdFrontEndIsRefused) {
  Serve();
  auto one = Attach();
  ASSERT_TRUE(one);
  auto two = Attach();
  ASSERT_TRUE(two);
  auto three = Connect();
  ASSERT_TRUE(three);
  EXPECT_TRUE(three->Closed(5000));
  // The first two are still served.
  auto a = Block(0xa1);
  auto st = one->Request(0, VIRTIO_BLK_T_OUT, 8, a, {});
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(ReadBlock(*one), a);
  one.reset();
  EXPECT_EQ(ReadBlock(*two), a);
}

// A destination that sends a hostile dirty log (too small for its guest
// memory) is dropped; the source runs on, and a new destination is
// admitted and takes over.
TEST_F(VhostTest, HostileSecondFrontEndLeavesTheFirstServing) {
  Serve();
  auto src = Attach();
  ASSERT_TRUE(src);
  auto bad = Attach({.log = true});
  ASSERT_TRUE(bad);
  int log = memfd_create("log", MFD_CLOEXEC);
  ASSERT_GE(log, 0);
  ASSERT_EQ(ftruncate(log, 4096), 0);
  LogInfo info{16, 0};  // 128 pages; guest memory needs 0x1100
  ASSERT_TRUE(bad->Send(kSetLogBase, &info, sizeof(info), {&log, 1}).ok());
  EXPECT_TRUE(bad->Closed(5000));
  close(log);
  auto a = Block(0xa1);
  auto st = src->Request(0, VIRTIO_BLK_T_OUT, 8, a, {});
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(ReadBlock(*src), a);
  auto dst = Attach();
  ASSERT_TRUE(dst);
  ASSERT_TRUE(GetVringBase(*src, 0).ok());
  EXPECT_EQ(ReadBlock(*dst), a);
}

// Served one connection at a time (ServeOne), no destination could take
// over: live migration is not offered, so QEMU blocks it.
TEST_F(VhostTest, NoMigrationOfferedWhereNoSecondFrontEndCanConnect) {
  Serve();
  StopServer();
  VhostBlkOptions o;
  o.socket_path = dir_ / "one.sock";
  auto s = VhostBlkServer::Create(image_.get(), o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  Status served;
  std::thread t([&] { served = (*s)->ServeOne(); });
  auto f = VhostFrontend::Connect(dir_ / "one.sock", {});
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  auto features = (*f)->GetU64(kGetFeatures);
  ASSERT_TRUE(features.ok());
  EXPECT_FALSE(*features & (1ull << VHOST_F_LOG_ALL));
  EXPECT_TRUE(*features & (1ull << VIRTIO_BLK_F_FLUSH));
  auto proto = (*f)->GetU64(kGetProtocolFeatures);
  ASSERT_TRUE(proto.ok());
  EXPECT_FALSE(*proto & (1ull << kProtoLogShmfd));
  EXPECT_TRUE(*proto & (1ull << kProtoInflightShmfd));
  // Asking for it anyway drops the connection.
  uint64_t log = 1ull << kProtoLogShmfd;
  ASSERT_TRUE((*f)->Send(kSetProtocolFeatures, &log, sizeof(log)).ok());
  EXPECT_TRUE((*f)->Closed(5000));
  t.join();
  EXPECT_TRUE(served.ok()) << served.ToString();
}

}  // namespace
}  // namespace daxstore::testing
