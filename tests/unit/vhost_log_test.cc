// Dirty logging for live migration: the backend offers VHOST_F_LOG_ALL and
// VHOST_USER_PROTOCOL_F_LOG_SHMFD, refuses a log it cannot use (dropping
// the connection, writing nothing), and with logging on marks exactly the
// pages a request wrote: data, status byte, used ring.
#include <linux/vhost_types.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <limits>
#include <set>
#include <vector>

#include "unit/vhost_fixture.h"

namespace daxstore::testing {
namespace {

using namespace daxstore::vhost;
constexpr uint64_t kPage = 4096;
// Guest RAM is [kGpaBase, kGpaBase + 16 MiB): 0x1100 pages, 544 bytes.
constexpr uint64_t kLogBytes = 544;
constexpr uint8_t kCanary = 0x5a;

class VhostLogTest : public VhostTest {
 protected:
  // A memfd of `len` bytes, every byte kCanary, mapped at map_.
  void MakeLogFile(size_t len) {
    fd_ = memfd_create("log", MFD_CLOEXEC);
    ASSERT_GE(fd_, 0);
    ASSERT_EQ(ftruncate(fd_, static_cast<off_t>(len)), 0);
    void* m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    ASSERT_NE(m, MAP_FAILED);
    map_ = static_cast<uint8_t*>(m);
    len_ = len;
    std::memset(map_, kCanary, len);
  }
  void TearDown() override {
    VhostTest::TearDown();
    if (map_ != nullptr) munmap(map_, len_);
    if (fd_ >= 0) close(fd_);
  }
  // Every byte of the file outside [off, off + n) still holds the canary.
  void ExpectCanaryOutside(uint64_t off, uint64_t n) {
    for (uint64_t i = 0; i < len_; ++i) {
      if (i < off || i >= off + n) {
        ASSERT_EQ(map_[i], kCanary) << i;
      }
    }
  }
  // A SET_LOG_BASE the backend must refuse: the connection drops, nothing
  // of the file changes, the next front end is served.
  void ExpectRefused(LogInfo info, bool with_fd) {
    auto f = Attach({.log = true});
    ASSERT_TRUE(f);
    std::span<const int> fds;
    if (with_fd) fds = {&fd_, 1};
    ASSERT_TRUE(f->Send(kSetLogBase, &info, sizeof(info), fds).ok());
    EXPECT_TRUE(f->Closed(5000));
    ExpectCanaryOutside(0, 0);
    auto g = Attach();
    ASSERT_TRUE(g);
    std::vector<uint8_t> buf(4096, 1);
    auto st = g->Request(0, VIRTIO_BLK_T_OUT, 8, buf, {});
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    EXPECT_EQ(*st, VIRTIO_BLK_S_OK);
  }
  int fd_ = -1;
  uint8_t* map_ = nullptr;
  size_t len_ = 0;
};

// The set of pages whose bits are set in the log at `bits`.
std::set<uint64_t> DirtyPages(const uint8_t* bits, uint64_t n) {
  std::set<uint64_t> pages;
  for (uint64_t i = 0; i < n; ++i)
    for (int b = 0; b < 8; ++b)
      if (bits[i] & (1u << b)) pages.insert(i * 8 + b);
  return pages;
}

void AddPages(std::set<uint64_t>* s, uint64_t gpa, uint64_t len) {
  for (uint64_t p = gpa / kPage; p <= (gpa + len - 1) / kPage; ++p)
    s->insert(p);
}

TEST_F(VhostLogTest, OffersLogFeatures) {
  Serve();
  auto f = Connect();
  ASSERT_TRUE(f);
  auto features = f->GetU64(kGetFeatures);
  ASSERT_TRUE(features.ok());
  EXPECT_TRUE(*features & (1ull << VHOST_F_LOG_ALL));
  auto proto = f->GetU64(kGetProtocolFeatures);
  ASSERT_TRUE(proto.ok());
  EXPECT_TRUE(*proto & (1ull << kProtoLogShmfd));
}

TEST_F(VhostLogTest, RefusesALogItCannotUse) {
  Serve();
  MakeLogFile(2 * kPage);
  // Too small for guest memory.
  ExpectRefused({kLogBytes - 1, 0}, true);
  // Offset past the end of the file, and a range ending past it.
  ExpectRefused({kLogBytes, 2 * kPage}, true);
  ExpectRefused({kLogBytes, 2 * kPage - kLogBytes + 1}, true);
  // No descriptor.
  ExpectRefused({kLogBytes, 0}, false);
  // Sizes that overflow or are empty.
  ExpectRefused({std::numeric_limits<uint64_t>::max(), 8}, true);
  ExpectRefused({8, std::numeric_limits<uint64_t>::max()}, true);
  ExpectRefused({0, 0}, true);
}

TEST_F(VhostLogTest, RefusedWithoutLogShmfd) {
  Serve();
  MakeLogFile(kPage);
  auto f = Attach();  // LOG_SHMFD not negotiated
  ASSERT_TRUE(f);
  LogInfo info{kLogBytes, 0};
  ASSERT_TRUE(f->Send(kSetLogBase, &info, sizeof(info), {&fd_, 1}).ok());
  EXPECT_TRUE(f->Closed(5000));
  ExpectCanaryOutside(0, 0);
}

TEST_F(VhostLogTest, ReadMarksExactlyTheWrittenPages) {
  Serve();
  // The log at offset 4096 of the file; the canary around it.
  MakeLogFile(3 * kPage);
  auto f = Attach({.log = true});
  ASSERT_TRUE(f);
  ASSERT_TRUE(f->StartLog(fd_, kLogBytes, kPage).ok());
  uint8_t* log = map_ + kPage;
  std::memset(log, 0, kLogBytes);  // the front end's fresh log

  // A read of 8 KiB into a buffer that straddles three pages; the header
  // and the status byte share a page of their own.
  const uint64_t hdr = f->ScratchGpa(0), status = hdr + 64;
  const uint64_t data = hdr + 4 * kPage + 2048;
  constexpr uint32_t kLen = 8192;
  virtio_blk_outhdr h{VIRTIO_BLK_T_IN, 0, 16};
  std::memcpy(f->Host(hdr), &h, sizeof(h));
  constexpr uint16_t N = VRING_DESC_F_NEXT, W = VRING_DESC_F_WRITE;
  std::vector<vring_desc> descs = {
      {hdr, sizeof(h), N, 1}, {data, kLen, N | W, 2}, {status, 1, W, 0}};
  auto len = f->RunChain(0, descs);
  ASSERT_TRUE(len.ok()) << len.status().ToString();
  EXPECT_EQ(*len, kLen + 1);
  EXPECT_EQ(*f->Host(status), VIRTIO_BLK_S_OK);

  std::set<uint64_t> want;
  AddPages(&want, data, kLen);
  AddPages(&want, status, 1);
  // The used element (slot 0) and used->idx.
  AddPages(&want, f->UsedGpa(0), 4 + sizeof(vring_used_elem));
  EXPECT_EQ(want.size(), 5u);  // three data pages, status, used ring
  EXPECT_EQ(DirtyPages(log, kLogBytes), want);
  ExpectCanaryOutside(kPage, kLogBytes);

  // A write marks only the status byte's page and the used ring: the
  // device reads the data.
  std::memset(log, 0, kLogBytes);
  h.type = VIRTIO_BLK_T_OUT;
  std::memcpy(f->Host(hdr), &h, sizeof(h));
  descs[1].flags = N;
  len = f->RunChain(0, descs);
  ASSERT_TRUE(len.ok()) << len.status().ToString();
  EXPECT_EQ(*len, 1u);
  std::set<uint64_t> want_write;
  AddPages(&want_write, status, 1);
  AddPages(&want_write, f->UsedGpa(0), 4 + 2 * sizeof(vring_used_elem));
  EXPECT_EQ(DirtyPages(log, kLogBytes), want_write);
  ExpectCanaryOutside(kPage, kLogBytes);
}

TEST_F(VhostLogTest, NothingMarkedWithoutLogAll) {
  Serve();
  MakeLogFile(kPage);
  auto f = Attach({.log = true});
  ASSERT_TRUE(f);
  // The log is set, VHOST_F_LOG_ALL is not negotiated.
  std::memset(map_, 0, kLogBytes);
  LogInfo info{kLogBytes, 0};
  ASSERT_TRUE(f->Send(kSetLogBase, &info, sizeof(info), {&fd_, 1}).ok());
  ASSERT_TRUE(f->Receive(kSetLogBase).ok());
  std::vector<uint8_t> buf(8192);
  auto st = f->Request(0, VIRTIO_BLK_T_IN, 0, {}, buf);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(*st, VIRTIO_BLK_S_OK);
  EXPECT_TRUE(DirtyPages(map_, kLogBytes).empty());
  ExpectCanaryOutside(0, kLogBytes);
}

}  // namespace
}  // namespace daxstore::testing
