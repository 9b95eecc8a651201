// Check: verify (and optionally repair) every metadata invariant.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <unordered_map>

#include "image/engine.h"

namespace daxstore {

using image::EntryPba;

namespace {

constexpr size_t kMaxListed = 100;

class Findings {
 public:
  explicit Findings(CheckReport& r) : r_(r) {}
  ~Findings() {
    if (dropped_) {
      r_.findings.push_back("... and " + std::to_string(dropped_) +
                            " more findings");
    }
  }
  void Add(std::string s) {
    if (r_.findings.size() < kMaxListed) {
      r_.findings.push_back(std::move(s));
    } else {
      dropped_++;
    }
  }
  bool any() const { return !r_.findings.empty() || dropped_; }

 private:
  CheckReport& r_;
  uint64_t dropped_ = 0;
};

// Reports progress in about 256 steps of `total` work units.
class Ticker {
 public:
  Ticker(const Image::CheckProgress& f, uint64_t total)
      : f_(f), total_(total), step_(std::max<uint64_t>(1, total / 256)) {
    if (f_) f_(0, total_);
  }
  // Adds n units done.
  void Add(uint64_t n) {
    done_ += n;
    if (f_ && done_ >= next_) {
      f_(done_, total_);
      reported_ = done_;
      next_ = done_ + step_;
    }
  }
  // Reports done == total unless the last report did.
  void Finish() {
    if (f_ && reported_ != total_) f_(total_, total_);
  }

 private:
  const Image::CheckProgress& f_;
  uint64_t total_, step_, done_ = 0, next_ = 0, reported_ = 0;
};

// The guest LBAs (logical blocks) of image block `block` of a volume.
LbaRange RangeOf(const Image::State& s, const std::string& volume,
                 uint64_t block) {
  const uint64_t per = s.sb.block_size / s.sb.logical_block_size;
  const uint64_t total = s.sb.virtual_size / s.sb.logical_block_size;
  const uint64_t lba = block * per;
  return {volume, lba, std::min(per, total - lba)};
}

std::string Describe(const LbaRange& r) {
  return "volume '" + r.volume + "' LBA " + std::to_string(r.lba) +
         (r.count > 1 ? "-" + std::to_string(r.lba + r.count - 1) : "");
}

std::string VolumeName(const Image::State& s, uint64_t slot) {
  if (slot < s.sb.max_volumes && s.vols[slot].live) return s.vols[slot].name;
  return "slot " + std::to_string(slot);
}

// Appends r, merged with the last range when they touch.
void AddRange(std::vector<LbaRange>& out, const LbaRange& r) {
  if (!out.empty() && out.back().volume == r.volume &&
      out.back().lba + out.back().count == r.lba) {
    out.back().count += r.count;
    return;
  }
  out.push_back(r);
}

// What recovery will do with lane `lane`'s valid record, and the refcounts
// it will leave (into `want`, applied in lane order as Recover does).
PendingRecord Pending(const Image::State& s, uint32_t lane,
                      const image::RedoRecord& r,
                      std::unordered_map<uint64_t, uint32_t>& want) {
  const uint32_t slot = static_cast<uint32_t>(r.volume);
  PendingRecord p;
  p.lane = lane;
  p.range = RangeOf(s, VolumeName(s, slot), r.lba);
  const uint64_t now = s.LoadEntry(slot, r.lba);
  const bool has_new = image::EntryPresent(r.new_entry);
  const bool has_old = image::EntryPresent(r.old_entry);
  if (now == r.new_entry) {
    p.action = "redo";
    if (has_new) want[EntryPba(r.new_entry)] = r.ref_new;
    if (has_old) want[EntryPba(r.old_entry)] = r.ref_old_after;
  } else if (now == r.old_entry) {
    p.action = "undo";
    if (has_new) want[EntryPba(r.new_entry)] = r.ref_new - 1;
    if (has_old) want[EntryPba(r.old_entry)] = r.ref_old_after + 1;
  } else {
    p.action = "none";
  }
  return p;
}

// "3-5, 9, 12-13": block numbers, sorted, runs merged, at most 32 runs.
std::string BlockList(const std::vector<uint64_t>& blocks) {
  std::string out;
  size_t runs = 0;
  for (size_t i = 0; i < blocks.size();) {
    size_t j = i;
    while (j + 1 < blocks.size() && blocks[j + 1] == blocks[j] + 1) j++;
    if (runs == 32) {
      out += " and more";
      break;
    }
    out += (runs++ ? ", " : "") + std::to_string(blocks[i]);
    if (j > i) out += "-" + std::to_string(blocks[j]);
    i = j + 1;
  }
  return out;
}

}  // namespace

Result<CheckReport> Image::Check(bool repair, const CheckProgress& progress) {
  return Check(repair ? CheckRepair::kAll : CheckRepair::kNone, progress);
}

Result<CheckReport> Image::Check(CheckRepair level,
                                 const CheckProgress& progress) {
  State& s = *s_;
  const bool repair = level != CheckRepair::kNone;
  const bool repair_all = level == CheckRepair::kAll;
  if (repair && !s.writable) {
    return InvalidArgument(s.m.info().path +
                           " is open read-only; cannot repair");
  }
  const Mapping& m = s.m;
  // Kept records are part of normal operation, not findings.
  if (s.writable) s.RetireAll();
  CheckReport report;
  report.logical_block_size = s.sb.logical_block_size;
  bool wrote = false;
  {
    Findings f(report);
    if (!s.primary_damage.empty() && !s.primary_restored) {
      // Only a read-only open leaves it on media (it cannot repair).
      report.primary_superblock_damage = s.primary_damage;
      f.Add("the primary superblock is damaged (" + s.primary_damage +
            "); the image is read through the backup superblock");
    } else if (!s.primary_damage.empty() && repair) {
      // The read-write open this repair runs in rewrote it.
      report.primary_superblock_damage = s.primary_damage;
      report.primary_superblock_restored = true;
      f.Add("rewrote the damaged primary superblock (" + s.primary_damage +
            ") from the backup");
      report.repaired = true;
    }
    image::Superblock backup;
    DAXSTORE_RETURN_IF_ERROR(
        m.Read(s.sb.backup_offset, &backup, sizeof backup));
    if (std::memcmp(&backup, &s.sb, sizeof backup) != 0) {
      f.Add("backup superblock differs from the primary");
      if (repair) {
        m.MemcpyPersist(m.bytes() + s.sb.backup_offset, &s.sb, sizeof s.sb);
        wrote = true;
      }
    }
    // Refcounts as recovery will leave them, where pending records change
    // them (a read-only check of a crashed image).
    std::unordered_map<uint64_t, uint32_t> want;
    // Version 5: the records recovery redoes, in its order (Recover
    // planned them); the ones it skips change nothing.
    for (const Image::State::Planned& pl : s.plan) {
      if (!pl.redo) continue;
      const image::RedoRecord& r = *pl.rec;
      PendingRecord p;
      p.lane = pl.lane;
      p.range = RangeOf(s, VolumeName(s, image::RecordSlot(r)), r.lba);
      p.action = "redo";
      if (image::EntryPresent(r.new_entry)) {
        want[EntryPba(r.new_entry)] = r.ref_new;
      }
      if (image::EntryPresent(r.old_entry)) {
        want[EntryPba(r.old_entry)] = r.ref_old_after;
      }
      f.Add("lane " + std::to_string(pl.lane) + " holds a write to " +
            Describe(p.range) +
            " that needs crash recovery (redo; the guest keeps reading what "
            "it reads now)");
      report.pending.push_back(std::move(p));
    }
    const bool v5 = s.sb.version >= image::kOneFenceVersion;
    const uint32_t slots = v5 ? image::kLaneRecords : 1;
    for (uint32_t i = 0; i < s.sb.lanes * slots; i++) {
      image::RedoRecord& rec = s.lanes[i / slots].record[i % slots];
      if (rec.valid == 0) continue;
      if (v5 && !s.writable && s.inspect) continue;  // planned above
      if (std::find(s.pending.begin(), s.pending.end(), i / slots) !=
          s.pending.end()) {
        PendingRecord p = Pending(s, i / slots, rec, want);
        f.Add("lane " + std::to_string(i / slots) + " holds a write to " +
              Describe(p.range) + " that needs crash recovery (" + p.action +
              "; the guest keeps reading what it reads now)");
        report.pending.push_back(std::move(p));
        continue;
      }
      f.Add("lane " + std::to_string(i / slots) +
            " holds an unreplayed record");
      if (repair) {
        rec.checksum = 0;
        rec.valid = 0;
        m.Persist(&rec, sizeof rec);
        wrote = true;
      }
    }
    if (s.intent->valid != 0) {
      f.Add("a volume operation is pending");
      if (repair) {
        s.intent->checksum = 0;
        s.intent->valid = 0;
        m.Persist(s.intent, sizeof *s.intent);
        wrote = true;
      }
    }
    // Damaged volume table entries: kAll drops them, but rebuilds the
    // default volume's (without it the image cannot be opened by path).
    std::vector<uint64_t> orphans;  // blocks the dropped entries' maps name
    for (uint32_t v = 0; v < image::kMaxVolumes; v++) {
      if (!s.vols[v].damaged) continue;
      DamagedVolume d;
      d.slot = v;
      d.name = s.vols[v].name;
      d.damage = s.vols[v].damage;
      f.Add("volume table entry " + std::to_string(v) + " ('" + d.name +
            "') is damaged: " + d.damage +
            (v == 0 ? "; 'daxstore image check --repair=all' rebuilds it "
                      "as a writable volume, keeping its data"
                    : "; 'daxstore image check --repair=all' drops it"));
      if (repair_all && v == 0) {
        image::Volume nv;
        nv.name = s.FindVolume("base") < 0 ? "base" : "base-rebuilt";
        for (int i = 2; s.FindVolume(nv.name) >= 0; i++) {
          nv.name = "base-rebuilt-" + std::to_string(i);
        }
        nv.created_unix_ns = static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count());
        const uint32_t handles = s.vols[0].handles;
        s.WriteEntry(0, nv);  // durable: its map is validated below
        s.vols[0].handles = handles;
        d.rebuilt = true;
        d.rebuilt_as = nv.name;
        f.Add("rebuilt volume table entry 0 as the writable volume '" +
              nv.name + "'; its map is checked like any other");
        wrote = true;
      }
      if (repair_all && v != 0) {
        for (uint64_t lba = 0;
             v < s.sb.max_volumes && lba < s.sb.virtual_blocks; lba++) {
          const uint64_t e = s.LoadEntry(v, lba);
          if (e && s.EntryOk(e)) orphans.push_back(EntryPba(e));
        }
        std::memset(&s.table[v], 0, sizeof s.table[v]);
        // The entry is gone (durable) before any refcount drops.
        m.Persist(&s.table[v], sizeof s.table[v]);
        s.vols[v] = image::Volume{};
        d.dropped = true;
        wrote = true;
      }
      report.damaged_volumes.push_back(std::move(d));
    }
    std::vector<uint32_t> count(s.sb.data_blocks, 0);
    uint32_t live = 0;
    for (uint32_t v = 0; v < s.sb.max_volumes; v++) {
      live += s.vols[v].live || s.vols[v].damaged;
    }
    Ticker tick(progress, live * s.sb.virtual_blocks + s.sb.data_blocks);
    for (uint32_t v = 0; v < s.sb.max_volumes; v++) {
      if (!s.vols[v].live && !s.vols[v].damaged) continue;
      uint64_t* map = s.MapOf(v);
      for (uint64_t lba = 0; lba < s.sb.virtual_blocks; lba++) {
        if ((lba & 4095) == 4095) tick.Add(4096);
        uint64_t e = s.LoadEntry(v, lba);
        if (e == 0) continue;
        if (s.vols[v].damaged) {
          // Its blocks stay held (reported above, not entry by entry).
          if (s.EntryOk(e) && count[EntryPba(e)] != UINT32_MAX) {
            count[EntryPba(e)]++;
          }
          continue;
        }
        Status st = s.ValidateEntry(lba, e);
        if (!st.ok()) {
          report.bad_entries++;
          const LbaRange r = RangeOf(s, s.vols[v].name, lba);
          f.Add(Describe(r) + ": " + st.message());
          AddRange(report.dropped, r);
          if (repair_all) {
            std::atomic_ref<uint64_t>(map[lba]).store(0);
            m.Flush(&map[lba], sizeof map[lba]);
            wrote = true;
          }
          continue;
        }
        report.mapped_blocks++;
        uint32_t& c = count[EntryPba(e)];
        if (c != UINT32_MAX) c++;
      }
      tick.Add(s.sb.virtual_blocks % 4096);
    }
    // A damaged entry's data may sit in a leaked block: only kAll, which
    // drops those entries, frees leaked blocks then.
    const bool free_leaks = repair_all || (repair && report.bad_entries == 0);
    for (uint64_t pba = 0; pba < s.sb.data_blocks; pba++) {
      if ((pba & 4095) == 4095) tick.Add(4096);
      auto w = want.find(pba);
      uint32_t ref = w != want.end() ? w->second : s.LoadRef(pba);
      uint32_t c = count[pba];
      if (ref == c || (ref == image::kRefRetired && c == 0)) continue;
      std::string b = "data block " + std::to_string(pba) + ": refcount " +
                      std::to_string(ref) + ", ";
      bool fix = free_leaks;
      if (c == 0) {
        report.leaked_blocks++;
        f.Add(b + "but no map entry points at it (leaked)");
      } else if (c > ref) {
        report.overcommitted_blocks++;
        f.Add(b + "but " + std::to_string(c) +
              " map entries point at it (used twice)");
        fix = repair_all;
      } else {
        report.leaked_blocks++;
        f.Add(b + "but only " + std::to_string(c) + " map entries use it");
      }
      if (fix) {
        s.StoreRef(pba, c);
        m.Flush(&s.ref[pba], sizeof s.ref[pba]);
        wrote = true;
      }
    }
    tick.Add(s.sb.data_blocks % 4096);
    if (!orphans.empty()) {
      std::sort(orphans.begin(), orphans.end());
      orphans.erase(std::unique(orphans.begin(), orphans.end()), orphans.end());
      std::vector<uint64_t> freed;
      for (uint64_t pba : orphans) {
        if (count[pba] == 0) freed.push_back(pba);
      }
      for (DamagedVolume& d : report.damaged_volumes) {
        if (!d.dropped) continue;
        f.Add("dropped volume table entry " + std::to_string(d.slot) + " ('" +
              d.name + "'); freed " + std::to_string(freed.size()) +
              " data block(s) only it referenced" +
              (freed.empty() ? "" : ": " + BlockList(freed)));
        d.freed_blocks = freed;  // every dropped entry's together
      }
    } else {
      for (const DamagedVolume& d : report.damaged_volumes) {
        if (!d.dropped) continue;
        f.Add("dropped volume table entry " + std::to_string(d.slot) + " ('" +
              d.name + "'); it referenced no data block of its own");
      }
    }
    for (std::string& line : s.RefreshBadBlocks()) f.Add(std::move(line));
    report.media_errors = s.MediaErrors();
    tick.Finish();
    if (wrote) {
      // Every repaired entry and refcount is durable before blocks are
      // handed out again from the recounted free space.
      m.Drain();
      s.ResetFreeSpace();
      report.repaired = true;
    }
    if (s.corrupt.load(std::memory_order_acquire)) {
      const bool left = repair_all ? !report.damaged_volumes.empty() &&
                                         !report.damaged_volumes[0].repaired()
                                   : report.corrupt();
      report.corrupt_flag = true;
      f.Add(
          "the image is flagged corrupt (a write met an inconsistency): "
          "writes fail until a repair clears the flag");
      if (repair && !left) {
        // The repairs above are durable (drained) before the flag clears.
        s.StoreCorruptFlag(false);
        f.Add("cleared the corrupt flag: the image is consistent");
        report.corrupt_flag_cleared = true;
        report.repaired = true;
      }
    }
  }
  return report;
}

}  // namespace daxstore
