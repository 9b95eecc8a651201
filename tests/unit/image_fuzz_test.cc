// Runs the image fuzz target on random patch lists in every build (the
// libFuzzer binary explores further when built with clang).
#include "fuzz/image_fuzz.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

namespace daxstore {
namespace {

TEST(ImageFuzz, RandomMetadataPatchesNeverCrash) {
  std::mt19937_64 rng(12345);
  for (int i = 0; i < 2000; i++) {
    std::vector<uint8_t> input(12 * (1 + rng() % 4));
    for (auto& b : input) b = static_cast<uint8_t>(rng());
    // Small values and single bit flips are likelier to pass validation.
    if (i % 2) {
      uint64_t small = rng() % 64;
      std::memcpy(input.data() + 4, &small, 8);
    }
    EXPECT_EQ(fuzz::ImageOpenAndUse(input.data(), input.size()), 0);
  }
}

}  // namespace
}  // namespace daxstore
