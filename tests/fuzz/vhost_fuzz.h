// The vhost-user fuzz target, shared by the libFuzzer binary (clang,
// -DDAXSTORE_BUILD_FUZZ=ON) and by a GoogleTest that feeds it random inputs
// in every build.
#pragma once

#include <cstddef>
#include <cstdint>

namespace daxstore::fuzz {

// Input: uint16 n, then n bytes of vhost-user messages (header + payload,
// back to back) handled by a fresh session until one is rejected; the rest
// is copied into 64 KiB of guest memory (descriptor table, avail ring,
// buffers) whose chains are popped, walked and executed as virtio-blk
// requests against a small image, after recovering an inflight slot at
// 48 KiB of that memory if flag bit 1 says so, marking a dirty log of
// (third byte) bytes if flag bit 2 says so. SET_INFLIGHT_FD messages carry
// a sealed 64 KiB shared-memory file, SET_LOG_BASE and SET_LOG_FD another. Any
// outcome but a crash or a sanitizer report is a pass.
int VhostMessagesAndChains(const uint8_t* data, size_t size);

}  // namespace daxstore::fuzz
