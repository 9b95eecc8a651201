// Inputs shaped the way the fuzz targets parse them, from a seeded
// generator. The GoogleTest drivers (image_fuzz_test, vhost_fuzz_test) run
// these in every build; `fuzz_seeds` writes the same inputs out as a
// libFuzzer seed corpus, so the fuzzers start from inputs that get past the
// first checks.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace daxstore::fuzz {

// For ImageOpenAndUse: 1 to 4 patches; odd i patches in small values.
std::vector<uint8_t> ImageSeed(std::mt19937_64& rng, int i);

// For VhostMessagesAndChains: plausible message headers, then (odd i)
// descriptors near guest RAM and a ring of 8 with a few entries published.
std::vector<uint8_t> VhostSeed(std::mt19937_64& rng, int i);

// For RbdDiffParse: a well-formed RBD diff v1 stream of a few records,
// then (odd i) a few bytes of it changed.
std::vector<uint8_t> RbdDiffSeed(std::mt19937_64& rng, int i);

}  // namespace daxstore::fuzz
