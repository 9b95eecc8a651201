// Bad blocks: which blocks are bad, what a read or write of one returns,
// retiring them, and listing the guest ranges they cost (media.h).
#include <algorithm>
#include <string>
#include <vector>

#include "image/engine.h"

namespace daxstore {

using image::kPage;

namespace {

std::string Span(uint64_t a, uint64_t b) {
  return "[" + std::to_string(a) + ", " + std::to_string(b) + ")";
}

// The metadata region holding image byte `off` (below data_offset or in
// the backup page), for messages.
std::string RegionOf(const image::Superblock& sb, uint64_t off) {
  if (off < sb.lane_offset) return "primary superblock";
  if (off < sb.volume_offset) {
    return "redo record of lane " +
           std::to_string((off - sb.lane_offset) / image::kLaneSlot);
  }
  if (off < sb.map_offset) return "volume table";
  if (off < sb.ref_offset) {
    return "block map of volume slot " +
           std::to_string((off - sb.map_offset) / sb.map_slot_bytes);
  }
  if (off < sb.data_offset) return "refcount table";
  return "backup superblock";
}

// Puts the data blocks of `raw` in s.bad; returns one line per range that
// touches metadata.
std::vector<std::string> Classify(const Image::State& s,
                                  const std::vector<ByteRange>& raw) {
  const image::Superblock& sb = s.sb;
  const uint64_t data_end = sb.data_offset + sb.data_blocks * sb.block_size;
  std::vector<std::string> meta;
  std::vector<uint64_t> bad;
  auto metadata = [&](uint64_t a, uint64_t b) {
    meta.push_back("the " + RegionOf(sb, a) + " (image bytes " + Span(a, b) +
                   ") lies on a bad block of the media");
  };
  for (const ByteRange& r : raw) {
    const uint64_t end = r.offset + r.length;
    if (r.offset < sb.data_offset) {
      metadata(r.offset, std::min(end, sb.data_offset));
    }
    if (end > sb.backup_offset && r.offset < sb.backup_offset + kPage) {
      metadata(std::max(r.offset, sb.backup_offset),
               std::min(end, sb.backup_offset + kPage));
    }
    const uint64_t a = std::max(r.offset, sb.data_offset);
    const uint64_t b = std::min(end, data_end);
    for (uint64_t off = a; off < b;) {
      const uint64_t pba = (off - sb.data_offset) >> s.block_shift;
      bad.push_back(pba);
      off = sb.data_offset + (pba + 1) * sb.block_size;
    }
  }
  s.bad.Add(bad);
  return meta;
}

std::string Advice() {
  return "; the image cannot be used safely: restore it from a backup";
}

}  // namespace

Status Image::State::CheckMedia() {
  // A platform that cannot read the list (no region found, no libndctl
  // access) knows of no bad range; reads still turn poison into EIO.
  auto raw = m.BadBlocks();
  if (raw.ok()) {
    std::vector<std::string> meta = Classify(*this, *raw);
    if (!meta.empty()) {
      return IoError("image " + m.info().path + ": " + meta.front() + Advice(),
                     EIO);
    }
  }
  // Recovery reads the redo records and the volume table through plain
  // loads: meet their poison here, as an error (they are small).
  uint8_t buf[kPage];
  for (uint64_t off = sb.lane_offset; off < sb.map_offset; off += kPage) {
    const size_t n = std::min<uint64_t>(kPage, sb.map_offset - off);
    const void* fault = nullptr;
    if (!TryGuardedCopy(buf, m.bytes() + off, n, &fault)) {
      const uint64_t at =
          static_cast<uint64_t>(static_cast<const uint8_t*>(fault) - m.bytes());
      return IoError("image " + m.info().path + ": the " + RegionOf(sb, at) +
                         " (image byte " + std::to_string(at) +
                         ") lies on a bad block of the media" + Advice(),
                     EIO);
    }
  }
  return Status::Ok();
}

std::vector<std::string> Image::State::RefreshBadBlocks() {
  auto raw = m.BadBlocks();
  if (!raw.ok()) return {};
  return Classify(*this, *raw);
}

void Image::State::RetireBlock(uint64_t pba) {
  StoreRef(pba, image::kRefRetired);
  // Durable before the block could be handed out (it never will be now).
  m.Persist(&ref[pba], sizeof ref[pba]);
}

void Image::State::RetireFreeBadBlocks() {
  if (!writable || !bad.any()) return;
  for (uint64_t pba : bad.List()) {
    if (LoadRef(pba) == 0) RetireBlock(pba);
  }
}

std::vector<BadRange> Image::State::MediaErrors() const {
  std::vector<BadRange> out;
  if (!bad.any()) return out;
  const std::vector<uint64_t> list = bad.List();
  for (uint32_t v = 0; v < sb.max_volumes; v++) {
    if (!vols[v].live) continue;
    bool extend = false;  // out.back() is this volume's and ends at lba
    for (uint64_t lba = 0; lba < sb.virtual_blocks; lba++) {
      const uint64_t e = LoadEntry(v, lba);
      const bool hit =
          e != 0 && EntryOk(e) &&
          std::binary_search(list.begin(), list.end(), image::EntryPba(e));
      if (!hit) {
        extend = false;
        continue;
      }
      const uint64_t off = lba * sb.block_size;
      const uint64_t len =
          std::min<uint64_t>(sb.block_size, sb.virtual_size - off);
      if (extend) {
        out.back().length += len;
      } else {
        out.push_back({vols[v].name, off, len});
        extend = true;
      }
    }
  }
  return out;
}

void Image::State::NoteFault(const void* addr) const {
  const auto* p = static_cast<const uint8_t*>(addr);
  if (p < data || p >= data + sb.data_blocks * sb.block_size) return;
  bad.Add(static_cast<uint64_t>(p - data) >> block_shift);
}

Status Image::State::ReadError(uint32_t slot, uint64_t lba,
                               uint64_t pba) const {
  const uint64_t a = lba * sb.block_size;
  const uint64_t b = std::min<uint64_t>(a + sb.block_size, sb.virtual_size);
  if (!bad.Contains(pba)) {
    return IoError("image " + m.info().path +
                       ": memory fault in the caller's buffer while reading "
                       "guest bytes " +
                       Span(a, b),
                   EFAULT);
  }
  return IoError("image " + m.info().path + ", volume '" + vols[slot].name +
                     "': guest bytes " + Span(a, b) +
                     " lie on a bad block of the media (data block " +
                     std::to_string(pba) +
                     ") and cannot be read; rewrite the range or restore it "
                     "from a backup; 'daxstore image check' lists the "
                     "affected ranges",
                 EIO);
}

Status Image::State::PartialWriteError(uint32_t slot, uint64_t lba) const {
  const uint64_t a = lba * sb.block_size;
  const uint64_t b = std::min<uint64_t>(a + sb.block_size, sb.virtual_size);
  return IoError("image " + m.info().path + ", volume '" + vols[slot].name +
                     "': cannot write part of guest bytes " + Span(a, b) +
                     ": they lie on a bad block of the media, so the rest of "
                     "the block cannot be read; write all of " +
                     Span(a, b) + " to replace it, or restore it from a backup",
                 EIO);
}

}  // namespace daxstore
