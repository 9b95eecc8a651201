// The RBD diff parser fuzz target, shared by the libFuzzer binary (clang,
// -DDAXSTORE_BUILD_FUZZ=ON) and by a GoogleTest that feeds it mutated
// streams in every build.
#pragma once

#include <cstddef>
#include <cstdint>

namespace daxstore::fuzz {

// Input: an RBD diff stream, parsed with rbd::ParseDiff by a visitor that
// aborts if a record it is handed lies past the stream's size or arrives
// before the header. Any outcome but a crash, an abort or a sanitizer
// report is a pass.
int RbdDiffParse(const uint8_t* data, size_t size);

}  // namespace daxstore::fuzz
