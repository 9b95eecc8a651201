// Crash consistency of dedup on the power-failure simulator: at every
// persist point of a dedup pass (remaps inside volumes and across a
// group, zero blocks made holes), then of copy-on-write overwrites of the
// blocks it shared (at other virtual blocks and in other volumes) and a
// second pass, the recovered image reads as before or after the step in
// flight, Check finds every refcount exact, and the image keeps working
// (another pass completes and writes go on).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "daxstore/image.h"
#include "powerfail/crash.h"
#include "testing/image_model.h"

namespace daxstore {
namespace {

using powerfail::Simulator;

constexpr size_t kSimSize = 256 << 10;
constexpr uint64_t kBs = 4096;
constexpr uint64_t kBlocks = 8;

using Contents = std::map<std::string, std::vector<uint8_t>>;

Result<Contents> Read(const Image& img) {
  Contents out;
  DAXSTORE_ASSIGN_OR_RETURN(std::vector<VolumeInfo> vols, img.Volumes());
  for (const VolumeInfo& v : vols) {
    DAXSTORE_ASSIGN_OR_RETURN(Image h, img.OpenVolume(v.name));
    std::vector<uint8_t> d(kBlocks * kBs);
    DAXSTORE_RETURN_IF_ERROR(h.Read(0, d.data(), d.size()));
    out[v.name] = std::move(d);
  }
  return out;
}

// Contents after each step (states[0]: before the first) and the fences
// done when each step returned.
struct Trace {
  std::vector<Contents> states;
  std::vector<uint64_t> acked_at;
};

Status CheckCrashImage(Mapping m, uint64_t fence, const Trace& t) {
  DAXSTORE_ASSIGN_OR_RETURN(Image img, Image::Open(std::move(m)));
  DAXSTORE_ASSIGN_OR_RETURN(CheckReport rep, img.Check());
  if (!rep.clean()) return Corruption("check: " + rep.findings.front());
  size_t done = 0;
  while (done < t.acked_at.size() && t.acked_at[done] <= fence) done++;
  const Contents& acked = t.states[done];
  const Contents& next = t.states[std::min(done + 1, t.states.size() - 1)];
  DAXSTORE_ASSIGN_OR_RETURN(Contents got, Read(img));
  // One write is in flight at most: each volume block by block.
  for (const auto& [name, data] : got) {
    for (uint64_t b = 0; b < kBlocks; b++) {
      const size_t off = b * kBs;
      if (std::memcmp(&data[off], &acked.at(name)[off], kBs) != 0 &&
          std::memcmp(&data[off], &next.at(name)[off], kBs) != 0) {
        return Corruption("volume " + name + " block " + std::to_string(b) +
                          " after " + std::to_string(done) +
                          " steps is neither old nor new");
      }
    }
  }
  const Contents want = got;
  DAXSTORE_ASSIGN_OR_RETURN(DedupReport d, img.Dedup(DedupScope::kGroup));
  (void)d;
  DAXSTORE_ASSIGN_OR_RETURN(rep, img.Check());
  if (!rep.clean())
    return Corruption("after a second pass: " + rep.findings.front());
  DAXSTORE_ASSIGN_OR_RETURN(got, Read(img));
  if (got != want) return Corruption("a second pass changed content");
  return testing::KeepsWorking(img, kBs);
}

void Put(Image& img, uint64_t b, uint8_t c) {
  std::vector<uint8_t> v(kBs, c);
  ASSERT_TRUE(img.Write(b * kBs, v.data(), kBs).ok());
}

TEST(ImageDedupCrash, EveryPersistPointOfADedupPassRecovers) {
  auto sim = Simulator::Create(kSimSize);
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  ImageOptions o;
  o.virtual_size = kBlocks * kBs;
  o.lanes = 4;
  o.max_volumes = 4;
  auto formatted = Image::Format(std::move((*sim)->Map()).value(), o);
  ASSERT_TRUE(formatted.ok()) << formatted.status().ToString();
  Image& img = *formatted;
  img.set_detect_zeroes(false);
  ASSERT_TRUE(img.Snapshot("empty").ok());
  // base: A A 0 B A; c (its group's other volume): A B B; s: base's.
  Put(img, 0, 'A');
  Put(img, 1, 'A');
  Put(img, 2, 0);
  Put(img, 3, 'B');
  Put(img, 4, 'A');
  ASSERT_TRUE(img.Clone("empty", "c", "g").ok());
  ASSERT_TRUE(img.SetSharingGroup("base", "g").ok());
  auto c = img.OpenVolume("c");
  ASSERT_TRUE(c.ok());
  Put(*c, 5, 'A');
  Put(*c, 6, 'B');
  Put(*c, 7, 'B');
  Trace t;
  auto first = Read(img);
  ASSERT_TRUE(first.ok());
  t.states.push_back(*first);
  std::vector<powerfail::CrashPoint> points;
  uint64_t freed = 0;
  {
    powerfail::Recorder rec(*sim, 0, 1);
    auto step = [&](auto op) {
      op();
      t.acked_at.push_back((*sim)->fences());
      auto now = Read(img);
      ASSERT_TRUE(now.ok());
      t.states.push_back(*now);
    };
    step([&] {
      auto d = img.Dedup(DedupScope::kGroup);
      ASSERT_TRUE(d.ok()) << d.status().ToString();
      freed = d->freed_blocks;
    });
    // Overwrites of shared blocks: base's A (named by base 0, 1, 4 and c
    // 5), c's B (named by base 3 and c 6, 7).
    step([&] { Put(img, 1, 'X'); });
    step([&] { Put(*c, 7, 'Y'); });
    step([&] { Put(img, 3, 'A'); });
    step([&] {
      auto d = img.Dedup(DedupScope::kGroup);
      ASSERT_TRUE(d.ok()) << d.status().ToString();
    });
    points = rec.Finish();
  }
  // Two A and the zero block of base; c's A, both B.
  EXPECT_EQ(freed, 6u);
  ASSERT_GT(points.size(), 10u);
  std::fprintf(stderr, "image dedup crash: %zu points\n", points.size());
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
