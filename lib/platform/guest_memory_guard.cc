#include "platform/guest_memory_guard.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

#include "platform/guarded_copy.h"

namespace daxstore {
namespace {

struct Slot {
  std::atomic<bool> taken{false};
  // [start, end); end == 0 while the slot is being filled or emptied, so the
  // handler never matches a half-written range.
  std::atomic<uintptr_t> start{0};
  std::atomic<uintptr_t> end{0};
  std::atomic<uint64_t> faults{0};
};
Slot g_slots[kMaxGuestRanges];
std::atomic<uintptr_t> g_page{4096};  // sysconf is not for the handler

static_assert(std::atomic<uintptr_t>::is_always_lock_free);
static_assert(std::atomic<uint64_t>::is_always_lock_free);

}  // namespace

Result<int> RegisterGuestMemory(void* base, size_t len) {
  g_page.store(static_cast<uintptr_t>(sysconf(_SC_PAGESIZE)));
  InstallSigbusHandler();
  for (int i = 0; i < kMaxGuestRanges; ++i) {
    bool expected = false;
    if (!g_slots[i].taken.compare_exchange_strong(expected, true)) continue;
    Slot& s = g_slots[i];
    s.faults.store(0);
    s.start.store(reinterpret_cast<uintptr_t>(base));
    s.end.store(reinterpret_cast<uintptr_t>(base) + len,
                std::memory_order_release);
    return i;
  }
  return Busy("more than " + std::to_string(kMaxGuestRanges) +
              " guest memory regions mapped at once; close some connections");
}

void UnregisterGuestMemory(int slot) {
  if (slot < 0 || slot >= kMaxGuestRanges) return;
  Slot& s = g_slots[slot];
  s.end.store(0);
  s.start.store(0);
  s.taken.store(false, std::memory_order_release);
}

uint64_t GuestFaults(int slot) {
  if (slot < 0 || slot >= kMaxGuestRanges) return 0;
  return g_slots[slot].faults.load(std::memory_order_acquire);
}

bool RepairGuestFault(void* addr) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(addr);
  for (Slot& s : g_slots) {
    const uintptr_t end = s.end.load(std::memory_order_acquire);
    if (end == 0 || a >= end || a < s.start.load()) continue;
    const uintptr_t page = g_page.load(std::memory_order_relaxed);
    // mmap is not on POSIX's async-signal-safe list, but it is a plain
    // system call that takes no user-space lock; the raw syscall also
    // bypasses any interposed wrapper (sanitizers). Fine in practice here.
    long r = syscall(SYS_mmap, a & ~(page - 1), page, PROT_READ | PROT_WRITE,
                     MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r == -1) return false;  // cannot repair: let the fault kill us
    s.faults.fetch_add(1, std::memory_order_release);
    return true;
  }
  return false;
}

}  // namespace daxstore
