// A front end that shrinks guest memory after SET_MEM_TABLE (ftruncate on
// the memfd it shared): the backend's next access would raise SIGBUS. The
// backend (in this process) must survive, fail or drop what touched the
// lost pages, drop the connection with one line and serve the next one,
// with image blocks other than the request's untouched.
#include <unistd.h>

#include <cstring>
#include <vector>

#include "unit/vhost_fixture.h"

namespace daxstore::testing {
namespace {

using Bytes = std::vector<uint8_t>;
constexpr uint64_t kBlock = 4096;
constexpr uint64_t kSectorsPerBlock = kBlock / 512;

class VhostShrinkTest : public VhostTest {
 protected:
  // Blocks 0..3 hold 0x10, 0x11, 0x12, 0x13.
  void FillBlocks(VhostFrontend& f) {
    for (uint8_t b = 0; b < 4; ++b) {
      Bytes data(kBlock, static_cast<uint8_t>(0x10 + b));
      auto st = f.Request(0, VIRTIO_BLK_T_OUT, b * kSectorsPerBlock, data, {});
      ASSERT_TRUE(st.ok()) << st.status().ToString();
      ASSERT_EQ(*st, VIRTIO_BLK_S_OK);
    }
  }
  Bytes ReadBlock(VhostFrontend& f, uint64_t b) {
    Bytes data(kBlock, 0xee);
    auto st = f.Request(0, VIRTIO_BLK_T_IN, b * kSectorsPerBlock, {}, data);
    EXPECT_TRUE(st.ok() && *st == VIRTIO_BLK_S_OK);
    return data;
  }
  // Publishes r on queue 0, cuts guest memory down to `keep` bytes, kicks,
  // and expects the connection dropped; returns what the server logged
  // from the truncation on (a worker still draining its ring may fault
  // before the kick).
  std::string ShrinkAndKick(VhostFrontend& f, VhostFrontend::Req& r,
                            uint64_t keep) {
    EXPECT_TRUE(f.Publish(0, {&r, 1}).ok());
    ::testing::internal::CaptureStderr();
    EXPECT_EQ(ftruncate(f.mem_fd(), static_cast<off_t>(keep)), 0);
    EXPECT_TRUE(f.Kick(0).ok());
    const bool closed = f.Closed(5000);
    std::string log = ::testing::internal::GetCapturedStderr();
    EXPECT_TRUE(closed);
    EXPECT_NE(log.find("shrank under us"), std::string::npos) << log;
    return log;
  }
  // A fresh front end sees blocks 0, 2, 3 as filled, and block 1 either
  // as filled or as zeros (the failed write), never the write's data.
  void CheckOthersUntouched() {
    auto g = Attach();
    ASSERT_NE(g, nullptr);
    for (uint64_t b : {0, 2, 3})
      EXPECT_EQ(ReadBlock(*g, b), Bytes(kBlock, 0x10 + b)) << "block " << b;
    Bytes one = ReadBlock(*g, 1);
    EXPECT_TRUE(one == Bytes(kBlock, 0x11) || one == Bytes(kBlock, 0))
        << "block 1 starts with " << int(one[0]);
    // And the new connection writes as usual.
    Bytes data(kBlock, 0x77);
    auto st = g->Request(0, VIRTIO_BLK_T_OUT, 1 * kSectorsPerBlock, data, {});
    ASSERT_TRUE(st.ok() && *st == VIRTIO_BLK_S_OK);
    EXPECT_EQ(ReadBlock(*g, 1), data);
  }
};

TEST_F(VhostShrinkTest, DataPagesGoneFailsTheRequestAndDropsTheConnection) {
  Serve();
  auto f = Attach();
  ASSERT_NE(f, nullptr);
  FillBlocks(*f);
  Bytes data(kBlock, 0x5a);
  VhostFrontend::Req r;
  r.type = VIRTIO_BLK_T_OUT;
  r.sector = 1 * kSectorsPerBlock;
  r.out = data;
  // Rings, header and status stay; the data buffer and all after it go.
  const std::string log =
      ShrinkAndKick(*f, r, f->DataGpa(0, 0) - VhostFrontend::kGpaBase);
  EXPECT_NE(log.find("guest memory region 0 shrank under us"),
            std::string::npos)
      << log;
  // The status byte was still ours: the write failed, never acknowledged.
  ASSERT_TRUE(f->Complete(0, {&r, 1}).ok());
  EXPECT_EQ(r.status, VIRTIO_BLK_S_IOERR);
  CheckOthersUntouched();
}

// The image engine copies into the lost page (a read): the data goes to
// a private page nobody sees, the request fails, the connection drops.
TEST_F(VhostShrinkTest, ReadIntoLostPagesFailsTheRequest) {
  Serve();
  auto f = Attach();
  ASSERT_NE(f, nullptr);
  FillBlocks(*f);
  Bytes data(kBlock, 0xee);
  VhostFrontend::Req r;
  r.type = VIRTIO_BLK_T_IN;
  r.sector = 2 * kSectorsPerBlock;
  r.in = data;
  ShrinkAndKick(*f, r, f->DataGpa(0, 0) - VhostFrontend::kGpaBase);
  // Complete would copy the data back from the lost page: read the status
  // from the used ring's side only.
  EXPECT_EQ(f->UsedIndex(0), 5);  // 4 fills + this one, returned
  // The status byte sits 64 bytes into the page before the data.
  EXPECT_EQ(*f->Host(f->DataGpa(0, 0) - 4096 + 64), VIRTIO_BLK_S_IOERR);
  f.reset();
  CheckOthersUntouched();
}

TEST_F(VhostShrinkTest, RingsGoneDropsTheConnectionWithoutCompletion) {
  Serve();
  auto f = Attach();
  ASSERT_NE(f, nullptr);
  FillBlocks(*f);
  Bytes data(kBlock, 0x5a);
  VhostFrontend::Req r;
  r.type = VIRTIO_BLK_T_OUT;
  r.sector = 1 * kSectorsPerBlock;
  r.out = data;
  // Everything goes; this front end must not touch its memory again.
  ShrinkAndKick(*f, r, 0);
  f.reset();
  CheckOthersUntouched();
}

// Sealed guest memory cannot shrink: the server says so once, and the
// front end's ftruncate fails.
TEST_F(VhostShrinkTest, SealedMemoryIsNotedAndCannotShrink) {
  Serve();
  ::testing::internal::CaptureStderr();
  auto f = Attach({.seal_memory = true});
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_NE(f, nullptr);
  EXPECT_NE(log.find("size-sealed"), std::string::npos) << log;
  EXPECT_NE(ftruncate(f->mem_fd(), 0), 0);
  FillBlocks(*f);
  EXPECT_EQ(ReadBlock(*f, 3), Bytes(kBlock, 0x13));
  // An unsealed front end gets no such line.
  f.reset();
  ::testing::internal::CaptureStderr();
  auto g = Attach();
  EXPECT_EQ(::testing::internal::GetCapturedStderr().find("size-sealed"),
            std::string::npos);
}

}  // namespace
}  // namespace daxstore::testing
