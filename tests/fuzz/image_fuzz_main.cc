// libFuzzer entry point for the image fuzz target.
#include <cstddef>
#include <cstdint>

#include "fuzz/image_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return daxstore::fuzz::ImageOpenAndUse(data, size);
}
