// The content-sharing report (include/daxstore/sharing.h): every mapped
// block's data classified by content, XXH3-128 as the candidate filter and
// a byte comparison as the proof.
#include "image/sharing.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <shared_mutex>
#include <unordered_map>

#include "image/engine.h"

namespace daxstore {

using image::EntryPba;
using image::EntryPresent;

namespace image {
namespace {

struct Hash128 {
  size_t operator()(const XXH128_hash_t& h) const {
    return static_cast<size_t>(h.low64 ^ h.high64);
  }
};
struct Eq128 {
  bool operator()(const XXH128_hash_t& a, const XXH128_hash_t& b) const {
    return XXH128_isEqual(a, b) != 0;
  }
};

}  // namespace

ContentIndex::ContentIndex(const Image::State& s)
    : s_(s), buf_(s.bs()), other_(s.bs()) {
  std::vector<uint8_t> zero(s.bs(), 0);
  const XXH128_hash_t z = XXH3_128bits(zero.data(), zero.size());
  zero_lo_ = z.low64;
  zero_hi_ = z.high64;
}

struct ContentIndex::Buckets {
  std::unordered_map<XXH128_hash_t, std::vector<uint32_t>, Hash128, Eq128> by;
};

ContentIndex::~ContentIndex() = default;

uint32_t ContentIndex::Classify(uint64_t pba, const uint8_t* data) {
  const XXH128_hash_t h = XXH3_128bits(data, s_.bs());
  if (h.low64 == zero_lo_ && h.high64 == zero_hi_) {
    bool zero = true;
    for (size_t i = 0; i < s_.bs() && zero; i++) zero = data[i] == 0;
    if (zero) return kZeroClass;
  }
  if (!buckets_) buckets_ = std::make_unique<Buckets>();
  std::vector<uint32_t>& cands = buckets_->by[h];
  for (uint32_t c : cands) {
    // Equal hashes are a candidate only: the bytes decide.
    const uint64_t rep = reps_[c];
    if (rep == pba) return c;
    if (s_.ReadData(other_.data(), rep, 0, s_.bs()) &&
        std::memcmp(other_.data(), data, s_.bs()) == 0) {
      return c;
    }
  }
  const uint32_t c = static_cast<uint32_t>(reps_.size());
  reps_.push_back(pba);
  cands.push_back(c);
  return c;
}

uint32_t ContentIndex::ClassOf(uint32_t slot, uint64_t lba, uint64_t* entry) {
  const uint64_t seen = s_.LoadEntry(slot, lba);
  if (EntryPresent(seen) && s_.EntryOk(seen)) {
    auto it = class_of_.find(EntryPba(seen));
    if (it != class_of_.end()) {
      *entry = seen;
      return it->second;
    }
  }
  // Copied as a read copies (io.cc, ReadBlock): kept only if no writer
  // took the stripe meanwhile, else again holding it shared.
  Stripe& stripe = s_.StripeOf(slot, lba);
  uint64_t e = 0;
  bool ok = false;
  if (const uint64_t seq = stripe.Begin(); seq != Stripe::kBusy) {
    e = s_.LoadEntry(slot, lba);
    ok = !EntryPresent(e) || !s_.EntryOk(e) ||
         s_.ReadData(buf_.data(), EntryPba(e), 0, s_.bs());
    ok = ok && stripe.Valid(seq);
  }
  if (!ok) {
    std::shared_lock lock(stripe.mu);
    e = s_.LoadEntry(slot, lba);
    ok = !EntryPresent(e) || !s_.EntryOk(e) ||
         s_.ReadData(buf_.data(), EntryPba(e), 0, s_.bs());
  }
  *entry = e;
  if (!EntryPresent(e) || !s_.EntryOk(e)) return kNoClass;
  const uint64_t pba = EntryPba(e);
  if (auto it = class_of_.find(pba); it != class_of_.end()) return it->second;
  const uint32_t c = ok ? Classify(pba, buf_.data()) : kBadClass;
  class_of_.emplace(pba, c);
  return c;
}

}  // namespace image

namespace {

// Data blocks one dedup scope frees: per (domain, data block) how many map
// entries of the domain name the block, and where the scan first met it.
class FreePlan {
 public:
  void Add(uint32_t domain, uint64_t pba, uint32_t cls, uint32_t vol_index,
           uint64_t pos) {
    Use& u = uses_[Key(domain, pba)];
    if (u.count++ == 0) {
      u.cls = cls;
      u.first_vol = vol_index;
      u.first_pos = pos;
    }
  }

  // Adds to per_volume[v] the blocks freed that volume v met first.
  void Tally(const Image::State& s, std::vector<uint64_t>& per_volume) const {
    struct Agg {
      bool external = false;  // a block also named outside the domain
      uint64_t keep = ~0ull;  // first_pos of the block kept
    };
    std::unordered_map<uint64_t, Agg> aggs;
    for (const auto& [k, u] : uses_) {
      Agg& a = aggs[Key(Domain(k), u.cls)];
      if (s.LoadRef(Pba(k)) != u.count) {
        a.external = true;
      } else if (u.first_pos < a.keep) {
        a.keep = u.first_pos;
      }
    }
    for (const auto& [k, u] : uses_) {
      if (u.cls == image::kBadClass) continue;
      if (s.LoadRef(Pba(k)) != u.count) continue;  // stays for the others
      const Agg& a = aggs.at(Key(Domain(k), u.cls));
      // Zero blocks all become holes; otherwise one block stays, one that
      // others name if there is one, else the first the scan met.
      if (u.cls != image::kZeroClass && !a.external && u.first_pos == a.keep)
        continue;
      per_volume[u.first_vol]++;
    }
  }

 private:
  struct Use {
    uint32_t count = 0;
    uint32_t cls = 0;
    uint32_t first_vol = 0;
    uint64_t first_pos = 0;
  };
  static uint64_t Key(uint32_t domain, uint64_t v) { return v << 6 | domain; }
  static uint32_t Domain(uint64_t k) { return k & 63; }
  static uint64_t Pba(uint64_t k) { return k >> 6; }
  std::unordered_map<uint64_t, Use> uses_;
};

}  // namespace

Result<SharingReport> Image::Sharing(
    const std::vector<std::string>& volumes) const {
  const State& s = *s_;
  std::shared_lock lock(s.vol_mu);  // no volume operation meanwhile
  std::vector<uint32_t> slots;
  if (volumes.empty()) {
    for (uint32_t i = 0; i < s.sb.max_volumes; i++) {
      if (s.vols[i].live) slots.push_back(i);
    }
  } else {
    for (const std::string& name : volumes) {
      int slot = s.FindVolume(name);
      if (slot < 0) {
        return NotFound("image " + s.m.info().path + " has no volume '" + name +
                        "'; 'daxstore image list' lists them");
      }
      if (std::find(slots.begin(), slots.end(), slot) == slots.end()) {
        slots.push_back(static_cast<uint32_t>(slot));
      }
    }
    std::sort(slots.begin(), slots.end());
  }
  // The domain of a volume under --scope group: the first volume reported
  // of its group, or the volume itself when it has none.
  std::vector<uint32_t> group_domain(slots.size());
  for (size_t i = 0; i < slots.size(); i++) {
    group_domain[i] = static_cast<uint32_t>(i);
    const std::string& g = s.vols[slots[i]].group;
    for (size_t j = 0; j < i && !g.empty(); j++) {
      if (s.vols[slots[j]].group == g) {
        group_domain[i] = group_domain[j];
        break;
      }
    }
  }

  SharingReport r;
  r.block_size = s.sb.block_size;
  image::ContentIndex index(s);
  FreePlan by_volume, by_group;
  // Per content class: the last volume (index + 1) that held it.
  std::vector<uint32_t> last_vol;
  std::unordered_map<uint64_t, bool> used;  // data blocks met
  uint64_t pos = 0;
  for (size_t vi = 0; vi < slots.size(); vi++) {
    const uint32_t slot = slots[vi];
    VolumeSharing v;
    v.name = s.vols[slot].name;
    v.group = s.vols[slot].group;
    SharingCounts& c = v.counts;
    c.virtual_blocks = s.sb.virtual_blocks;
    for (uint64_t lba = 0; lba < s.sb.virtual_blocks; lba++, pos++) {
      uint64_t e = 0;
      const uint32_t cls = index.ClassOf(slot, lba, &e);
      if (cls == image::kNoClass) {
        c.holes++;
        continue;
      }
      const uint64_t pba = EntryPba(e);
      c.mapped_blocks++;
      used[pba] = true;
      if (s.LoadRef(pba) > 1) c.shared_blocks++;
      by_volume.Add(static_cast<uint32_t>(vi), pba, cls,
                    static_cast<uint32_t>(vi), pos);
      by_group.Add(group_domain[vi], pba, cls, static_cast<uint32_t>(vi), pos);
      if (cls == image::kBadClass) {
        c.unreadable_blocks++;
        continue;
      }
      if (cls == image::kZeroClass) {
        c.zero_blocks++;
        continue;
      }
      if (cls >= last_vol.size()) last_vol.resize(cls + 1, 0);
      const uint32_t me = static_cast<uint32_t>(vi + 1);
      if (last_vol[cls] == me) {
        c.self_sharing_blocks++;
      } else if (last_vol[cls] != 0) {
        c.inter_volume_blocks++;
        last_vol[cls] = me;
      } else {
        c.distinct_blocks++;
        last_vol[cls] = me;
      }
    }
    r.volumes.push_back(std::move(v));
  }
  std::vector<uint64_t> freed_volume(slots.size(), 0);
  std::vector<uint64_t> freed_group(slots.size(), 0);
  by_volume.Tally(s, freed_volume);
  by_group.Tally(s, freed_group);
  SharingCounts& t = r.total;
  for (size_t i = 0; i < r.volumes.size(); i++) {
    SharingCounts& c = r.volumes[i].counts;
    c.dedup_volume_blocks = freed_volume[i];
    c.dedup_group_blocks = freed_group[i];
    t.virtual_blocks += c.virtual_blocks;
    t.holes += c.holes;
    t.mapped_blocks += c.mapped_blocks;
    t.zero_blocks += c.zero_blocks;
    t.shared_blocks += c.shared_blocks;
    t.self_sharing_blocks += c.self_sharing_blocks;
    t.inter_volume_blocks += c.inter_volume_blocks;
    t.distinct_blocks += c.distinct_blocks;
    t.unreadable_blocks += c.unreadable_blocks;
    t.dedup_volume_blocks += c.dedup_volume_blocks;
    t.dedup_group_blocks += c.dedup_group_blocks;
  }
  r.data_blocks_used = used.size();
  return r;
}

}  // namespace daxstore
