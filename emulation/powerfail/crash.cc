// Recorder (reservoir sampling of crash points) and Explore (fate variants).
#include "powerfail/crash.h"

#include <algorithm>
#include <cstdio>
#include <random>

namespace daxstore::powerfail {

Recorder::Recorder(std::shared_ptr<Simulator> sim, size_t max_points,
                   uint64_t seed)
    : sim_(std::move(sim)), max_points_(max_points), rng_(seed) {
  sim_->SetBeforeFence([this](uint64_t f) { OnFence(f); });
}

Recorder::~Recorder() { sim_->SetBeforeFence(nullptr); }

void Recorder::OnFence(uint64_t) {
  ++seen_;
  if (max_points_ == 0 || points_.size() < max_points_) {
    points_.push_back(sim_->Capture());
    return;
  }
  // Reservoir: the seen_-th fence replaces a sample with p = max / seen_.
  uint64_t j = std::uniform_int_distribution<uint64_t>(0, seen_ - 1)(rng_);
  if (j < max_points_) points_[j] = sim_->Capture();
}

std::vector<CrashPoint> Recorder::Finish() {
  sim_->SetBeforeFence(nullptr);
  points_.push_back(sim_->Capture());
  std::sort(points_.begin(), points_.end(),
            [](const CrashPoint& a, const CrashPoint& b) {
              return a.fence < b.fence;
            });
  return std::move(points_);
}

std::string CrashCase::ToString() const {
  return "crash before fence " + std::to_string(fence) + ", image " +
         std::to_string(variant) + " (" + what + "), seed " +
         std::to_string(seed);
}

namespace {

// A per-image generator that depends only on (seed, fence, variant).
std::mt19937_64 ImageRng(uint64_t seed, uint64_t fence, size_t variant) {
  std::seed_seq s{seed, seed >> 32, fence, uint64_t{variant}};
  return std::mt19937_64(s);
}

Status CheckImage(
    std::vector<uint8_t> image, const CrashCase& c,
    const std::function<Status(Mapping, const CrashCase&)>& check) {
  DAXSTORE_ASSIGN_OR_RETURN(auto sim, Simulator::FromImage(image));
  DAXSTORE_ASSIGN_OR_RETURN(Mapping m, sim->Map());
  return check(std::move(m), c).WithContext(c.ToString());
}

// The seed given, or a random one; printed, so a run can be replayed.
uint64_t PickSeed(uint64_t seed) {
  if (seed == 0) {
    seed = std::random_device{}() | uint64_t{std::random_device{}()} << 32;
  }
  std::fprintf(stderr, "powerfail: seed %llu\n",
               static_cast<unsigned long long>(seed));
  return seed;
}

}  // namespace

ExploreReport CheckPoints(
    const std::vector<CrashPoint>& points,
    const std::function<Status(Mapping, const CrashCase&)>& check,
    ExploreOptions opt) {
  ExploreReport rep;
  rep.seed = opt.seed ? opt.seed : PickSeed(0);
  rep.points = points.size();
  for (const CrashPoint& pt : points) {
    const size_t d = pt.dirty.size();
    CrashCase c{rep.seed, pt.fence, 0, ""};
    auto run = [&](const std::function<Fate(size_t)>& pick,
                   std::string what) -> bool {
      c.what = std::move(what);
      auto rng = ImageRng(rep.seed, pt.fence, c.variant);
      ++rep.images;
      rep.status = CheckImage(Materialize(pt, pick, rng), c, check);
      ++c.variant;
      return rep.status.ok();
    };
    if (!run([](size_t) { return Fate::kLost; }, "all lost")) return rep;
    if (d == 0) continue;  // every other image equals the first
    if (!run([](size_t) { return Fate::kKept; }, "all kept")) return rep;
    if (d <= opt.single_kept_limit && d > 1) {
      for (size_t k = 0; k < d; ++k) {
        if (!run([k](size_t i) { return i == k ? Fate::kKept : Fate::kLost; },
                 "line " + std::to_string(pt.dirty[k]) + " kept alone")) {
          return rep;
        }
      }
    }
    for (int v = 0; v < opt.random_variants; ++v) {
      auto fates = ImageRng(rep.seed ^ 0x5bd1e995, pt.fence, c.variant);
      auto pick = [&fates](size_t) {
        return static_cast<Fate>(
            std::uniform_int_distribution<int>(0, 2)(fates));
      };
      if (!run(pick, "random mix")) return rep;
    }
  }
  return rep;
}

ExploreReport Explore(
    size_t size, const std::function<Status(Mapping)>& setup,
    const std::function<Status(Mapping)>& op,
    const std::function<Status(Mapping, const CrashCase&)>& check,
    ExploreOptions opt) {
  ExploreReport rep;
  rep.seed = PickSeed(opt.seed);
  auto sim = Simulator::Create(size);
  if (!sim.ok()) return rep.status = sim.status(), rep;
  std::vector<CrashPoint> points;
  {
    auto m = (*sim)->Map();
    if (!m.ok()) return rep.status = m.status(), rep;
    rep.status = setup(std::move(*m)).WithContext("setup");
    if (!rep.status.ok()) return rep;
    auto m2 = (*sim)->Map();
    if (!m2.ok()) return rep.status = m2.status(), rep;
    uint64_t start = (*sim)->fences();
    Recorder rec(*sim, opt.max_points, rep.seed);
    rep.status = op(std::move(*m2)).WithContext("operation");
    if (!rep.status.ok()) return rep;
    points = rec.Finish();
    rep.fences = (*sim)->fences() - start;
  }
  opt.seed = rep.seed;
  const uint64_t fences = rep.fences;
  rep = CheckPoints(points, check, opt);
  rep.fences = fences;
  return rep;
}

}  // namespace daxstore::powerfail
