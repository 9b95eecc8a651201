// Copying out of memory that may be poisoned (a bad block on pmem raises
// SIGBUS on access). The first use installs a process-wide SIGBUS handler
// that turns a fault inside a guarded copy into an error and passes every
// other SIGBUS on to the handler that was there before. A fault in
// registered guest memory (guest_memory_guard.h) is repaired first, even
// inside a guarded copy.
#pragma once

#include <cstddef>
#include <cstdint>

#include "daxstore/status.h"

namespace daxstore {

// Copies n bytes from src to dst. On SIGBUS returns kIoError and sets
// *fault_offset (if not null) to the faulting byte's offset from src; a
// fault outside [src, src + n) (in dst) sets it to n.
Status GuardedCopy(void* dst, const void* src, size_t n,
                   uint64_t* fault_offset);

// The data-path form: a few nanoseconds over memcpy (no system call, no
// allocation). True when the copy completed; on SIGBUS false, with *fault
// (if not null) the faulting address, which may lie in dst.
bool TryGuardedCopy(void* dst, const void* src, size_t n, const void** fault);

// Installs the process-wide SIGBUS handler (once; later calls do nothing).
void InstallSigbusHandler();

}  // namespace daxstore
