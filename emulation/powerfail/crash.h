// Crash-point enumeration over the power-failure simulator.
//
// An operation is run once on a fresh Simulator. A crash point is the last
// instant before a fence makes anything durable (the widest set of
// unpersisted stores between two fences), plus the instant after the
// operation returns. For each point Explore() builds several crash images:
// every dirty line lost; every dirty line kept; each dirty line kept alone
// (when there are few); and random mixes of lost / kept / kept-in-part. Each
// image is loaded into a fresh Simulator and handed to `check`, which runs
// recovery and asserts invariants.
//
// Exhaustive (every fence) by default. With max_points = N, an operation
// of at most N fences is still explored exhaustively, and a longer one gets
// a uniform random sample of N fences. Everything random derives from one seed,
// printed to stderr and put in every failure, so a run can be replayed.
//
// Thread safety: single-threaded; `op` must not use threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "daxstore/mapping.h"
#include "daxstore/status.h"
#include "powerfail/simulator.h"

namespace daxstore::powerfail {

// Captures crash points while code runs on a simulator. While it lives it
// owns the simulator's before-fence hook.
class Recorder {
 public:
  // max_points == 0: every fence. Otherwise a uniform sample of that many
  // fences (reservoir sampling driven by seed).
  Recorder(std::shared_ptr<Simulator> sim, size_t max_points, uint64_t seed);
  ~Recorder();
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  // Stops recording, adds the state now as the final point, and returns the
  // points ordered by fence.
  std::vector<CrashPoint> Finish();

 private:
  void OnFence(uint64_t fence);

  std::shared_ptr<Simulator> sim_;
  size_t max_points_;
  std::mt19937_64 rng_;
  uint64_t seen_ = 0;
  std::vector<CrashPoint> points_;
};

struct ExploreOptions {
  size_t max_points = 0;          // 0: every fence (exhaustive)
  int random_variants = 6;        // random fate mixes per point
  size_t single_kept_limit = 16;  // "each line kept alone" up to this many
  uint64_t seed = 0;              // 0: pick one (printed)
};

// One crash image, named well enough to replay it with the same seed.
struct CrashCase {
  uint64_t seed = 0;
  uint64_t fence = 0;  // fences completed before the crash
  size_t variant = 0;  // which image of that point
  std::string what;    // "all lost", "line 12 kept alone", "random mix"
  std::string ToString() const;
};

struct ExploreReport {
  uint64_t seed = 0;
  uint64_t fences = 0;  // fences the operation made
  size_t points = 0;    // crash points examined
  size_t images = 0;    // crash images checked
  Status status;        // first failure, with its CrashCase; or Ok
};

// Checks the crash images of recorded points (see top: all lost, all kept,
// each line kept alone, random mixes) with `check`, given a Mapping of a
// fresh simulator holding each image, as Explore does after its operation;
// for tests that record points themselves, say around several operations
// that are acknowledged one by one. options.max_points is not used; a seed
// of 0 is picked and printed. Fills seed, points, images and status (the
// first failure, with its CrashCase); fences is left 0.
ExploreReport CheckPoints(
    const std::vector<CrashPoint>& points,
    const std::function<Status(Mapping, const CrashCase&)>& check,
    ExploreOptions options = {});

// Runs `setup` then `op` on a fresh simulator of `size` bytes, each given its
// own Mapping of it (crash points are recorded only during `op`; state the
// two share, such as an open heap, lives in the callers' captures). Then
// checks every crash image (see top): `check` gets a Mapping of a fresh
// simulator holding the image and returns a failure to stop the
// exploration. A failing setup or op is reported as is.
ExploreReport Explore(
    size_t size, const std::function<Status(Mapping)>& setup,
    const std::function<Status(Mapping)>& op,
    const std::function<Status(Mapping, const CrashCase&)>& check,
    ExploreOptions options = {});

}  // namespace daxstore::powerfail
