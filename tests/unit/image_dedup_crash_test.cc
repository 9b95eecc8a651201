// Crash consistency of dedup on the power-failure simulator: at every
// persist point of a dedup pass (remaps inside volumes and across a
// group, zero blocks made holes), the recovered image reads exactly as
// before the pass, Check finds every refcount exact, and the image keeps
// working (a second pass completes and writes go on).
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

Status CheckCrashImage(Mapping m, const Contents& want) {
  DAXSTORE_ASSIGN_OR_RETURN(Image img, Image::Open(std::move(m)));
  DAXSTORE_ASSIGN_OR_RETURN(CheckReport rep, img.Check());
  if (!rep.clean()) return Corruption("check: " + rep.findings.front());
  DAXSTORE_ASSIGN_OR_RETURN(Contents got, Read(img));
  if (got != want) return Corruption("content changed");
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
  auto want = Read(img);
  ASSERT_TRUE(want.ok());
  std::vector<powerfail::CrashPoint> points;
  uint64_t freed = 0;
  {
    powerfail::Recorder rec(*sim, 0, 1);
    auto d = img.Dedup(DedupScope::kGroup);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    freed = d->freed_blocks;
    points = rec.Finish();
  }
  // Two A and the zero block of base; c's A, both B.
  EXPECT_EQ(freed, 6u);
  ASSERT_GT(points.size(), 6u);
  std::fprintf(stderr, "image dedup crash: %zu points\n", points.size());
  auto rep = powerfail::CheckPoints(
      points,
      [&want](Mapping m, const powerfail::CrashCase&) {
        return CheckCrashImage(std::move(m), *want);
      },
      {.random_variants = 3, .single_kept_limit = 8, .seed = 1});
  ASSERT_TRUE(rep.status.ok()) << rep.status.ToString();
  EXPECT_GT(rep.images, points.size());
}

}  // namespace
}  // namespace daxstore
