// Several virtqueues served by their own workers at once, each driven by
// its own thread, on disjoint parts of the disk.
#include <unistd.h>

#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "unit/vhost_fixture.h"

namespace daxstore::testing {
namespace {

using Bytes = std::vector<uint8_t>;

TEST_F(VhostTest, QueuesConcurrent) {
  constexpr uint32_t kQueues = 4;
  VhostBlkOptions o;
  o.queues = kQueues;
  Serve(o);
  auto f = Attach({.queues = kQueues});
  ASSERT_TRUE(f);
  const uint64_t part = kSize / 512 / kQueues;  // sectors per queue
  std::vector<std::thread> threads;
  std::vector<int> failures(kQueues, 0);
  for (uint32_t q = 0; q < kQueues; ++q) {
    threads.emplace_back([&, q] {
      std::mt19937_64 rng(q);
      Bytes model(part * 512, 0);
      for (int i = 0; i < 200; ++i) {
        uint64_t n = 1 + rng() % 16;
        uint64_t s = rng() % (part - n);
        Bytes buf(n * 512);
        if (rng() % 2) {
          for (auto& b : buf) b = static_cast<uint8_t>(rng());
          auto st = f->Request(q, VIRTIO_BLK_T_OUT, q * part + s, buf, {});
          if (!st.ok() || *st != VIRTIO_BLK_S_OK) ++failures[q];
          std::memcpy(model.data() + s * 512, buf.data(), buf.size());
        } else {
          auto st = f->Request(q, VIRTIO_BLK_T_IN, q * part + s, {}, buf);
          if (!st.ok() || *st != VIRTIO_BLK_S_OK ||
              std::memcmp(buf.data(), model.data() + s * 512, buf.size()))
            ++failures[q];
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  for (uint32_t q = 0; q < kQueues; ++q) EXPECT_EQ(failures[q], 0) << q;
}

TEST_F(VhostTest, ReconnectWhileQueuesBusyConcurrent) {
  VhostBlkOptions o;
  o.queues = 2;
  Serve(o);
  for (int round = 0; round < 3; ++round) {
    auto f = Attach({.queues = 2});
    ASSERT_TRUE(f);
    std::thread t([&] {
      Bytes buf(4096, static_cast<uint8_t>(round));
      for (int i = 0; i < 50; ++i)
        (void)f->Request(1, VIRTIO_BLK_T_OUT, 8, buf, {});
    });
    Bytes buf(4096, 0);
    for (int i = 0; i < 50; ++i)
      EXPECT_EQ(*f->Request(0, VIRTIO_BLK_T_IN, 0, {}, buf), VIRTIO_BLK_S_OK);
    t.join();
  }  // each front end disconnects with its rings running
  EXPECT_EQ(server_->connections(), 3u);
}

// Two workers fault in the same shrunk region at once (queue 0 in its
// data, queue 1 in its rings): one drop line, the connection closes, the
// server serves the next front end. A worker may reach the shrunk memory
// before its kick (it drains its ring when it starts), so stderr is
// captured from the truncation on.
TEST_F(VhostTest, GuestMemoryShrinksUnderTwoQueuesConcurrent) {
  VhostBlkOptions o;
  o.queues = 2;
  Serve(o);
  auto f = Attach({.queues = 2});
  ASSERT_NE(f, nullptr);
  Bytes data(4096, 0x5a);
  VhostFrontend::Req r[2];
  for (uint32_t q = 0; q < 2; ++q) {
    r[q].type = VIRTIO_BLK_T_OUT;
    r[q].sector = 8 * q;
    r[q].out = data;
    ASSERT_TRUE(f->Publish(q, {&r[q], 1}).ok());
  }
  const uint64_t keep = f->DataGpa(0, 0) - VhostFrontend::kGpaBase;
  ::testing::internal::CaptureStderr();
  const int truncated = ftruncate(f->mem_fd(), static_cast<off_t>(keep));
  std::thread other([&] { EXPECT_TRUE(f->Kick(1).ok()); });
  EXPECT_TRUE(f->Kick(0).ok());
  other.join();
  const bool closed = f->Closed(5000);
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(truncated, 0);
  EXPECT_TRUE(closed);
  const size_t first = log.find("shrank under us");
  EXPECT_NE(first, std::string::npos) << log;
  EXPECT_EQ(log.find("shrank under us", first + 1), std::string::npos) << log;
  f.reset();
  auto g = Attach({.queues = 2});
  ASSERT_NE(g, nullptr);
  Bytes back(4096);
  auto st = g->Request(1, VIRTIO_BLK_T_IN, 64, {}, back);
  ASSERT_TRUE(st.ok() && *st == VIRTIO_BLK_S_OK);
  EXPECT_EQ(back, Bytes(4096, 0));  // never written
}

}  // namespace
}  // namespace daxstore::testing
