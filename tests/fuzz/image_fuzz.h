// The image fuzz target, shared by the libFuzzer binary (clang,
// -DDAXSTORE_BUILD_FUZZ=ON) and by a GoogleTest that feeds it random inputs
// in every build.
#pragma once

#include <cstddef>
#include <cstdint>

namespace daxstore::fuzz {

// Input: a list of 12-byte patches {uint32 offset, uint64 value} applied
// to a small valid image's metadata (superblocks, lane records, map,
// refcounts); then the image is opened, read whole, written, checked and
// repaired. Invariants on an image Open accepts: writes to the default
// volume change no byte another volume reads; after a check with
// CheckRepair::kAll, a check finds it clean and the corrupt flag cleared.
// A broken invariant aborts with a message; any other outcome but a crash
// or a sanitizer report is a pass.
int ImageOpenAndUse(const uint8_t* data, size_t size);

}  // namespace daxstore::fuzz
