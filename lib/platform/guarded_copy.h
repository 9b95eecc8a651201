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
// *fault_offset (if not null) to the faulting byte's offset from src.
Status GuardedCopy(void* dst, const void* src, size_t n,
                   uint64_t* fault_offset);

// Installs the process-wide SIGBUS handler (once; later calls do nothing).
void InstallSigbusHandler();

}  // namespace daxstore
