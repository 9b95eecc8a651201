// Runs the vhost fuzz target on random inputs in every build (the
// libFuzzer binary explores further when built with clang).
#include "fuzz/vhost_fuzz.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "fuzz/seeds.h"

namespace daxstore {
namespace {

TEST(VhostFuzz, RandomMessagesAndChainsNeverCrash) {
  std::mt19937_64 rng(777);
  for (int i = 0; i < 3000; i++) {
    std::vector<uint8_t> input = fuzz::VhostSeed(rng, i);
    EXPECT_EQ(fuzz::VhostMessagesAndChains(input.data(), input.size()), 0);
  }
}

}  // namespace
}  // namespace daxstore
