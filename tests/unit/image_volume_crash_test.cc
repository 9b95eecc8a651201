// Crash consistency of snapshots, clones and deletes on the power-failure
// simulator. Random I/O on several volumes is interleaved with volume
// operations; at every persist point a crash image is recovered and
// checked against per-volume in-memory models:
//   - the set of volumes is the one before or the one after the operation
//     in flight, never anything else;
//   - every block of every volume holds its content from before or after
//     the operation in flight;
//   - no block is leaked or used twice (Check is clean), and the image
//     keeps working (a snapshot and a delete after recovery).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "daxstore/image.h"
#include "powerfail/crash.h"
#include "testing/crash_trace.h"
#include "testing/image_model.h"

namespace daxstore {
namespace {

using powerfail::CrashPoint;
using powerfail::Fate;
using powerfail::Simulator;
using testing::DiskModel;

constexpr size_t kSimSize = 256 << 10;
constexpr uint64_t kBs = 4096;
constexpr uint64_t kBlocks = 8;
constexpr uint64_t kVirtual = kBlocks * kBs;
constexpr uint32_t kMaxVolumes = 5;

uint64_t Seed() {
  const char* s = std::getenv("DAXSTORE_POWERFAIL_SEED");
  return s ? std::strtoull(s, nullptr, 10) : 20261121;
}

ImageOptions Options() {
  ImageOptions o;
  o.virtual_size = kVirtual;
  o.lanes = 4;
  o.max_volumes = kMaxVolumes;
  return o;
}

// Every volume's content after an operation.
using Volumes = testing::VolumeStates;
using Trace = testing::CrashTrace;

bool SameNames(const Volumes& v, const std::vector<VolumeInfo>& got) {
  if (v.size() != got.size()) return false;
  for (const VolumeInfo& g : got) {
    if (!v.count(g.name)) return false;
  }
  return true;
}

Status CheckCrashImage(Mapping m, uint64_t fence, const Trace& t) {
  DAXSTORE_ASSIGN_OR_RETURN(Image img, Image::Open(std::move(m)));
  DAXSTORE_ASSIGN_OR_RETURN(CheckReport rep, img.Check());
  if (!rep.clean()) return Corruption("check: " + rep.findings.front());
  const size_t done = t.Done(fence);
  const Volumes& acked = t.Acked(fence);
  const Volumes& next = t.Next(fence);
  DAXSTORE_ASSIGN_OR_RETURN(std::vector<VolumeInfo> got, img.Volumes());
  const bool as_acked = SameNames(acked, got);
  if (!as_acked && !SameNames(next, got)) {
    std::string names;
    for (const VolumeInfo& g : got) names += " " + g.name;
    return Corruption("after " + std::to_string(done) +
                      " acknowledged ops the volumes are" + names);
  }
  DAXSTORE_RETURN_IF_ERROR(testing::BlocksOldOrNew(
      img, acked, next, kBs,
      "after " + std::to_string(done) + " acknowledged ops"));
  // The recovered image keeps working.
  Status st = img.Snapshot("after-crash");
  if (st.ok()) st = img.DeleteVolume("after-crash");
  if (!st.ok() && st.kind() != ErrorKind::kNoSpace) return st;
  return testing::KeepsWorking(img, kBs);
}

// powerfail::CheckPoints' check: recovers each crash image and checks it
// against the trace.
auto AgainstTrace(const Trace& t) {
  return [&t](Mapping m, const powerfail::CrashCase& c) {
    return CheckCrashImage(std::move(m), c.fence, t);
  };
}

powerfail::ExploreOptions Variants(uint64_t seed) {
  return {.random_variants = 3, .single_kept_limit = 8, .seed = seed};
}

// Picks a random name of `models` satisfying `want`, or "".
std::string Pick(std::mt19937_64& rng, const Volumes& models,
                 const std::function<bool(const std::string&)>& want) {
  std::vector<std::string> c;
  for (const auto& [name, _] : models) {
    if (want(name)) c.push_back(name);
  }
  return c.empty() ? "" : c[rng() % c.size()];
}

class ImageVolumeCrash : public ::testing::TestWithParam<uint64_t> {};

TEST_P(ImageVolumeCrash, EveryPersistPointOfVolumeOperationsRecovers) {
  const uint64_t seed = GetParam() ? GetParam() : Seed();
  auto sim = Simulator::Create(kSimSize);
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  auto formatted = Image::Format(std::move((*sim)->Map()).value(), Options());
  ASSERT_TRUE(formatted.ok()) << formatted.status().ToString();
  Image& img = *formatted;
  std::mt19937_64 rng(seed);
  Volumes models;
  models.emplace("base", DiskModel(kVirtual));
  auto pre = testing::RandomBytes(rng, 4 * kBs);
  ASSERT_TRUE(img.Write(kBs, pre.data(), pre.size()).ok());
  models.at("base").Write(kBs, pre.data(), pre.size());
  auto is_snap = [](const std::string& n) { return n[0] == 's'; };
  Trace t;
  t.states.push_back(models);
  std::vector<CrashPoint> points;
  int made = 0;
  {
    powerfail::Recorder rec(*sim, 0, seed);
    for (int i = 0; i < 22; i++) {
      Status st;
      const int op = static_cast<int>(rng() % 10);
      const bool full = models.size() == kMaxVolumes;
      std::string snap = Pick(rng, models, is_snap);
      std::string victim =
          Pick(rng, models, [](const std::string& n) { return n != "base"; });
      if (op < 2 && !full) {
        // Snapshot of a writable volume.
        std::string src = Pick(
            rng, models, [&](const std::string& n) { return !is_snap(n); });
        std::string name = "s" + std::to_string(made++);
        auto h = img.OpenVolume(src);
        ASSERT_TRUE(h.ok());
        st = h->Snapshot(name);
        models.emplace(name, models.at(src));
      } else if (op < 4 && !full && !snap.empty()) {
        std::string name = "c" + std::to_string(made++);
        st = img.Clone(snap, name);
        models.emplace(name, models.at(snap));
      } else if (op < 5 && !victim.empty()) {
        st = img.DeleteVolume(victim);
        models.erase(victim);
      } else {
        std::string name = Pick(
            rng, models, [&](const std::string& n) { return !is_snap(n); });
        auto h = img.OpenVolume(name);
        ASSERT_TRUE(h.ok());
        uint64_t off = rng() % kVirtual;
        if (rng() % 2) off -= off % kBs;
        size_t n = 1 + rng() % std::min<uint64_t>(kBs + 300, kVirtual - off);
        // Odd workloads write from a new thread each time, hence on the
        // next lane (one thread at a time: one sequence of fences).
        auto run = [&](auto f) {
          if (GetParam() % 2) {
            std::thread th([&] { st = f(); });
            th.join();
          } else {
            st = f();
          }
        };
        if (rng() % 5 == 0) {
          run([&] { return h->Discard(off, n); });
          models.at(name).Zero(off, n);
        } else {
          auto d = testing::RandomBytes(rng, n);
          run([&] { return h->Write(off, d.data(), n); });
          models.at(name).Write(off, d.data(), n);
        }
      }
      ASSERT_TRUE(st.ok()) << st.ToString();
      ASSERT_TRUE(img.Flush().ok());
      t.acked_at.push_back((*sim)->fences());
      t.states.push_back(models);
    }
    points = rec.Finish();
  }
  ASSERT_GT(points.size(), 44u);
  std::fprintf(stderr, "image volume crash: %zu points, seed %llu\n",
               points.size(), static_cast<unsigned long long>(seed));
  auto rep = powerfail::CheckPoints(points, AgainstTrace(t), Variants(seed));
  ASSERT_TRUE(rep.status.ok()) << rep.status.ToString();
  EXPECT_GT(rep.images, points.size() * 3);
}

INSTANTIATE_TEST_SUITE_P(Workloads, ImageVolumeCrash,
                         ::testing::Range(uint64_t{0}, uint64_t{10}));

// A crash image left in the middle of a clone (intent and map written,
// entry not), then crashes inside its recovery: each one recovers again.
TEST(ImageVolumeCrashRecovery, CrashDuringIntentRecoveryRecoversAgain) {
  std::vector<uint8_t> media;
  DiskModel base(kVirtual);
  {
    auto sim = Simulator::Create(kSimSize);
    ASSERT_TRUE(sim.ok());
    auto img = Image::Format(std::move((*sim)->Map()).value(), Options());
    ASSERT_TRUE(img.ok());
    std::vector<uint8_t> d(3 * kBs, 0x42);
    ASSERT_TRUE(img->Write(0, d.data(), d.size()).ok());
    base.Write(0, d.data(), d.size());
    ASSERT_TRUE(img->Snapshot("s").ok());
    powerfail::Recorder rec(*sim, 0, 1);
    ASSERT_TRUE(img->Clone("s", "c").ok());
    auto points = rec.Finish();
    ASSERT_GE(points.size(), 3u);
    std::mt19937_64 rng(1);
    // Point 1: the intent is durable; the copied map and bumped refcounts
    // are dirty. Keep them all: recovery must take them back.
    media = Materialize(
        points[1], [](size_t) { return Fate::kKept; }, rng);
    auto probe = Simulator::FromImage(media);
    auto reopened = Image::Open(std::move((*probe)->Map()).value());
    ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
    EXPECT_EQ(reopened->Info()->recovered_records, 1u);
    EXPECT_EQ(reopened->Volumes()->size(), 2u);
  }
  auto setup = [&](Mapping m) {
    m.MemcpyPersist(m.data(), media.data(), media.size());
    return Status::Ok();
  };
  auto op = [](Mapping m) { return Image::Open(std::move(m)).status(); };
  Trace t;
  Volumes v;
  v.emplace("base", base);
  v.emplace("s", base);
  t.states = {v};
  auto check = [&](Mapping m, const powerfail::CrashCase&) -> Status {
    return CheckCrashImage(std::move(m), 0, t);
  };
  powerfail::ExploreOptions o;
  o.seed = Seed();
  auto rep = powerfail::Explore(kSimSize, setup, op, check, o);
  ASSERT_TRUE(rep.status.ok()) << rep.status.ToString();
  EXPECT_GT(rep.fences, 0u);
}

}  // namespace
}  // namespace daxstore
