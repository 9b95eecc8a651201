// Layout computation and validation of the on-media structures.
#include "image/format.h"

#include <cstring>
#include <string>

namespace daxstore::image {

namespace {

uint64_t RoundUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
bool PowerOfTwo(uint64_t v) { return v && !(v & (v - 1)); }
uint64_t BlocksFor(uint64_t bytes, uint64_t bs) { return (bytes - 1) / bs + 1; }

Status Bad(const std::string& what) {
  return Corruption("image superblock: " + what);
}

// Fills every offset given sb's sizes, counts and data_blocks.
void Place(Superblock& sb) {
  sb.lane_offset = kPage;
  sb.volume_offset = sb.lane_offset + RoundUp(sb.lanes * kLaneSlot, kPage);
  sb.map_offset =
      sb.volume_offset + RoundUp((kMaxVolumes + 1) * kVolumeEntry, kPage);
  sb.map_slot_bytes = RoundUp(sb.virtual_blocks * 8, kPage);
  sb.ref_offset = sb.map_offset + sb.max_volumes * sb.map_slot_bytes;
  sb.data_offset = RoundUp(sb.ref_offset + RoundUp(sb.data_blocks * 4, kPage),
                           sb.block_size);
  sb.backup_offset = sb.data_offset + sb.data_blocks * sb.block_size;
  sb.total_size = sb.backup_offset + kPage;
}

}  // namespace

uint64_t Checksum(const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

void SealSuperblock(Superblock& sb) {
  sb.checksum = Checksum(&sb, offsetof(Superblock, checksum));
}

uint64_t RecordChecksum(const RedoRecord& r, uint32_t version) {
  constexpr size_t kWords = offsetof(RedoRecord, checksum) / 8;
  if (version < 4) return Checksum(&r, kWords * 8);
  uint64_t w[kWords];
  std::memcpy(w, &r, sizeof w);
  // Each step is a bijection of the running value, so changing any one
  // word changes the result; the final mix spreads every bit.
  uint64_t h = 0x6a09e667f3bcc909ull;
  for (uint64_t x : w) {
    h = (h ^ x) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
  }
  h ^= h >> 32;
  h *= 0xd6e8feb86659fd93ull;
  h ^= h >> 32;
  return h;
}

void SealRecord(RedoRecord& r) { r.checksum = RecordChecksum(r, kVersion); }

bool RecordValid(const RedoRecord& r, uint32_t version) {
  return r.valid == kRedoValid && r.checksum == RecordChecksum(r, version);
}

void SealVolume(VolumeEntry& v) {
  v.checksum = Checksum(&v, offsetof(VolumeEntry, checksum));
}

bool VolumeValid(const VolumeEntry& v) {
  return v.state == kVolumeLive &&
         v.checksum == Checksum(&v, offsetof(VolumeEntry, checksum)) &&
         v.name[kNameMax] == 0 && v.parent[kNameMax] == 0 && v.name[0];
}

bool VolumeFree(const VolumeEntry& v) {
  const auto* b = reinterpret_cast<const uint8_t*>(&v);
  for (size_t i = 0; i < sizeof v; i++) {
    if (b[i]) return false;
  }
  return true;
}

bool ValidVolumeName(std::string_view n) {
  if (n.empty() || n.size() > kNameMax) return false;
  for (char c : n) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return n != "." && n != "..";
}

std::string VolumeEntryProblem(const VolumeEntry& v, uint32_t slot,
                               uint32_t max_volumes) {
  if (v.state != kVolumeLive) return "its state word is damaged";
  if (v.checksum != Checksum(&v, offsetof(VolumeEntry, checksum))) {
    return "its checksum does not match";
  }
  if (slot >= max_volumes) {
    return "it lies past the image's " + std::to_string(max_volumes) +
           " volume slots";
  }
  const size_t name = strnlen(v.name, sizeof v.name);
  const size_t parent = strnlen(v.parent, sizeof v.parent);
  if (name > kNameMax || !ValidVolumeName({v.name, name})) {
    return "its name is not 1 to 63 characters of A-Z a-z 0-9 . _ -";
  }
  if (parent > kNameMax || (parent && !ValidVolumeName({v.parent, parent}))) {
    return "its parent name is not 1 to 63 characters of A-Z a-z 0-9 . _ -";
  }
  const size_t group = strnlen(v.group, sizeof v.group);
  if (group > kNameMax || (group && !ValidVolumeName({v.group, group}))) {
    return "its sharing group is not 1 to 63 characters of A-Z a-z 0-9 . _ -";
  }
  return "";
}

std::string Printable(const char* p, size_t n) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n && p[i]; i++) {
    const auto c = static_cast<unsigned char>(p[i]);
    if (c > ' ' && c <= '~' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

void SealIntent(VolumeIntent& i) {
  i.checksum = Checksum(&i, offsetof(VolumeIntent, checksum));
}

bool IntentRewrite(const VolumeIntent& i) {
  return i.valid == kIntentRewrite &&
         i.checksum == Checksum(&i, offsetof(VolumeIntent, checksum));
}

bool IntentValid(const VolumeIntent& i) {
  return i.valid == kIntentValid &&
         i.checksum == Checksum(&i, offsetof(VolumeIntent, checksum));
}

Result<Superblock> ComputeLayout(const ImageOptions& o, uint64_t available) {
  if (o.logical_block_size != 512 && o.logical_block_size != 4096) {
    return InvalidArgument("logical block size must be 512 or 4096, not " +
                           std::to_string(o.logical_block_size));
  }
  if (!PowerOfTwo(o.block_size) || o.block_size < 4096 ||
      o.block_size > (2u << 20)) {
    return InvalidArgument(
        "block size must be a power of two from 4096 to 2 MiB, not " +
        std::to_string(o.block_size));
  }
  if (o.virtual_size == 0 || o.virtual_size % o.logical_block_size) {
    return InvalidArgument("virtual size " + std::to_string(o.virtual_size) +
                           " must be a positive multiple of the logical "
                           "block size " +
                           std::to_string(o.logical_block_size));
  }
  if (o.lanes == 0 || o.lanes > kMaxLanes) {
    return InvalidArgument("lanes must be 1 to 1024, not " +
                           std::to_string(o.lanes));
  }
  Superblock sb{};
  sb.magic = kMagic;
  sb.version = kVersion;
  sb.header_size = sizeof(Superblock);
  sb.virtual_size = o.virtual_size;
  sb.logical_block_size = o.logical_block_size;
  sb.block_size = o.block_size;
  sb.virtual_blocks = BlocksFor(o.virtual_size, o.block_size);
  if (sb.virtual_blocks > kEntryPbaMask / o.block_size) {
    return InvalidArgument("virtual size too large");
  }
  sb.lanes = o.lanes;
  if (o.max_volumes == 0 || o.max_volumes > kMaxVolumes) {
    return InvalidArgument("max volumes must be 1 to 64, not " +
                           std::to_string(o.max_volumes));
  }
  sb.max_volumes = o.max_volumes;
  // Room for every volume slot to diverge completely (a golden image's
  // clones each rewrite what they need; the file stays sparse), plus one
  // spare block per lane, so a fully written image can still be
  // overwritten (writes go out of place).
  sb.data_blocks = o.data_blocks ? o.data_blocks
                                 : sb.virtual_blocks * o.max_volumes + o.lanes;
  if (available && !o.data_blocks) {
    // As many data blocks as fit: estimate, then step down until it fits.
    sb.data_blocks = 0;
    Place(sb);
    if (sb.total_size > available) {
      return NoSpace("a " + std::to_string(available) +
                     "-byte target cannot hold the image metadata (needs " +
                     std::to_string(sb.total_size) + " bytes)");
    }
    sb.data_blocks = (available - sb.total_size) / (o.block_size + 4);
    for (Place(sb); sb.total_size > available; Place(sb)) sb.data_blocks--;
  }
  if (sb.data_blocks > kEntryPbaMask / o.block_size) {
    return InvalidArgument("too many data blocks");
  }
  Place(sb);
  if (available && sb.total_size > available) {
    return NoSpace("the image needs " + std::to_string(sb.total_size) +
                   " bytes; the target has " + std::to_string(available));
  }
  if (available) {
    // The backup sits in the last page of the target, wherever that is.
    sb.backup_offset = BackupOffset(available);
    sb.total_size = available;
  }
  SealSuperblock(sb);
  return sb;
}

Status ValidateSuperblock(const Superblock& sb, uint64_t size) {
  if (sb.magic != kMagic) return NotFound("not a daxstore image (bad magic)");
  if (sb.version == 1) {
    return Unsupported(
        "image format version 1 was created by an older daxstore; export "
        "and re-import it");
  }
  if (sb.version < kOldestVersion || sb.version > kVersion) {
    return Unsupported("image format version " + std::to_string(sb.version) +
                       " is not supported (this build reads versions " +
                       std::to_string(kOldestVersion) + " to " +
                       std::to_string(kVersion) + "); use a newer daxstore");
  }
  if (sb.header_size != sizeof(Superblock)) return Bad("bad header size");
  if (sb.checksum != Checksum(&sb, offsetof(Superblock, checksum))) {
    return Bad("checksum mismatch");
  }
  if (sb.logical_block_size != 512 && sb.logical_block_size != 4096) {
    return Bad("logical block size " + std::to_string(sb.logical_block_size));
  }
  if (!PowerOfTwo(sb.block_size) || sb.block_size < 4096 ||
      sb.block_size > (2u << 20)) {
    return Bad("block size " + std::to_string(sb.block_size));
  }
  // Divisions only: a forged size must not overflow into a small layout.
  if (sb.virtual_size == 0 || sb.virtual_size % sb.logical_block_size ||
      sb.virtual_blocks != BlocksFor(sb.virtual_size, sb.block_size) ||
      sb.virtual_blocks > size / 8) {
    return Bad("virtual size/blocks inconsistent");
  }
  if (sb.lanes == 0 || sb.lanes > kMaxLanes) return Bad("lane count");
  if (sb.max_volumes == 0 || sb.max_volumes > kMaxVolumes ||
      sb.virtual_blocks > size / 8 / sb.max_volumes) {
    return Bad("volume count " + std::to_string(sb.max_volumes));
  }
  if (sb.data_blocks == 0 || sb.data_blocks > size / sb.block_size) {
    return Bad("data block count");
  }
  // Recompute where everything must be and compare.
  Superblock want = sb;
  Place(want);
  if (want.lane_offset != sb.lane_offset ||
      want.volume_offset != sb.volume_offset ||
      want.map_offset != sb.map_offset || want.ref_offset != sb.ref_offset ||
      want.map_slot_bytes != sb.map_slot_bytes ||
      want.data_offset != sb.data_offset) {
    return Bad("region offsets do not match the recorded sizes");
  }
  if (sb.total_size != size || sb.backup_offset != BackupOffset(size) ||
      sb.backup_offset < want.backup_offset) {
    return Bad("recorded size " + std::to_string(sb.total_size) +
               " does not match the " + std::to_string(size) +
               "-byte mapping (truncated or resized?)");
  }
  return Status::Ok();
}

}  // namespace daxstore::image
