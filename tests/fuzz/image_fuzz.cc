// Fuzzing an image's on-media metadata: see image_fuzz.h.
#include "fuzz/image_fuzz.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "daxstore/image.h"
#include "daxstore/mapping.h"

namespace daxstore::fuzz {

namespace {

constexpr size_t kSize = 96 << 10;

void NoPersist(const void*, size_t) {}
void NoDrain() {}
void* Copy(void* d, const void* s, size_t n, unsigned) {
  return std::memmove(d, s, n);
}
void* Set(void* d, int c, size_t n, unsigned) { return std::memset(d, c, n); }

Result<Mapping> OverMemory(std::shared_ptr<std::vector<uint8_t>> mem) {
  PersistOps ops{NoPersist, NoPersist, NoDrain, Copy, Copy, Set};
  void* p = mem->data();
  return Mapping::FromMemory(p, mem->size(), Granularity::kByte, ops, mem,
                             "fuzz-image");
}

// A small image with a few blocks written, made once.
const std::vector<uint8_t>& Template() {
  static const std::vector<uint8_t> image = [] {
    auto mem = std::make_shared<std::vector<uint8_t>>(kSize);
    ImageOptions o;
    o.virtual_size = 16 * 4096;
    o.lanes = 2;
    o.max_volumes = 3;
    auto img = Image::Format(std::move(OverMemory(mem)).value(), o);
    std::vector<uint8_t> v(6000, 0x3c);
    (void)img->Write(1000, v.data(), v.size());
    (void)img->Write(9 * 4096, v.data(), 4096);
    // A snapshot and a clone sharing those blocks: volume table entries,
    // three maps and refcounts above 1 for the patches to hit.
    (void)img->Snapshot("snap");
    (void)img->Clone("snap", "clone");
    auto clone = img->OpenVolume("clone");
    if (clone.ok()) (void)clone->Write(9 * 4096 + 7, v.data(), 9);
    return *mem;
  }();
  return image;
}

// A broken invariant: says which, and aborts (a libFuzzer finding; the
// GoogleTest driver dies with the message).
[[noreturn]] void Broken(const char* what, const std::string& detail) {
  std::fprintf(stderr, "image fuzz: invariant broken: %s: %s\n", what,
               detail.c_str());
  std::abort();
}

// What every volume but `writer` reads, block by block: the bytes, or
// nothing where the read failed (a damaged entry).
using Contents = std::vector<std::optional<std::vector<uint8_t>>>;
std::vector<std::pair<std::string, Contents>> ReadOthers(
    const Image& img, const std::string& writer) {
  std::vector<std::pair<std::string, Contents>> out;
  auto vols = img.Volumes();
  if (!vols.ok()) return out;
  for (const VolumeInfo& vi : *vols) {
    if (vi.damaged || vi.name == writer) continue;
    auto h = img.OpenVolume(vi.name);
    if (!h.ok()) continue;
    Contents c;
    const uint64_t bs = h->block_size();
    for (uint64_t off = 0; off < h->virtual_size(); off += bs) {
      std::vector<uint8_t> b(bs);
      if (h->Read(off, b.data(), bs).ok()) {
        c.push_back(std::move(b));
      } else {
        c.push_back(std::nullopt);
      }
    }
    out.emplace_back(vi.name, std::move(c));
  }
  return out;
}

}  // namespace

int ImageOpenAndUse(const uint8_t* data, size_t size) {
  auto mem = std::make_shared<std::vector<uint8_t>>(Template());
  // Patches land in the metadata: the first 64 KiB and the backup page.
  for (size_t i = 0; i + 12 <= size; i += 12) {
    uint32_t off;
    uint64_t value;
    std::memcpy(&off, data + i, 4);
    std::memcpy(&value, data + i + 4, 8);
    off %= (64 << 10) + 4096;
    if (off >= (64 << 10)) off = kSize - 4096 + (off - (64 << 10));
    off &= ~7u;
    std::memcpy(mem->data() + off, &value, 8);
  }
  auto m = OverMemory(mem);
  if (!m.ok()) return 0;
  auto img = Image::Open(std::move(m).value());
  if (!img.ok()) return 0;
  std::vector<uint8_t> buf(img->virtual_size() < (1 << 20) ? img->virtual_size()
                                                           : (1 << 20));
  (void)img->Read(0, buf.data(), buf.size());
  std::vector<uint8_t> v(5000, 0x7e);
  // Writes to the default volume never change what another volume reads
  // (a write that meets damage fails instead).
  const auto before = ReadOthers(*img, img->volume());
  (void)img->Write(3000, v.data(), v.size());
  (void)img->Discard(0, 4096);
  (void)img->Write(12 * 4096, v.data(), 4096);
  const auto after = ReadOthers(*img, img->volume());
  if (after.size() != before.size()) Broken("volumes", "a volume went away");
  for (size_t i = 0; i < before.size(); i++) {
    for (size_t b = 0; b < before[i].second.size(); b++) {
      if (before[i].second[b] && before[i].second[b] != after[i].second[b]) {
        Broken("isolation", "a write to '" + img->volume() +
                                "' changed block " + std::to_string(b) +
                                " of '" + before[i].first + "'");
      }
    }
  }
  (void)img->Info();
  // A full repair leaves an image that checks clean.
  auto repaired = img->Check(CheckRepair::kAll);
  if (repaired.ok()) {
    auto again = img->Check(CheckRepair::kNone);
    if (!again.ok()) Broken("repair", again.status().ToString());
    if (!again->clean()) {
      Broken("repair", "check after --repair=all: " + again->findings[0]);
    }
    if (img->corrupt()) Broken("repair", "the corrupt flag stayed set");
  }
  (void)img->Write(100, v.data(), 100);
  (void)img->Check();
  // The volume operations over whatever the patches left.
  auto vols = img->Volumes();
  if (vols.ok()) {
    for (const VolumeInfo& vi : *vols) {
      auto h = img->OpenVolume(vi.name);
      if (!h.ok()) continue;
      (void)h->Read(0, buf.data(), 4096 < buf.size() ? 4096 : buf.size());
      (void)h->Write(4096, v.data(), 4096);
    }
  }
  (void)img->DeleteVolume("clone");
  (void)img->Snapshot("again");
  (void)img->Clone("again", "clone2");
  (void)img->DeleteVolume("snap");
  (void)img->Check();
  return 0;
}

}  // namespace daxstore::fuzz
