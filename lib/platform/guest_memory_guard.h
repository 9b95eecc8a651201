// Guest memory that another process can shrink under us. A vhost-user
// front end keeps the fd of the memory it shares and may ftruncate it
// after we mapped it; touching a page past the new end raises SIGBUS.
// Registered ranges are repaired instead: the SIGBUS handler of
// guarded_copy.h maps an anonymous zero page over the faulting page,
// counts the fault and returns, so the access completes (reads zeros,
// writes go nowhere) and no lock-holding code is unwound. The owner polls
// GuestFaults() and drops whatever it was doing.
//
// Lookups from the handler are lock-free and async-signal-safe (a fixed
// table of atomics). A range must be unregistered before it is unmapped.
#pragma once

#include <cstddef>
#include <cstdint>

#include "daxstore/status.h"

namespace daxstore {

inline constexpr int kMaxGuestRanges = 64;

// Registers [base, base + len) (page-aligned base) and installs the SIGBUS
// handler. Returns the slot to pass to the other calls; kBusy if
// kMaxGuestRanges ranges are registered already.
[[nodiscard]] Result<int> RegisterGuestMemory(void* base, size_t len);
// Forgets the range; faults in it kill the process again.
void UnregisterGuestMemory(int slot);
// Pages of the range replaced by zero pages since it was registered.
uint64_t GuestFaults(int slot);

// For the SIGBUS handler: if addr lies in a registered range, replaces its
// page with a zero page, counts the fault and returns true.
bool RepairGuestFault(void* addr);

}  // namespace daxstore
