// Volumes: snapshots and clones sharing data blocks, and the crash-atomic
// volume operations (protocol in format.h, "Volumes").
#include <algorithm>
#include <chrono>
#include <cstring>
#include <mutex>
#include <shared_mutex>

#include "image/engine.h"

namespace daxstore {

using image::EntryPba;
using image::EntryPresent;
using image::VolumeEntry;
using image::VolumeIntent;

namespace {

// Flushes refcounts [lo, hi] in one call: one msync on page-granular
// mappings instead of one per block.
void FlushRefs(const Image::State& s, uint64_t lo, uint64_t hi) {
  if (lo <= hi) s.m.Flush(&s.ref[lo], (hi - lo + 1) * sizeof *s.ref);
}

uint64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void WriteIntent(Image::State& s, uint64_t slot) {
  VolumeIntent in{};
  in.valid = image::kIntentValid;
  in.seq = s.intent->seq + 1;
  in.slot = slot;
  image::SealIntent(in);
  std::memcpy(s.intent, &in, sizeof in);
  // The intent is durable before the volume table, a map or a refcount
  // changes.
  s.m.Persist(s.intent, sizeof in);
}

void ClearIntent(Image::State& s) {
  s.intent->checksum = 0;
  s.intent->valid = 0;
  // The settled operation is durable (callers drained) before this clear.
  s.m.Persist(s.intent, sizeof *s.intent);
}

void ZeroEntry(Image::State& s, uint32_t slot) {
  std::memset(&s.table[slot], 0, sizeof s.table[slot]);
  s.m.Persist(&s.table[slot], sizeof s.table[slot]);
  s.vols[slot] = image::Volume{};
  s.CountVolumes();
}

}  // namespace

namespace {

VolumeEntry MakeVolumeEntry(const image::Volume& v) {
  VolumeEntry e{};
  e.state = image::kVolumeLive;
  e.flags = v.snapshot ? image::kVolumeSnapshot : 0;
  e.created_unix_ns = v.created_unix_ns;
  std::memcpy(e.name, v.name.data(), std::min(v.name.size(), image::kNameMax));
  std::memcpy(e.parent, v.parent.data(),
              std::min(v.parent.size(), image::kNameMax));
  std::memcpy(e.group, v.group.data(),
              std::min(v.group.size(), image::kNameMax));
  image::SealVolume(e);
  return e;
}

}  // namespace

void Image::State::WriteEntry(uint32_t slot, const image::Volume& v) {
  const VolumeEntry e = MakeVolumeEntry(v);
  std::memcpy(&table[slot], &e, sizeof e);
  m.Persist(&table[slot], sizeof e);
  vols[slot] = v;
  vols[slot].live = true;
  vols[slot].handles = 0;
  CountVolumes();
}

void Image::State::CountVolumes() {
  writable_volumes = 0;
  for (const image::Volume& v : vols) writable_volumes += v.live && !v.snapshot;
}

Status Image::State::LoadVolumes() {
  for (uint32_t i = 0; i < image::kMaxVolumes; i++) {
    const VolumeEntry& e = table[i];
    vols[i] = image::Volume{};
    if (image::VolumeFree(e)) continue;
    std::string problem = image::VolumeEntryProblem(e, i, sb.max_volumes);
    if (!problem.empty()) {
      // Costs this volume only: the others open as usual.
      vols[i].damaged = true;
      vols[i].damage = std::move(problem);
      vols[i].name = image::Printable(e.name, sizeof e.name);
      continue;
    }
    vols[i].live = true;
    vols[i].snapshot = e.flags & image::kVolumeSnapshot;
    vols[i].name = e.name;
    vols[i].parent = e.parent;
    vols[i].group = e.group;
    vols[i].created_unix_ns = e.created_unix_ns;
  }
  CountVolumes();
  return Status::Ok();
}

Status Image::State::VolumeUnusable(uint32_t slot) const {
  const std::string where = "image " + m.info().path + ": ";
  if (vols[slot].damaged) {
    return Corruption(where + "the volume table entry of " +
                      (slot == 0 ? std::string("the default volume")
                                 : "slot " + std::to_string(slot)) +
                      " is damaged (" + vols[slot].damage +
                      "); open another volume by name, and run 'daxstore "
                      "image check " +
                      m.info().path + "' to list the damage");
  }
  return Corruption(where +
                    "the default volume is missing from the volume table");
}

int Image::State::FindVolume(const std::string& name) const {
  for (uint32_t i = 0; i < sb.max_volumes; i++) {
    if (vols[i].live && vols[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

uint64_t Image::State::Recount() {
  std::vector<uint32_t> count(sb.data_blocks, 0);
  for (uint32_t v = 0; v < sb.max_volumes; v++) {
    // A damaged entry's blocks stay held until Check drops the entry.
    if (image::VolumeFree(table[v])) continue;
    const uint64_t* map = MapOf(v);
    for (uint64_t lba = 0; lba < sb.virtual_blocks; lba++) {
      uint64_t e = map[lba];
      if (!ValidateEntry(lba, e).ok() || e == 0) continue;
      uint32_t& c = count[EntryPba(e)];
      if (c != UINT32_MAX) c++;
    }
  }
  uint64_t changed = 0, lo = UINT64_MAX, hi = 0;
  for (uint64_t pba = 0; pba < sb.data_blocks; pba++) {
    if (LoadRef(pba) == count[pba]) continue;
    if (LoadRef(pba) == image::kRefRetired && count[pba] == 0) continue;
    StoreRef(pba, count[pba]);
    lo = std::min(lo, pba);
    hi = pba;
    changed++;
  }
  FlushRefs(*this, lo, hi);
  m.Drain();
  return changed;
}

Status Image::State::SettleIntent() {
  if (intent->valid == 0) return Status::Ok();
  if (image::IntentRewrite(*intent)) {
    if (intent->slot >= sb.max_volumes) {
      return Corruption("image " + m.info().path +
                        ": the pending volume rewrite names slot " +
                        std::to_string(intent->slot));
    }
    if (!writable) {
      return Unsupported("image " + m.info().path +
                         ": a volume change was interrupted and needs crash "
                         "recovery: run 'daxstore image check --repair=leaks " +
                         m.info().path +
                         "' (a read-write open finishes it; no data is lost)");
    }
    // The staged entry was durable before the intent (SetGroup step 1).
    const uint64_t slot = intent->slot;
    std::memcpy(&table[slot], staged, sizeof *staged);
    // The entry is durable before the intent is cleared.
    m.Persist(&table[slot], sizeof table[slot]);
    ClearIntent(*this);
    recovered++;
    return Status::Ok();
  }
  if (!image::IntentValid(*intent)) {
    // Torn while being written: nothing it covers had changed yet.
    if (writable) ClearIntent(*this);
    return Status::Ok();
  }
  if (intent->slot == 0 || intent->slot >= sb.max_volumes) {
    return Corruption("image " + m.info().path +
                      ": the pending volume operation names slot " +
                      std::to_string(intent->slot));
  }
  if (!writable) {
    return Unsupported("image " + m.info().path +
                       ": a volume operation was interrupted and needs crash "
                       "recovery: run 'daxstore image check --repair=leaks " +
                       m.info().path +
                       "' (a read-write open finishes it; no data is lost)");
  }
  // Rolls a half-made snapshot/clone back and a half-done delete forward.
  ZeroEntry(*this, static_cast<uint32_t>(intent->slot));
  Recount();
  ClearIntent(*this);
  recovered++;
  return Status::Ok();
}

Status Image::State::CopyVolume(uint32_t src, const image::Volume& v) {
  if (!writable) {
    return InvalidArgument(m.info().path + " is open read-only");
  }
  if (corrupt.load(std::memory_order_acquire)) return CorruptError();
  if (!image::ValidVolumeName(v.name)) {
    return InvalidArgument("volume name '" + v.name +
                           "' must be 1 to 63 characters of A-Z a-z 0-9 . _ -");
  }
  if (FindVolume(v.name) >= 0) {
    return Busy("image " + m.info().path + " already has a volume named '" +
                v.name + "'; pick another name or delete it first");
  }
  int dst = -1;
  for (uint32_t i = 1; i < sb.max_volumes && dst < 0; i++) {
    // A damaged entry keeps its slot (and its map) until Check drops it.
    if (!vols[i].live && !vols[i].damaged) dst = static_cast<int>(i);
  }
  if (dst < 0) {
    return NoSpace("image " + m.info().path + ": all " +
                   std::to_string(sb.max_volumes) +
                   " volume slots are in use; delete a snapshot or clone, or "
                   "create the image with more max volumes");
  }
  const uint64_t* from = MapOf(src);
  // Outside these both maps read as holes: the copy has nothing to do
  // there (and on a sparse file leaves the new map sparse).
  const uint32_t dslot = static_cast<uint32_t>(dst);
  DAXSTORE_ASSIGN_OR_RETURN(auto from_stored, StoredLbas({src}));
  DAXSTORE_ASSIGN_OR_RETURN(auto stored, StoredLbas({src, dslot}));
  // Check first, so a damaged map fails before anything changes.
  for (auto [first, last] : from_stored) {
    for (uint64_t lba = first; lba < last; lba++) {
      DAXSTORE_RETURN_IF_ERROR(ValidateEntry(lba, from[lba]));
      if (from[lba] && LoadRef(EntryPba(from[lba])) >= UINT32_MAX - 1) {
        return Corruption("image " + m.info().path + ": data block " +
                          std::to_string(EntryPba(from[lba])) +
                          " has too many references");
      }
    }
  }
  // No kept record may name a refcount the copy changes.
  RetireAll();
  WriteIntent(*this, dst);
  uint64_t* to = MapOf(dst);
  uint64_t lo = UINT64_MAX, hi = 0;
  for (auto [first, last] : stored) {
    for (uint64_t lba = first; lba < last; lba++) {
      uint64_t e = from[lba];
      to[lba] = e;
      if (e == 0) continue;
      uint64_t pba = EntryPba(e);
      StoreRef(pba, LoadRef(pba) + 1);
      lo = std::min(lo, pba);
      hi = std::max(hi, pba);
    }
    m.Flush(to + first, (last - first) * sizeof *to);
  }
  FlushRefs(*this, lo, hi);
  // The new map and the bumped refcounts are durable before the entry
  // makes the volume live.
  m.Drain();
  image::Volume nv = v;
  nv.created_unix_ns = NowNs();
  WriteEntry(static_cast<uint32_t>(dst), nv);
  ClearIntent(*this);
  return Status::Ok();
}

Status Image::State::SetGroup(uint32_t slot, const std::string& group) {
  if (!writable) {
    return InvalidArgument(m.info().path + " is open read-only");
  }
  if (corrupt.load(std::memory_order_acquire)) return CorruptError();
  if (!group.empty() && !image::ValidVolumeName(group)) {
    return InvalidArgument("sharing group '" + group +
                           "' must be 1 to 63 characters of A-Z a-z 0-9 . _ -");
  }
  image::Volume nv = vols[slot];
  nv.group = group;
  const VolumeEntry e = MakeVolumeEntry(nv);
  std::memcpy(staged, &e, sizeof e);
  // The staged entry is durable before the intent names it.
  m.Persist(staged, sizeof e);
  VolumeIntent in{};
  in.valid = image::kIntentRewrite;
  in.seq = intent->seq + 1;
  in.slot = slot;
  image::SealIntent(in);
  std::memcpy(intent, &in, sizeof in);
  // The intent is durable before entry `slot` changes.
  m.Persist(intent, sizeof in);
  std::memcpy(&table[slot], &e, sizeof e);
  // The new entry is durable before the intent is cleared.
  m.Persist(&table[slot], sizeof e);
  ClearIntent(*this);
  vols[slot].group = group;
  return Status::Ok();
}

Status Image::State::RemoveVolume(uint32_t slot) {
  if (!writable) {
    return InvalidArgument(m.info().path + " is open read-only");
  }
  if (corrupt.load(std::memory_order_acquire)) return CorruptError();
  const uint64_t* map = MapOf(slot);
  DAXSTORE_ASSIGN_OR_RETURN(auto stored, StoredLbas({slot}));
  for (auto [first, last] : stored) {
    for (uint64_t lba = first; lba < last; lba++) {
      DAXSTORE_RETURN_IF_ERROR(ValidateEntry(lba, map[lba]));
      if (map[lba] && LoadRef(EntryPba(map[lba])) == 0) {
        return MarkCorrupt(Corruption("image " + m.info().path +
                                      ": data block " +
                                      std::to_string(EntryPba(map[lba])) +
                                      " is mapped but its refcount is 0"));
      }
    }
  }
  // No kept record may name a refcount the delete changes.
  RetireAll();
  WriteIntent(*this, slot);
  // The entry is gone (durable) before any refcount drops.
  ZeroEntry(*this, slot);
  uint64_t lo = UINT64_MAX, hi = 0;
  for (auto [first, last] : stored) {
    for (uint64_t lba = first; lba < last; lba++) {
      uint64_t e = map[lba];
      if (e == 0) continue;
      uint64_t pba = EntryPba(e);
      StoreRef(pba, LoadRef(pba) - 1);
      lo = std::min(lo, pba);
      hi = std::max(hi, pba);
    }
  }
  FlushRefs(*this, lo, hi);
  // The dropped refcounts are durable before the intent is cleared.
  m.Drain();
  ClearIntent(*this);
  // A fence or tracker of the deleted volume does not pass to a volume
  // that takes its slot later.
  tracking[slot].dirty.store(nullptr, std::memory_order_relaxed);
  tracking[slot].owner.reset();
  tracking[slot].fenced.store(false, std::memory_order_relaxed);
  // Freed blocks are found again when their groups are rescanned.
  ResetFreeSpace();
  return Status::Ok();
}

// --- the public API ---

Result<Image> Image::OpenVolume(const std::string& volume) const {
  std::unique_lock lock(s_->vol_mu);
  if (volume.empty() && !s_->vols[0].live) return s_->VolumeUnusable(0);
  int slot = s_->FindVolume(volume.empty() ? s_->vols[0].name : volume);
  if (slot < 0) {
    return NotFound("image " + s_->m.info().path + " has no volume '" + volume +
                    "'; list them with 'daxstore image list'");
  }
  s_->vols[slot].handles++;
  return Image(s_, static_cast<uint32_t>(slot));
}

const std::string& Image::volume() const { return s_->vols[vol_].name; }

bool Image::read_only() const {
  return !s_->writable || s_->vols[vol_].snapshot ||
         s_->corrupt.load(std::memory_order_acquire);
}

bool Image::corrupt() const {
  return s_->corrupt.load(std::memory_order_acquire);
}

Status Image::Snapshot(const std::string& name) {
  State& s = *s_;
  std::unique_lock lock(s.vol_mu);
  auto lanes = s.LockAllLanes();  // no write in flight
  DAXSTORE_RETURN_IF_ERROR(s.VerifyRefs());
  image::Volume v;
  v.snapshot = true;
  v.name = name;
  v.parent = s.vols[vol_].name;
  v.group = s.vols[vol_].group;  // the same content, the same tenant
  return s.CopyVolume(vol_, v);
}

Status Image::Clone(const std::string& snapshot, const std::string& name,
                    const std::string& group) {
  State& s = *s_;
  std::unique_lock lock(s.vol_mu);
  auto lanes = s.LockAllLanes();  // no write in flight
  DAXSTORE_RETURN_IF_ERROR(s.VerifyRefs());
  int src = s.FindVolume(snapshot);
  if (src < 0) {
    return NotFound("image " + s.m.info().path + " has no snapshot '" +
                    snapshot + "'; list volumes with 'daxstore image list'");
  }
  if (!s.vols[src].snapshot) {
    return InvalidArgument("'" + snapshot +
                           "' is not a snapshot; take a snapshot of it and "
                           "clone that");
  }
  if (!group.empty() && !image::ValidVolumeName(group)) {
    return InvalidArgument("sharing group '" + group +
                           "' must be 1 to 63 characters of A-Z a-z 0-9 . _ -");
  }
  image::Volume v;
  v.name = name;
  v.parent = snapshot;
  v.group = group;
  return s.CopyVolume(static_cast<uint32_t>(src), v);
}

Status Image::SetSharingGroup(const std::string& volume,
                              const std::string& group) {
  State& s = *s_;
  std::unique_lock lock(s.vol_mu);
  int slot = s.FindVolume(volume);
  if (slot < 0) {
    return NotFound("image " + s.m.info().path + " has no volume '" + volume +
                    "'; list volumes with 'daxstore image list'");
  }
  return s.SetGroup(static_cast<uint32_t>(slot), group);
}

Status Image::DeleteVolume(const std::string& name) {
  State& s = *s_;
  std::unique_lock lock(s.vol_mu);
  auto lanes = s.LockAllLanes();  // no write in flight
  DAXSTORE_RETURN_IF_ERROR(s.VerifyRefs());
  int slot = s.FindVolume(name);
  if (slot < 0) {
    return NotFound("image " + s.m.info().path + " has no volume '" + name +
                    "'; list volumes with 'daxstore image list'");
  }
  if (slot == 0) {
    return InvalidArgument("'" + name +
                           "' is the image's default volume and cannot be "
                           "deleted; delete the image instead");
  }
  if (s.vols[slot].handles) {
    return Busy("volume '" + name + "' of " + s.m.info().path + " has " +
                std::to_string(s.vols[slot].handles) +
                " open handle(s); close them first");
  }
  return s.RemoveVolume(static_cast<uint32_t>(slot));
}

Result<std::vector<VolumeInfo>> Image::Volumes() const {
  const State& s = *s_;
  std::shared_lock lock(s.vol_mu);
  std::vector<VolumeInfo> out;
  for (uint32_t i = 0; i < s.sb.max_volumes; i++) {
    const image::Volume& v = s.vols[i];
    if (!v.live && !v.damaged) continue;
    VolumeInfo info;
    info.name = v.name;
    if (v.damaged) {
      info.damaged = true;
      info.damage = v.damage;
      out.push_back(std::move(info));
      continue;
    }
    info.snapshot = v.snapshot;
    info.parent = v.parent;
    info.group = v.group;
    info.created_unix_ns = v.created_unix_ns;
    for (uint64_t lba = 0; lba < s.sb.virtual_blocks; lba++) {
      uint64_t e = s.LoadEntry(i, lba);
      if (!EntryPresent(e) || !s.ValidateEntry(lba, e).ok()) continue;
      info.mapped_blocks++;
      if (s.LoadRef(EntryPba(e)) == 1) info.unique_blocks++;
    }
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace daxstore
