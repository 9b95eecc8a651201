// Runs the RBD diff parser fuzz target on generated and mutated streams in
// every build (the libFuzzer binary explores further when built with clang).
#include "fuzz/rbd_diff_fuzz.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "fuzz/seeds.h"

namespace daxstore {
namespace {

TEST(RbdDiffFuzz, MutatedStreamsNeverCrash) {
  std::mt19937_64 rng(4242);
  for (int i = 0; i < 3000; i++) {
    std::vector<uint8_t> input = fuzz::RbdDiffSeed(rng, i);
    EXPECT_EQ(fuzz::RbdDiffParse(input.data(), input.size()), 0);
  }
}

}  // namespace
}  // namespace daxstore
