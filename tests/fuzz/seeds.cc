#include "fuzz/seeds.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "vhost/protocol.h"

namespace daxstore::fuzz {

std::vector<uint8_t> ImageSeed(std::mt19937_64& rng, int i) {
  std::vector<uint8_t> input(12 * (1 + rng() % 4));
  for (auto& b : input) b = static_cast<uint8_t>(rng());
  // Small values and single bit flips are likelier to pass validation.
  if (i % 2) {
    uint64_t small = rng() % 64;
    std::memcpy(input.data() + 4, &small, 8);
  }
  return input;
}

std::vector<uint8_t> VhostSeed(std::mt19937_64& rng, int i) {
  std::vector<uint8_t> input(2 + rng() % 4096);
  for (auto& b : input) b = static_cast<uint8_t>(rng());
  size_t msgs = rng() % (input.size() - 1);
  input[0] = msgs & 0xff;
  input[1] = (msgs >> 8) & 0xff;
  // Plausible headers (known request, version 1, small size) get further.
  for (size_t off = 2; off + 12 <= 2 + msgs; off += 12 + rng() % 48) {
    vhost::MessageHeader h{static_cast<uint32_t>(1 + rng() % 32),
                           vhost::kVersion, static_cast<uint32_t>(rng() % 48)};
    std::memcpy(input.data() + off, &h, sizeof(h));
  }
  // Small descriptor fields: in-range indices and addresses near guest RAM.
  for (size_t off = 2 + msgs + 4; off + 16 <= input.size() && i % 2;
       off += 16) {
    uint64_t addr = 0x10000 + rng() % 0x11000;
    uint32_t len = static_cast<uint32_t>(rng() % 2048);
    uint16_t flags = static_cast<uint16_t>(rng() % 8), next = rng() % 8;
    std::memcpy(input.data() + off, &addr, 8);
    std::memcpy(input.data() + off + 8, &len, 4);
    std::memcpy(input.data() + off + 12, &flags, 2);
    std::memcpy(input.data() + off + 14, &next, 2);
    if (off > 2 + msgs + 4 + 256) break;
  }
  // A ring of 8 with a few entries published and in-range heads.
  size_t g = 2 + msgs + 4;  // guest memory starts here
  if (i % 2 && g + 16 * 8 + 4 + 16 <= input.size()) {
    input[2 + msgs] = 3;
    uint16_t idx = static_cast<uint16_t>(1 + rng() % 8);
    std::memcpy(input.data() + g + 16 * 8 + 2, &idx, 2);
    for (int k = 0; k < 8; ++k) {
      uint16_t head = rng() % 8;
      std::memcpy(input.data() + g + 16 * 8 + 4 + 2 * k, &head, 2);
    }
  }
  // Every fourth: a used inflight slot at 48 KiB of guest memory (flag bit
  // 1), with a few heads in flight and a last batch to clear.
  if (i % 4 == 3) {
    size_t slot = g + 48 * 1024;
    input.resize(slot + 16 + 16 * 256);
    input[2 + msgs + 1] |= 2;
    uint16_t hdr[4] = {1, 256, static_cast<uint16_t>(rng() % 8),
                       static_cast<uint16_t>(rng() % 2)};
    std::memset(input.data() + slot, 0, 8);
    std::memcpy(input.data() + slot + 8, hdr, sizeof(hdr));
    for (size_t k = 0; k < 256; ++k) {
      uint8_t* d = input.data() + slot + 16 + 16 * k;
      std::memset(d, 0, 16);
      d[0] = k < 8 ? rng() % 2 : 0;
      uint16_t next = rng() % 8;
      uint64_t counter = rng() % 16;
      std::memcpy(d + 6, &next, 2);
      std::memcpy(d + 8, &counter, 8);
    }
  }
  return input;
}

std::vector<uint8_t> RbdDiffSeed(std::mt19937_64& rng, int i) {
  std::vector<uint8_t> s;
  auto le = [&](uint64_t v, int n) {
    for (int k = 0; k < n; k++) s.push_back(static_cast<uint8_t>(v >> 8 * k));
  };
  const std::string magic = "rbd diff v1\n";
  s.assign(magic.begin(), magic.end());
  const uint64_t size = 4096 * (1 + rng() % 64);
  if (rng() % 2) {
    s.push_back('f');
    le(2, 4);
    s.push_back('s');
    s.push_back('1');
  }
  s.push_back('t');
  le(2, 4);
  s.push_back('s');
  s.push_back('2');
  s.push_back('s');
  le(size, 8);
  for (int r = static_cast<int>(rng() % 5); r > 0; r--) {
    const uint64_t off = rng() % size;
    const uint64_t len = rng() % std::min<uint64_t>(size - off + 1, 600);
    const bool zero = rng() % 3 == 0;
    s.push_back(zero ? 'z' : 'w');
    le(off, 8);
    le(len, 8);
    if (!zero) {
      for (uint64_t k = 0; k < len; k++)
        s.push_back(static_cast<uint8_t>(rng()));
    }
  }
  s.push_back('e');
  if (i % 2) {
    for (int k = 1 + static_cast<int>(rng() % 3); k > 0; k--) {
      s[rng() % s.size()] = static_cast<uint8_t>(rng());
    }
    if (rng() % 2) s.resize(rng() % s.size());
  }
  return s;
}

}  // namespace daxstore::fuzz
