// libFuzzer entry point for the vhost fuzz target.
#include <cstddef>
#include <cstdint>

#include "fuzz/vhost_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return daxstore::fuzz::VhostMessagesAndChains(data, size);
}
