// libFuzzer entry point for the RBD diff parser fuzz target.
#include <cstddef>
#include <cstdint>

#include "fuzz/rbd_diff_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return daxstore::fuzz::RbdDiffParse(data, size);
}
