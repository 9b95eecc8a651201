// Check: verify (and optionally repair) every metadata invariant.
#include <algorithm>
#include <cstring>

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

}  // namespace

Result<CheckReport> Image::Check(bool repair, const CheckProgress& progress) {
  State& s = *s_;
  if (repair && !s.writable) {
    return InvalidArgument(s.m.info().path +
                           " is open read-only; cannot repair");
  }
  const Mapping& m = s.m;
  // Kept records are part of normal operation, not findings.
  if (s.writable) s.RetireAll();
  CheckReport report;
  {
    Findings f(report);
    image::Superblock backup;
    DAXSTORE_RETURN_IF_ERROR(
        m.Read(s.sb.backup_offset, &backup, sizeof backup));
    if (std::memcmp(&backup, &s.sb, sizeof backup) != 0) {
      f.Add("backup superblock differs from the primary");
      if (repair) {
        m.MemcpyPersist(m.bytes() + s.sb.backup_offset, &s.sb, sizeof s.sb);
      }
    }
    for (uint32_t i = 0; i < s.sb.lanes; i++) {
      image::RedoRecord& rec = *s.lanes[i].record;
      if (rec.valid != 0) {
        f.Add("lane " + std::to_string(i) + " holds an unreplayed record");
        if (repair) {
          rec.checksum = 0;
          rec.valid = 0;
          m.Persist(&rec, sizeof rec);
        }
      }
    }
    if (s.intent->valid != 0) {
      f.Add("a volume operation is pending");
      if (repair) {
        s.intent->checksum = 0;
        s.intent->valid = 0;
        m.Persist(s.intent, sizeof *s.intent);
      }
    }
    std::vector<uint32_t> count(s.sb.data_blocks, 0);
    uint32_t live = 0;
    for (uint32_t v = 0; v < s.sb.max_volumes; v++) live += s.vols[v].live;
    Ticker tick(progress, live * s.sb.virtual_blocks + s.sb.data_blocks);
    for (uint32_t v = 0; v < s.sb.max_volumes; v++) {
      if (!s.vols[v].live) continue;
      uint64_t* map = s.MapOf(v);
      for (uint64_t lba = 0; lba < s.sb.virtual_blocks; lba++) {
        if ((lba & 4095) == 4095) tick.Add(4096);
        uint64_t e = s.LoadEntry(v, lba);
        if (e == 0) continue;
        Status st = s.ValidateEntry(lba, e);
        if (!st.ok()) {
          report.bad_entries++;
          f.Add("volume '" + s.vols[v].name + "': " + st.message());
          if (repair) {
            std::atomic_ref<uint64_t>(map[lba]).store(0);
            m.Flush(&map[lba], sizeof map[lba]);
          }
          continue;
        }
        report.mapped_blocks++;
        uint32_t& c = count[EntryPba(e)];
        if (c != UINT32_MAX) c++;
      }
      tick.Add(s.sb.virtual_blocks % 4096);
    }
    for (uint64_t pba = 0; pba < s.sb.data_blocks; pba++) {
      if ((pba & 4095) == 4095) tick.Add(4096);
      uint32_t ref = s.LoadRef(pba), c = count[pba];
      if (ref == c || (ref == image::kRefRetired && c == 0)) continue;
      std::string b = "data block " + std::to_string(pba) + ": refcount " +
                      std::to_string(ref) + ", ";
      if (c == 0) {
        report.leaked_blocks++;
        f.Add(b + "but no map entry points at it (leaked)");
      } else if (c > ref) {
        report.overcommitted_blocks++;
        f.Add(b + "but " + std::to_string(c) +
              " map entries point at it (used twice)");
      } else {
        report.leaked_blocks++;
        f.Add(b + "but only " + std::to_string(c) + " map entries use it");
      }
      if (repair) {
        s.StoreRef(pba, c);
        m.Flush(&s.ref[pba], sizeof s.ref[pba]);
      }
    }
    tick.Add(s.sb.data_blocks % 4096);
    for (std::string& line : s.RefreshBadBlocks()) f.Add(std::move(line));
    report.media_errors = s.MediaErrors();
    tick.Finish();
    if (repair && f.any()) {
      m.Drain();
      s.ResetFreeSpace();
      report.repaired = true;
    }
  }
  return report;
}

}  // namespace daxstore
