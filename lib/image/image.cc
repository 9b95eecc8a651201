// Creating, formatting and opening images; Info.
#include <atomic>
#include <bit>
#include <chrono>
#include <cstring>
#include <mutex>
#include <shared_mutex>

#include "daxstore/size.h"
#include "image/engine.h"

namespace daxstore {

using image::kPage;
using image::Superblock;

namespace {

bool AllZero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (p[i]) return false;
  }
  return true;
}

Result<Superblock> ReadSuperblock(const Mapping& m, uint64_t offset) {
  Superblock sb;
  DAXSTORE_RETURN_IF_ERROR(m.Read(offset, &sb, sizeof sb));
  return sb;
}

}  // namespace

image::Lane& Image::State::MyLane() const {
  static std::atomic<uint32_t> next_slot{0};
  thread_local uint32_t slot = next_slot.fetch_add(1);
  return lanes[slot % sb.lanes];
}

std::vector<std::unique_lock<image::LaneLock>> Image::State::LockAllLanes()
    const {
  std::vector<std::unique_lock<image::LaneLock>> held;
  held.reserve(sb.lanes);
  for (uint32_t i = 0; i < sb.lanes; i++) held.emplace_back(lanes[i].mu);
  return held;
}

Image::State::~State() {
  if (writable && lanes) RetireAll();
}

void Image::State::Attach() {
  uint8_t* base = m.bytes();
  maps = reinterpret_cast<uint64_t*>(base + sb.map_offset);
  map_stride = sb.map_slot_bytes / sizeof(uint64_t);
  block_shift = static_cast<uint32_t>(std::countr_zero(sb.block_size));
  table = reinterpret_cast<image::VolumeEntry*>(base + sb.volume_offset);
  intent = reinterpret_cast<image::VolumeIntent*>(
      base + sb.volume_offset + image::kMaxVolumes * image::kVolumeEntry);
  staged = reinterpret_cast<image::VolumeEntry*>(
      base + sb.volume_offset + (image::kMaxVolumes + 1) * image::kVolumeEntry);
  ref = reinterpret_cast<uint32_t*>(base + sb.ref_offset);
  data = base + sb.data_offset;
  ngroups = (sb.data_blocks + image::kGroupBlocks - 1) / image::kGroupBlocks;
  groups = std::make_unique<image::Group[]>(ngroups);
  stripes = std::make_unique<image::Stripe[]>(image::kStripes);
  ref_locks = std::make_unique<image::RefLock[]>(image::kStripes);
  lanes = std::make_unique<image::Lane[]>(sb.lanes);
  for (uint32_t i = 0; i < sb.lanes; i++) {
    lanes[i].record = reinterpret_cast<image::RedoRecord*>(
        base + sb.lane_offset + i * image::kLaneSlot);
    lanes[i].group = uint64_t{i} * ngroups / sb.lanes;
  }
  next_group.store(sb.lanes < ngroups ? sb.lanes : 0);
}

// Caller holds vol_mu exclusive (or is the only user) and counted the
// handle in vols[slot].handles.
Image::Image(std::shared_ptr<State> s, uint32_t slot)
    : s_(std::move(s)), vol_(slot) {}
Image::Image(Image&&) noexcept = default;
Image& Image::operator=(Image&& o) noexcept {
  if (this != &o) {
    Image gone(std::move(*this));
    s_ = std::move(o.s_);
    vol_ = o.vol_;
  }
  return *this;
}
Image::~Image() {
  if (!s_) return;
  std::unique_lock lock(s_->vol_mu);
  s_->vols[vol_].handles--;
}

uint64_t Image::virtual_size() const { return s_->sb.virtual_size; }
uint32_t Image::block_size() const { return s_->sb.block_size; }
uint32_t Image::logical_block_size() const { return s_->sb.logical_block_size; }

Result<Image> Image::Create(const std::string& path, const ImageOptions& o,
                            MapOptions mo) {
  DAXSTORE_ASSIGN_OR_RETURN(Superblock want, image::ComputeLayout(o, 0));
  {
    // An existing image is refused before its file is grown (below).
    MapOptions look = mo;
    look.access = Access::kReadOnly;
    look.create_size = 0;
    look.lock = false;
    auto old = Mapping::Open(path, look);
    if (old.ok() && old->size() >= 2 * kPage) {
      auto sb = ReadSuperblock(*old, 0);
      if (sb.ok() && sb->magic == image::kMagic) {
        return Busy(path + " already holds a daxstore image; remove it first");
      }
    }
  }
  mo.access = Access::kReadWrite;
  mo.create_size = want.total_size;
  mo.lock = true;
  auto mapped = Mapping::Open(path, mo);
  if (!mapped.ok() && mapped.status().kind() == ErrorKind::kBusy) {
    return Busy(path + " is open in another process; close it first");
  }
  if (!mapped.ok()) return mapped.status();
  Mapping m = std::move(mapped).value();
  if (m.size() >= 2 * kPage) {
    auto old = ReadSuperblock(m, 0);
    if (old.ok() && old->magic == image::kMagic) {
      return Busy(path + " already holds a daxstore image; remove it first");
    }
  }
  return Format(std::move(m), o);
}

Result<Image> Image::Format(Mapping m, const ImageOptions& o) {
  if (m.info().access != Access::kReadWrite) {
    return InvalidArgument("cannot format " + m.info().path + " read-only");
  }
  auto laid = image::ComputeLayout(o, m.size());
  if (!laid.ok()) return laid.status().WithContext(m.info().path);
  Superblock sb = *laid;
  if (!o.allow_overcommit && sb.data_blocks < sb.virtual_blocks) {
    const uint64_t holds = sb.data_blocks * sb.block_size;
    return NoSpace(m.info().path + " holds " + FormatSizeHuman(holds) +
                   " of data blocks, less than the virtual size of " +
                   FormatSizeHuman(o.virtual_size) +
                   ": pick a size of at most " + FormatSizeHuman(holds) +
                   ", or allow overcommit (writes then fail with ENOSPC "
                   "once the data blocks run out)");
  }
  uint8_t* base = m.bytes();
  // An old superblock is gone before the metadata it describes changes.
  m.MemsetPersist(base, 0, kPage);
  // Zero lanes, volume table, map and refcounts; pages of a fresh sparse
  // file already read as zeros and are left untouched, and its holes are
  // not even read (a read would fill them in on tmpfs).
  auto data = m.DataRanges(kPage, sb.data_offset - kPage);
  if (!data.ok()) return data.status();
  for (const ByteRange& r : *data) {
    const uint64_t end = r.offset + r.length;
    for (uint64_t off = r.offset & ~(kPage - 1); off < end; off += kPage) {
      if (!AllZero(base + off, kPage)) {
        m.MemsetPersist(base + off, 0, kPage, kCopyNoDrain);
      }
    }
  }
  auto s = std::make_shared<State>(std::move(m));
  s->sb = sb;
  s->Attach();
  image::Volume base_volume;
  base_volume.name = "base";
  base_volume.created_unix_ns = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count());
  s->WriteEntry(0, base_volume);
  // Zeroed metadata, the volume table and the backup are durable before
  // the primary appears.
  s->m.MemcpyPersist(base + sb.backup_offset, &sb, sizeof sb);
  s->m.MemcpyPersist(base, &sb, sizeof sb);
  s->vols[0].handles = 1;
  return Image(std::move(s), 0);
}

Result<Image> Image::Open(const std::string& path, MapOptions mo) {
  return Open(path, "", std::move(mo));
}

Result<Image> Image::Open(const std::string& path, const std::string& volume,
                          MapOptions mo) {
  if (mo.create_size) return InvalidArgument("Open does not create images");
  mo.lock = true;
  auto m = Mapping::Open(path, mo);
  if (!m.ok() && m.status().kind() == ErrorKind::kBusy) {
    return Busy(path +
                " is open in another process; serve several volumes from "
                "one process with OpenVolume");
  }
  if (!m.ok()) return m.status();
  return Open(std::move(m).value(), volume);
}

Result<Image> Image::Open(Mapping m, const std::string& volume) {
  return OpenMapping(std::move(m), volume, /*inspect=*/false);
}

Result<CheckReport> Image::CheckReadOnly(
    const std::string& path, MapOptions mo,
    const std::function<void(uint64_t, uint64_t)>& progress) {
  mo.access = Access::kReadOnly;
  mo.create_size = 0;
  mo.lock = true;
  auto m = Mapping::Open(path, mo);
  if (!m.ok() && m.status().kind() == ErrorKind::kBusy) {
    return Busy(path +
                " is open read-write in another process; check it "
                "once that process has closed it");
  }
  if (!m.ok()) return m.status();
  DAXSTORE_ASSIGN_OR_RETURN(
      Image img, OpenMapping(std::move(m).value(), "", /*inspect=*/true));
  return img.Check(CheckRepair::kNone, progress);
}

Result<CheckReport> Image::Repair(
    const std::string& path, CheckRepair level, MapOptions mo,
    const std::function<void(uint64_t, uint64_t)>& progress,
    uint32_t* recovered) {
  if (level == CheckRepair::kNone) {
    return InvalidArgument("Repair needs a repair level; use CheckReadOnly");
  }
  mo.access = Access::kReadWrite;
  mo.create_size = 0;
  mo.lock = true;
  auto m = Mapping::Open(path, mo);
  if (!m.ok() && m.status().kind() == ErrorKind::kBusy) {
    return Busy(path +
                " is open in another process; repair it once that "
                "process has closed it");
  }
  if (!m.ok()) return m.status();
  DAXSTORE_ASSIGN_OR_RETURN(
      Image img, OpenMapping(std::move(m).value(), "", /*inspect=*/true));
  if (recovered) *recovered = img.s_->recovered;
  return img.Check(level, progress);
}

Result<Image> Image::OpenMapping(Mapping m, const std::string& volume,
                                 bool inspect) {
  const std::string path = m.info().path;
  const uint64_t size = m.size();
  if (size < 4 * kPage) {
    return NotFound(path + " is too small (" + std::to_string(size) +
                    " bytes) to be a daxstore image");
  }
  const bool writable = m.info().access == Access::kReadWrite;
  auto primary = ReadSuperblock(m, 0);
  if (!primary.ok()) {
    return IoError("image " + path +
                       ": the primary superblock (image bytes [0, 4096)) lies "
                       "on a bad block of the media; the image cannot be "
                       "used safely: restore it from a backup",
                   EIO);
  }
  Superblock sb = *primary;
  Status st = image::ValidateSuperblock(sb, size);
  if (!st.ok()) {
    DAXSTORE_ASSIGN_OR_RETURN(Superblock backup,
                              ReadSuperblock(m, image::BackupOffset(size)));
    Status bst = image::ValidateSuperblock(backup, size);
    if (!bst.ok()) {
      // An older or newer format: say so rather than "corrupt".
      if (st.kind() == ErrorKind::kUnsupported) return st.WithContext(path);
      // The primary is written last: without its magic the image was
      // never completed (or was wiped), whatever state the backup is in.
      if (st.kind() == ErrorKind::kNotFound) {
        return NotFound(path + ": " + st.message() + "; backup " +
                        bst.message());
      }
      return Corruption(path + ": primary " + st.message() + "; backup " +
                        bst.message());
    }
    sb = backup;
    // A crash inside Format or a superblock update can leave the primary
    // unwritten or torn: a read-write open restores it from the backup
    // (Check's repair says so); a read-only open leaves it for Check to
    // report.
    if (writable) m.MemcpyPersist(m.bytes(), &sb, sizeof sb);
  }
  auto s = std::make_shared<State>(std::move(m));
  if (!st.ok()) {
    s->primary_damage = st.message();
    s->primary_restored = writable;
  }
  s->sb = sb;
  s->writable = writable;
  s->corrupt = sb.flags & image::kFlagCorrupt;
  s->inspect = inspect && !writable;
  s->Attach();
  // Recovery reads and writes metadata: none of it may lie on a bad block.
  DAXSTORE_RETURN_IF_ERROR(s->CheckMedia());
  DAXSTORE_RETURN_IF_ERROR(s->Recover());
  if (writable && s->sb.version < image::kVersion) {
    // Recovery replays older records (their checksums too); writes from now
    // on leave records only a reader of this version understands.
    s->sb.version = image::kVersion;
    image::SealSuperblock(s->sb);
    uint8_t* base = s->m.bytes();
    // The backup is upgraded before the primary: a crash in between
    // leaves a valid old primary, and the next open upgrades again.
    s->m.MemcpyPersist(base + s->sb.backup_offset, &s->sb, sizeof s->sb);
    s->m.MemcpyPersist(base, &s->sb, sizeof s->sb);
  }
  DAXSTORE_RETURN_IF_ERROR(s->LoadVolumes());
  s->RetireFreeBadBlocks();
  int slot = volume.empty() ? 0 : s->FindVolume(volume);
  // A check reads every volume, whatever state the default one is in.
  if (slot == 0 && !s->vols[0].live && !inspect) {
    return s->VolumeUnusable(0);
  }
  if (slot < 0) {
    return NotFound("image " + path + " has no volume '" + volume +
                    "'; list them with 'daxstore image list'");
  }
  s->vols[slot].handles = 1;
  return Image(std::move(s), static_cast<uint32_t>(slot));
}

Result<ImageInfo> Image::Info() const {
  const State& s = *s_;
  ImageInfo info;
  info.path = s.m.info().path;
  info.virtual_size = s.sb.virtual_size;
  info.logical_block_size = s.sb.logical_block_size;
  info.block_size = s.sb.block_size;
  info.virtual_blocks = s.sb.virtual_blocks;
  info.data_blocks = s.sb.data_blocks;
  for (uint64_t pba = 0; pba < s.sb.data_blocks; pba++) {
    const uint32_t ref = s.LoadRef(pba);
    if (ref == image::kRefRetired) {
      info.retired_blocks++;
    } else if (ref) {
      info.allocated_blocks++;
    }
  }
  info.allocated_bytes = info.allocated_blocks * s.sb.block_size;
  info.metadata_bytes =
      s.sb.total_size - s.sb.data_blocks * uint64_t{s.sb.block_size};
  info.lanes = s.sb.lanes;
  info.recovered_records = s.recovered;
  info.corrupt = s.corrupt.load(std::memory_order_acquire);
  info.max_volumes = s.sb.max_volumes;
  std::shared_lock lock(s.vol_mu);
  for (uint32_t i = 0; i < image::kMaxVolumes; i++) {
    info.volumes += s.vols[i].live;
    info.damaged_volumes += s.vols[i].damaged;
  }
  return info;
}

}  // namespace daxstore
