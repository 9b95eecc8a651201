// Crash consistency of sharing-group changes on the power-failure
// simulator: at every persist point of a sequence of SetSharingGroup calls
// interleaved with writes, the recovered image has every volume, each in
// the group from before or after the change in flight, every block as
// written, and a clean Check.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "daxstore/image.h"
#include "powerfail/crash.h"
#include "testing/crash_trace.h"
#include "testing/image_model.h"

namespace daxstore {
namespace {

using powerfail::Simulator;
using testing::DiskModel;

constexpr size_t kSimSize = 256 << 10;
constexpr uint64_t kBs = 4096;
constexpr uint64_t kBlocks = 8;
constexpr uint64_t kVirtual = kBlocks * kBs;

// Each volume's group after each step (groups[0]: before the first).
using Groups = std::map<std::string, std::string>;

struct Trace : testing::CrashTrace {
  std::vector<Groups> groups;
};

Status CheckCrashImage(Mapping m, uint64_t fence, const Trace& t) {
  DAXSTORE_ASSIGN_OR_RETURN(Image img, Image::Open(std::move(m)));
  DAXSTORE_ASSIGN_OR_RETURN(CheckReport rep, img.Check());
  if (!rep.clean()) return Corruption("check: " + rep.findings.front());
  const size_t done = t.Done(fence);
  const size_t next = std::min(done + 1, t.groups.size() - 1);
  DAXSTORE_ASSIGN_OR_RETURN(std::vector<VolumeInfo> got, img.Volumes());
  if (got.size() != t.groups[0].size()) {
    return Corruption("after " + std::to_string(done) + " steps " +
                      std::to_string(got.size()) + " volumes");
  }
  for (const VolumeInfo& v : got) {
    if (v.damaged) return Corruption("volume " + v.name + " is damaged");
    if (v.group != t.groups[done].at(v.name) &&
        v.group != t.groups[next].at(v.name)) {
      return Corruption("volume " + v.name + " is in group '" + v.group +
                        "' after " + std::to_string(done) + " steps");
    }
  }
  DAXSTORE_RETURN_IF_ERROR(
      testing::BlocksOldOrNew(img, t.Acked(fence), t.Next(fence), kBs,
                              "after " + std::to_string(done) + " steps"));
  // The recovered image keeps working: groups change again.
  DAXSTORE_RETURN_IF_ERROR(img.SetSharingGroup("c", "after-crash"));
  DAXSTORE_ASSIGN_OR_RETURN(got, img.Volumes());
  for (const VolumeInfo& v : got) {
    if (v.name == "c" && v.group != "after-crash") {
      return Corruption("a group set after recovery did not hold");
    }
  }
  return testing::KeepsWorking(img, kBs);
}

TEST(ImageGroupCrash, EveryPersistPointOfGroupChangesRecovers) {
  auto sim = Simulator::Create(kSimSize);
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  ImageOptions o;
  o.virtual_size = kVirtual;
  o.lanes = 4;
  o.max_volumes = 3;
  auto formatted = Image::Format(std::move((*sim)->Map()).value(), o);
  ASSERT_TRUE(formatted.ok()) << formatted.status().ToString();
  Image& img = *formatted;
  std::mt19937_64 rng(20261203);
  std::map<std::string, DiskModel> models;
  models.emplace("base", DiskModel(kVirtual));
  auto d = testing::RandomBytes(rng, 3 * kBs);
  ASSERT_TRUE(img.Write(0, d.data(), d.size()).ok());
  models.at("base").Write(0, d.data(), d.size());
  ASSERT_TRUE(img.Snapshot("s").ok());
  ASSERT_TRUE(img.Clone("s", "c").ok());
  models.emplace("s", models.at("base"));
  models.emplace("c", models.at("base"));
  auto c = img.OpenVolume("c");
  ASSERT_TRUE(c.ok());

  Trace t;
  Groups g = {{"base", ""}, {"s", ""}, {"c", ""}};
  t.groups.push_back(g);
  t.states.push_back(models);
  std::vector<powerfail::CrashPoint> points;
  {
    powerfail::Recorder rec(*sim, 0, 1);
    struct Step {
      std::string volume, group;  // volume "": a write to c instead
    };
    const std::vector<Step> steps = {
        {"c", "tenant-a"}, {"", ""}, {"base", "tenant-a"},
        {"c", "tenant-b"}, {"", ""}, {"c", ""}};
    for (const Step& s : steps) {
      Status st;
      if (s.volume.empty()) {
        auto w = testing::RandomBytes(rng, kBs);
        const uint64_t off = (rng() % kBlocks) * kBs;
        st = c->Write(off, w.data(), kBs);
        models.at("c").Write(off, w.data(), kBs);
      } else {
        st = img.SetSharingGroup(s.volume, s.group);
        g[s.volume] = s.group;
      }
      ASSERT_TRUE(st.ok()) << st.ToString();
      t.acked_at.push_back((*sim)->fences());
      t.groups.push_back(g);
      t.states.push_back(models);
    }
    points = rec.Finish();
  }
  ASSERT_GT(points.size(), 12u);
  std::fprintf(stderr, "image group crash: %zu points\n", points.size());
  auto rep = powerfail::CheckPoints(
      points,
      [&t](Mapping m, const powerfail::CrashCase& cc) {
        return CheckCrashImage(std::move(m), cc.fence, t);
      },
      {.random_variants = 3, .single_kept_limit = 8, .seed = 1});
  ASSERT_TRUE(rep.status.ok()) << rep.status.ToString();
  EXPECT_GT(rep.images, points.size());
}

}  // namespace
}  // namespace daxstore
