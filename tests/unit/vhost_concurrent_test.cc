// Several virtqueues served by their own workers at once, each driven by
// its own thread, on disjoint parts of the disk.
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

}  // namespace
}  // namespace daxstore::testing
