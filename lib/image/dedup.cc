// Dedup: blocks of equal content made one data block (Image::Dedup), each
// remap through a lane's redo record (commit.cc, "Remaps").
#include <algorithm>
#include <chrono>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include "image/engine.h"
#include "image/sharing.h"

namespace daxstore {

std::function<void()> image::dedup_step_hook;

using image::EntryPba;
using image::EntryPresent;

namespace {

// One mapped block the scan met.
struct Met {
  uint32_t slot;
  uint32_t domain;
  uint64_t lba;
  uint64_t entry;
  uint32_t cls;
};

bool AllZero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (p[i]) return false;
  }
  return true;
}

// Sets dedup_active holding every lane, so no write is in flight while it
// changes; clears it the same way. It retires every lane's records first:
// a remap leaves the new block of a record still valid alone (Remap), so
// this makes the blocks written before the pass ones it may move.
class ActivePass {
 public:
  explicit ActivePass(Image::State& s) : s_(s) {
    auto lanes = s_.LockAllLanes();
    s_.RetireAll();
    s_.dedup_active.store(true, std::memory_order_relaxed);
  }
  ~ActivePass() {
    auto lanes = s_.LockAllLanes();
    s_.dedup_active.store(false, std::memory_order_relaxed);
  }
  ActivePass(const ActivePass&) = delete;
  ActivePass& operator=(const ActivePass&) = delete;

 private:
  Image::State& s_;
};

// Holds a pass to `speed` bytes of mapped blocks per second (0: no
// limit): after each block, sleeps while the pass is ahead of that rate.
// Sleeps only once it is 1 ms ahead, so a pass at full speed never calls
// the clock more than once per block.
class Throttle {
 public:
  Throttle(uint64_t speed, size_t block_size)
      : speed_(speed), bs_(block_size), start_(Clock::now()) {}
  void Block() {
    if (speed_ == 0) return;
    bytes_ += bs_;
    const auto due = std::chrono::duration<double>(static_cast<double>(bytes_) /
                                                   static_cast<double>(speed_));
    const auto ahead = due - (Clock::now() - start_);
    if (ahead > std::chrono::milliseconds(1))
      std::this_thread::sleep_for(ahead);
  }

 private:
  using Clock = std::chrono::steady_clock;
  uint64_t speed_;
  size_t bs_;
  Clock::time_point start_;
  uint64_t bytes_ = 0;
};

}  // namespace

Result<DedupReport> Image::Dedup(DedupScope scope,
                                 const std::vector<std::string>& volumes,
                                 uint64_t speed) {
  State& s = *s_;
  if (!s.writable) {
    return InvalidArgument(s.m.info().path + " is open read-only");
  }
  std::lock_guard one(s.dedup_mu);
  std::shared_lock vols_lock(s.vol_mu);  // no volume operation meanwhile
  if (s.corrupt.load(std::memory_order_acquire)) return s.CorruptError();
  std::vector<uint32_t> slots;
  for (uint32_t i = 0; i < s.sb.max_volumes; i++) {
    if (!s.vols[i].live) continue;
    if (volumes.empty() || std::find(volumes.begin(), volumes.end(),
                                     s.vols[i].name) != volumes.end()) {
      slots.push_back(i);
    }
  }
  for (const std::string& name : volumes) {
    if (s.FindVolume(name) < 0) {
      return NotFound("image " + s.m.info().path + " has no volume '" + name +
                      "'; 'daxstore image list' lists them");
    }
  }
  {
    // The refcounts admit every entry before any of them changes.
    auto lanes = s.LockAllLanes();
    DAXSTORE_RETURN_IF_ERROR(s.VerifyRefs());
  }
  ActivePass active(s);

  // Domains: each volume alone, or with kGroup the reported volumes of
  // its group together.
  std::vector<uint32_t> domain(slots.size());
  for (size_t i = 0; i < slots.size(); i++) {
    domain[i] = static_cast<uint32_t>(i);
    const std::string& g = s.vols[slots[i]].group;
    if (scope != DedupScope::kGroup || g.empty()) continue;
    for (size_t j = 0; j < i; j++) {
      if (s.vols[slots[j]].group == g) {
        domain[i] = domain[j];
        break;
      }
    }
  }

  // Scan: every mapped block's class, and per (domain, data block) how
  // many entries of the domain name it.
  image::ContentIndex index(s);
  Throttle throttle(speed, s.bs());
  std::vector<Met> met;
  std::unordered_map<uint64_t, uint32_t> uses;  // pba << 6 | domain
  for (size_t vi = 0; vi < slots.size(); vi++) {
    for (uint64_t lba = 0; lba < s.sb.virtual_blocks; lba++) {
      if (image::dedup_step_hook) image::dedup_step_hook();
      uint64_t e = 0;
      const uint32_t cls = index.ClassOf(slots[vi], lba, &e);
      if (cls == image::kNoClass || cls == image::kBadClass) continue;
      throttle.Block();
      met.push_back({slots[vi], domain[vi], lba, e, cls});
      uses[EntryPba(e) << 6 | domain[vi]]++;
    }
  }
  // The block each (domain, class) keeps: one that entries outside the
  // domain name too, if any (it stays anyway), else the first met.
  struct Keep {
    uint64_t pba = image::kNoBlock;
    bool external = false;
  };
  std::unordered_map<uint64_t, Keep> keep;  // cls << 6 | domain
  for (const Met& x : met) {
    if (x.cls == image::kZeroClass) continue;
    const uint64_t pba = EntryPba(x.entry);
    Keep& k = keep[uint64_t{x.cls} << 6 | x.domain];
    const bool external = s.LoadRef(pba) != uses[pba << 6 | x.domain];
    if (k.pba == image::kNoBlock || (external && !k.external)) {
      k.pba = pba;
      k.external = external;
    }
  }

  DedupReport r;
  image::Lane& lane = s.MyLane();
  for (const Met& x : met) {
    const uint64_t target = x.cls == image::kZeroClass
                                ? image::kNoBlock
                                : keep.at(uint64_t{x.cls} << 6 | x.domain).pba;
    if (target == EntryPba(x.entry)) continue;
    throttle.Block();  // the remap compares the block with its target
    if (image::dedup_step_hook) image::dedup_step_hook();
    std::lock_guard lane_lock(lane.mu);
    image::Stripe::Writer lock(s.StripeOf(x.slot, x.lba));
    lock.lock();
    const uint64_t now = s.LoadEntry(x.slot, x.lba);
    if (now != x.entry) {
      r.skipped_blocks++;  // rewritten since the scan
      continue;
    }
    if (x.cls == image::kZeroClass) {
      // Still zeros: the block may have been freed and reused under the
      // same entry, so the bytes are checked again under the lock.
      if (lane.scratch.size() != s.bs()) lane.scratch.resize(s.bs());
      if (!s.ReadData(lane.scratch.data(), EntryPba(now), 0, s.bs()) ||
          !AllZero(lane.scratch.data(), s.bs())) {
        r.skipped_blocks++;
        continue;
      }
      // Another volume's write may drop a reference meanwhile: the count
      // is a report, the refcount itself is the ref lock's business.
      const bool last = s.LoadRef(EntryPba(now)) == 1;
      bool used = false;
      DAXSTORE_RETURN_IF_ERROR(
          s.Commit(lane, x.slot, x.lba, now, image::kNoBlock, 0, &used));
      r.zero_blocks++;
      r.freed_blocks += last;
      continue;
    }
    bool done = false, freed = false;
    DAXSTORE_RETURN_IF_ERROR(
        s.Remap(lane, x.slot, x.lba, now, target, &done, &freed));
    if (done) {
      r.remapped_blocks++;
      r.freed_blocks += freed;
    } else {
      r.skipped_blocks++;
    }
  }
  return r;
}

}  // namespace daxstore
