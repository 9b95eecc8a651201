// Sizes as people type them ("4G", "1536M", "2m", "512") and as ndctl prints
// them ("1006.00 MiB").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "daxstore/status.h"

namespace daxstore {

// Parses a byte count with an optional binary suffix k/m/g/t (either case,
// optional trailing "b"/"iB"): "4096", "4k", "1.5G", "2TiB". Fractions are
// allowed when they give whole bytes. Rejects negatives, empty strings,
// unknown suffixes, overflow, and junk like "1.5x" with a message that
// shows a valid form.
Result<uint64_t> ParseSize(std::string_view text);

// "1006.00 MiB", "4.00 KiB", "512 B" (ndctl's -u units).
std::string FormatSizeHuman(uint64_t bytes);

}  // namespace daxstore
