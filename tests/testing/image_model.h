// An in-memory model of a virtual disk, and helpers shared by image tests.
#pragma once

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "daxstore/image.h"

namespace daxstore::testing {

class DiskModel {
 public:
  explicit DiskModel(uint64_t size) : bytes_(size, 0) {}
  void Write(uint64_t off, const void* p, size_t n) {
    std::memcpy(bytes_.data() + off, p, n);
  }
  void Zero(uint64_t off, size_t n) { std::memset(bytes_.data() + off, 0, n); }
  const uint8_t* at(uint64_t off) const { return bytes_.data() + off; }
  uint64_t size() const { return bytes_.size(); }
  bool operator==(const DiskModel&) const = default;
  // Blocks of `bs` bytes holding anything but zeros.
  uint64_t NonZeroBlocks(uint64_t bs) const {
    uint64_t n = 0;
    for (uint64_t b = 0; b < bytes_.size(); b += bs) {
      for (uint64_t i = b; i < b + bs && i < bytes_.size(); i++) {
        if (bytes_[i]) {
          n++;
          break;
        }
      }
    }
    return n;
  }

 private:
  std::vector<uint8_t> bytes_;
};

// Random bytes, never all zero unless asked.
inline std::vector<uint8_t> RandomBytes(std::mt19937_64& rng, size_t n) {
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng() | 1);
  return v;
}

// After a crash and recovery: the image keeps working (a write across the
// first two blocks of `bs` bytes succeeds and check stays clean).
inline Status KeepsWorking(Image& img, uint64_t bs) {
  std::vector<uint8_t> ones(bs + 100, 0x5a);
  if (Status st = img.Write(bs - 50, ones.data(), ones.size()); !st.ok()) {
    return st.WithContext("a write after recovery");
  }
  auto rep = img.Check();
  if (!rep.ok()) return rep.status();
  if (!rep->clean()) return Corruption("after recovery: " + rep->findings[0]);
  return Status::Ok();
}

}  // namespace daxstore::testing
