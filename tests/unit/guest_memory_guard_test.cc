// The guest memory guard on the real OS: a registered shared mapping whose
// file shrinks reads zeros where the pages went, counts the faults and the
// process lives; a SIGBUS anywhere else still kills it.
#include "platform/guest_memory_guard.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vector>

namespace daxstore {
namespace {

constexpr size_t kPage = 4096;

struct SharedFile {
  SharedFile() {
    fd = memfd_create("guard-test", MFD_CLOEXEC);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(ftruncate(fd, 3 * kPage), 0);
    void* p =
        mmap(nullptr, 3 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    EXPECT_NE(p, MAP_FAILED);
    mem = static_cast<volatile uint8_t*>(p);
  }
  ~SharedFile() {
    munmap(const_cast<uint8_t*>(mem), 3 * kPage);
    close(fd);
  }
  int fd = -1;
  volatile uint8_t* mem = nullptr;
};

TEST(GuestMemoryGuard, ShrunkFileReadsZerosAndCountsFaults) {
  SharedFile f;
  f.mem[0] = 1;
  f.mem[2 * kPage] = 3;
  auto slot = RegisterGuestMemory(const_cast<uint8_t*>(f.mem), 3 * kPage);
  ASSERT_TRUE(slot.ok()) << slot.status().ToString();
  EXPECT_EQ(GuestFaults(*slot), 0u);
  ASSERT_EQ(ftruncate(f.fd, kPage), 0);
  EXPECT_EQ(f.mem[2 * kPage], 0);  // would be SIGBUS
  EXPECT_EQ(GuestFaults(*slot), 1u);
  f.mem[kPage + 5] = 9;  // a write to a lost page goes to a private page
  EXPECT_EQ(GuestFaults(*slot), 2u);
  EXPECT_EQ(f.mem[kPage + 5], 9);
  // The page still in the file is still shared with it.
  f.mem[0] = 7;
  uint8_t b = 0;
  ASSERT_EQ(pread(f.fd, &b, 1, 0), 1);
  EXPECT_EQ(b, 7);
  // A later registration in the slot starts from zero faults.
  UnregisterGuestMemory(*slot);
  EXPECT_EQ(GuestFaults(-1), 0u);
  auto again = RegisterGuestMemory(const_cast<uint8_t*>(f.mem), kPage);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(GuestFaults(*again), 0u);
  UnregisterGuestMemory(*again);
}

TEST(GuestMemoryGuard, FullTableIsBusyAndSlotsAreReused) {
  alignas(kPage) static uint8_t pages[kMaxGuestRanges + 1][kPage];
  std::vector<int> slots;
  for (int i = 0; i < kMaxGuestRanges; ++i) {
    auto s = RegisterGuestMemory(pages[i], kPage);
    ASSERT_TRUE(s.ok()) << i;
    slots.push_back(*s);
  }
  auto full = RegisterGuestMemory(pages[kMaxGuestRanges], kPage);
  EXPECT_EQ(full.status().kind(), ErrorKind::kBusy);
  UnregisterGuestMemory(slots.back());
  slots.pop_back();
  auto s = RegisterGuestMemory(pages[kMaxGuestRanges], kPage);
  EXPECT_TRUE(s.ok());
  if (s.ok()) slots.push_back(*s);
  for (int slot : slots) UnregisterGuestMemory(slot);
}

TEST(GuestMemoryGuard, UnregisteredSigbusStillKills) {
  SharedFile guarded, other;
  auto slot = RegisterGuestMemory(const_cast<uint8_t*>(guarded.mem), kPage);
  ASSERT_TRUE(slot.ok());  // the handler is installed
  ASSERT_EQ(ftruncate(other.fd, kPage), 0);
  EXPECT_DEATH({ (void)other.mem[2 * kPage]; }, "");
  // Unregistered ranges are not repaired either.
  UnregisterGuestMemory(*slot);
  ASSERT_EQ(ftruncate(guarded.fd, 0), 0);
  EXPECT_DEATH({ (void)guarded.mem[0]; }, "");
}

}  // namespace
}  // namespace daxstore
