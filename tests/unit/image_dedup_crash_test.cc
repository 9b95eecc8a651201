// Crash consistency of dedup on the power-failure simulator: at every
// persist point of a dedup pass (remaps inside volumes and across a
// group, zero blocks made holes), then of copy-on-write overwrites of the
// blocks it shared (at other virtual blocks and in other volumes) and a
// second pass, the recovered image reads as before or after the step in
// flight, Check finds every refcount exact, and the image keeps working
// (another pass completes and writes go on). The same at every persist
// point of a pass that guest writes race, and of a pass meeting the new
// blocks of one-fence writes whose records are still valid.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "daxstore/image.h"
#include "image/sharing.h"
#include "powerfail/crash.h"
#include "testing/crash_trace.h"
#include "testing/image_model.h"

namespace daxstore {
namespace {

using powerfail::Simulator;

constexpr size_t kSimSize = 256 << 10;
constexpr uint64_t kBs = 4096;
constexpr uint64_t kBlocks = 8;

using testing::CrashTrace;
using testing::ReadVolumes;
using testing::VolumeStates;

Result<VolumeStates> Read(const Image& img) {
  return ReadVolumes(img, kBlocks * kBs);
}

Status CheckCrashImage(Mapping m, uint64_t fence, const CrashTrace& t) {
  DAXSTORE_ASSIGN_OR_RETURN(Image img, Image::Open(std::move(m)));
  DAXSTORE_ASSIGN_OR_RETURN(CheckReport rep, img.Check());
  if (!rep.clean()) return Corruption("check: " + rep.findings.front());
  // One step is in flight at most: each volume block by block.
  DAXSTORE_RETURN_IF_ERROR(testing::BlocksOldOrNew(
      img, t.Acked(fence), t.Next(fence), kBs,
      "after " + std::to_string(t.Done(fence)) + " steps"));
  DAXSTORE_ASSIGN_OR_RETURN(const VolumeStates want, Read(img));
  DAXSTORE_ASSIGN_OR_RETURN(DedupReport d, img.Dedup(DedupScope::kGroup));
  (void)d;
  DAXSTORE_ASSIGN_OR_RETURN(rep, img.Check());
  if (!rep.clean())
    return Corruption("after a second pass: " + rep.findings.front());
  DAXSTORE_ASSIGN_OR_RETURN(VolumeStates got, Read(img));
  if (got != want) return Corruption("a second pass changed content");
  return testing::KeepsWorking(img, kBs);
}

// Crashes at every point (and random variants of kept lines) and checks
// each crash image with CheckCrashImage.
void CheckEveryPoint(const std::vector<powerfail::CrashPoint>& points,
                     const CrashTrace& t, uint64_t seed = 1) {
  auto rep = powerfail::CheckPoints(
      points,
      [&t](Mapping m, const powerfail::CrashCase& cc) {
        return CheckCrashImage(std::move(m), cc.fence, t);
      },
      {.random_variants = 3, .single_kept_limit = 8, .seed = seed});
  ASSERT_TRUE(rep.status.ok()) << rep.status.ToString();
  EXPECT_GT(rep.images, points.size());
}

// An image of kBlocks blocks, `lanes` lanes and 4 volume slots on the
// simulator's media, zero detection off (zero blocks stay data for the
// pass to find).
Result<Image> Fresh(Simulator& sim, uint32_t lanes = 4) {
  ImageOptions o;
  o.virtual_size = kBlocks * kBs;
  o.lanes = lanes;
  o.max_volumes = 4;
  DAXSTORE_ASSIGN_OR_RETURN(Mapping m, sim.Map());
  DAXSTORE_ASSIGN_OR_RETURN(Image img, Image::Format(std::move(m), o));
  img.set_detect_zeroes(false);
  return img;
}

void Put(Image& img, uint64_t b, uint8_t c) {
  std::vector<uint8_t> v(kBs, c);
  ASSERT_TRUE(img.Write(b * kBs, v.data(), kBs).ok());
}

TEST(ImageDedupCrash, EveryPersistPointOfADedupPassRecovers) {
  auto sim = Simulator::Create(kSimSize);
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  auto formatted = Fresh(**sim);
  ASSERT_TRUE(formatted.ok()) << formatted.status().ToString();
  Image& img = *formatted;
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
  CrashTrace t;
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
  CheckEveryPoint(points, t);
}

// Guest writes racing a pass, interleaved deterministically: the pass
// calls image::dedup_step_hook before it scans each block and before each
// remap, and the hook writes a block at each call, a seeded choice of
// volume, block and content among few contents. So writes rewrite blocks
// the scan hashed, blocks the remaps move and the blocks they target (a
// target freed and taken by a write of other content, which only the
// remap's byte comparison tells apart), and make new duplicates and zero
// blocks. A write comes at every other call (so that some remaps still
// find their blocks), half of them on the pass's thread (its lane) and
// half on a new thread (the next lane), whose one-fence records are still
// valid when the pass remaps. Each write is a step acknowledged when it
// returns; the pass changes no content.
void PassRacingWrites(uint64_t seed, DedupReport* pass, size_t* deferred) {
  auto sim = Simulator::Create(kSimSize);
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  auto formatted = Fresh(**sim);
  ASSERT_TRUE(formatted.ok()) << formatted.status().ToString();
  Image& img = *formatted;
  ASSERT_TRUE(img.Snapshot("empty").ok());
  ASSERT_TRUE(img.Clone("empty", "c", "g").ok());
  ASSERT_TRUE(img.Clone("empty", "d", "g").ok());
  ASSERT_TRUE(img.SetSharingGroup("base", "g").ok());
  const std::vector<std::string> names = {"base", "c", "d"};
  std::vector<Image> vols;
  for (const std::string& n : names) {
    auto h = img.OpenVolume(n);
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    h->set_detect_zeroes(false);
    vols.push_back(std::move(*h));
  }
  const uint8_t kPool[] = {'A', 'B', 'C', 0};
  std::mt19937_64 rng(seed);
  auto initial = Read(img);
  ASSERT_TRUE(initial.ok());
  VolumeStates model = *initial;
  auto put = [&](size_t v, uint64_t b, uint8_t c) {
    std::vector<uint8_t> data(kBs, c);
    Status st = vols[v].Write(b * kBs, data.data(), kBs);
    model.at(names[v]).Write(b * kBs, data.data(), kBs);
    return st;
  };
  for (size_t v = 0; v < names.size(); v++) {
    for (uint64_t b = 0; b < kBlocks; b++) {
      ASSERT_TRUE(put(v, b, kPool[rng() % 4]).ok());
    }
  }
  CrashTrace t;
  t.states.push_back(model);
  std::vector<powerfail::CrashPoint> points;
  size_t writes = 0;
  Status write_status;
  {
    powerfail::Recorder rec(*sim, 0, 1);
    // A write at every other call, so that some remaps still find their
    // blocks.
    image::dedup_step_hook = [&] {
      if (!write_status.ok() || rng() % 2) return;
      const size_t v = rng() % names.size();
      const uint64_t b = rng() % kBlocks;
      const uint8_t c = kPool[rng() % 4];
      const uint64_t before = (*sim)->fences();
      if (rng() % 2) {
        write_status = put(v, b, c);
      } else {
        std::thread([&] { write_status = put(v, b, c); }).join();
      }
      // One fence: the write's apply was deferred.
      *deferred += (*sim)->fences() - before == 1;
      t.acked_at.push_back((*sim)->fences());
      t.states.push_back(model);
      writes++;
    };
    auto d = img.Dedup(DedupScope::kGroup);
    image::dedup_step_hook = nullptr;
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    ASSERT_TRUE(write_status.ok()) << write_status.ToString();
    *pass = *d;
    t.acked_at.push_back((*sim)->fences());
    t.states.push_back(model);
    points = rec.Finish();
  }
  // Nothing reads stale content.
  EXPECT_GT(writes, 10u);
  auto after = Read(img);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(*after == model) << "a block reads other than last written";
  auto check = img.Check();
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->clean()) << check->findings.front();
  std::fprintf(
      stderr,
      "image dedup racing writes: %zu writes (%zu with one fence), "
      "%llu remapped, %llu skipped, %zu points\n",
      writes, *deferred, static_cast<unsigned long long>(pass->remapped_blocks),
      static_cast<unsigned long long>(pass->skipped_blocks), points.size());
  CheckEveryPoint(points, t, seed);
}

TEST(ImageDedupCrash, EveryPersistPointOfAPassRacingWritesRecovers) {
  uint64_t remapped = 0, skipped = 0;
  size_t deferred = 0;
  for (uint64_t seed = 1; seed <= 8; seed++) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    DedupReport pass;
    size_t one_fence = 0;
    PassRacingWrites(seed, &pass, &one_fence);
    deferred += one_fence;
    remapped += pass.remapped_blocks;
    skipped += pass.skipped_blocks;
  }
  // The race happened: blocks changed under the passes were skipped,
  // others remapped, and writes during the passes took one fence.
  EXPECT_GT(remapped, 0u);
  EXPECT_GT(skipped, 0u);
  EXPECT_GT(deferred, 0u);
}

// One-fence writes during a pass whose new blocks the pass then meets,
// each on its own lane (a new thread), their records still valid on media
// when the pass remaps (nothing else writes on those lanes): base block 0
// rewritten to A before the scan, so its new block is the block the
// other A blocks would be remapped onto; base block 5 rewritten to B, so
// the pass would remap it away from its new block onto block 2's; and
// block 4's block X, which the scan met holding C (so the C blocks would
// be remapped onto it), freed by three rewrites of block 4 on one lane
// and taken again by that lane's write of C to block 7. A remap onto or
// away from such a block would be undone in part by the record's redo
// (refcount 1 where two entries name the block, or a freed block mapped
// again), so the pass leaves them alone; c's block 0 is remapped. The
// pass runs on a new thread too, whose lane is then none of the writers'.
// At every persist point the image recovers as in CheckCrashImage.
TEST(ImageDedupCrash, EveryPersistPointOfAPassMeetingOneFenceWritesRecovers) {
  auto sim = Simulator::Create(kSimSize);
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  // Lanes enough that the writers' and the pass's threads get one each.
  auto formatted = Fresh(**sim, 16);
  ASSERT_TRUE(formatted.ok()) << formatted.status().ToString();
  Image& img = *formatted;
  ASSERT_TRUE(img.Snapshot("empty").ok());
  ASSERT_TRUE(img.Clone("empty", "c", "g").ok());
  ASSERT_TRUE(img.SetSharingGroup("base", "g").ok());
  auto c = img.OpenVolume("c");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  c->set_detect_zeroes(false);
  // base: P A B A C T C S; c: B.
  const char kBase[] = "PABACTCS";
  for (uint64_t b = 0; b < kBlocks; b++) Put(img, b, kBase[b]);
  Put(*c, 0, 'B');
  auto initial = Read(img);
  ASSERT_TRUE(initial.ok());
  VolumeStates model = *initial;
  CrashTrace t;
  t.states.push_back(model);
  std::vector<powerfail::CrashPoint> points;
  size_t calls = 0, writes = 0, deferred = 0;
  Status write_status;
  DedupReport pass;
  {
    powerfail::Recorder rec(*sim, 0, 1);
    // Writes `blocks` of base (one content each) on a new thread, each an
    // acknowledged step.
    auto writer = [&](std::vector<std::pair<uint64_t, uint8_t>> blocks) {
      std::thread([&] {
        for (auto [b, ch] : blocks) {
          std::vector<uint8_t> d(kBs, ch);
          const uint64_t before = (*sim)->fences();
          Status st = img.Write(b * kBs, d.data(), kBs);
          if (!st.ok() && write_status.ok()) write_status = st;
          // One fence: the write's apply was deferred.
          deferred += (*sim)->fences() - before == 1;
          writes++;
          model.at("base").Write(b * kBs, d.data(), kBs);
          t.acked_at.push_back((*sim)->fences());
          t.states.push_back(model);
        }
      }).join();
    };
    // Calls 0 to 7 come before the scan of base's blocks 0 to 7.
    image::dedup_step_hook = [&] {
      switch (calls++) {
        case 0:
          writer({{0, 'A'}});
          break;
        case 2:
          writer({{5, 'B'}});
          break;
        case 5:
          writer({{4, 'D'}, {4, 'E'}, {4, 'F'}, {7, 'C'}});
          break;
      }
    };
    Result<DedupReport> d = InvalidArgument("the pass did not run");
    std::thread([&] { d = img.Dedup(DedupScope::kGroup); }).join();
    image::dedup_step_hook = nullptr;
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    ASSERT_TRUE(write_status.ok()) << write_status.ToString();
    pass = *d;
    t.acked_at.push_back((*sim)->fences());
    t.states.push_back(model);
    points = rec.Finish();
  }
  EXPECT_EQ(writes, 6u);
  EXPECT_EQ(deferred, 6u);
  // Left alone: base 1 and 3 (onto block 0's), 5 (away from its new
  // block), 6 (onto X, block 7's again). Remapped: c's 0 onto base 2's.
  EXPECT_EQ(pass.remapped_blocks, 1u);
  EXPECT_EQ(pass.skipped_blocks, 4u);
  auto after = Read(img);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(*after == model) << "a block reads other than last written";
  auto check = img.Check();
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->clean()) << check->findings.front();
  std::fprintf(stderr, "image dedup meeting one-fence writes: %zu points\n",
               points.size());
  CheckEveryPoint(points, t);
}

}  // namespace
}  // namespace daxstore
