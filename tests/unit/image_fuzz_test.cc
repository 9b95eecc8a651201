// Runs the image fuzz target on random patch lists in every build (the
// libFuzzer binary explores further when built with clang).
#include "fuzz/image_fuzz.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "fuzz/seeds.h"

namespace daxstore {
namespace {

TEST(ImageFuzz, RandomMetadataPatchesNeverCrash) {
  std::mt19937_64 rng(12345);
  for (int i = 0; i < 2000; i++) {
    std::vector<uint8_t> input = fuzz::ImageSeed(rng, i);
    EXPECT_EQ(fuzz::ImageOpenAndUse(input.data(), input.size()), 0);
  }
}

}  // namespace
}  // namespace daxstore
