// Crash consistency of images on the power-failure simulator. A random I/O
// sequence runs once while every crash point is recorded; each crash image
// is then opened (recovery) and checked against an in-memory model:
//   - every acknowledged write survives;
//   - every block holds its content from after the last acknowledged
//     operation or from after the operation in flight, never a mix;
//   - no block is leaked or used twice (Check is clean).
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

#include "daxstore/image.h"
#include "powerfail/crash.h"
#include "testing/image_model.h"
#include "testing/temp_dir.h"

namespace daxstore {
namespace {

using powerfail::CrashPoint;
using powerfail::Fate;
using powerfail::Simulator;
using testing::DiskModel;

constexpr size_t kSimSize = 160 << 10;
constexpr uint64_t kBs = 4096;
constexpr uint64_t kVirtual = 16 * kBs;

uint64_t Seed() {
  const char* s = std::getenv("DAXSTORE_POWERFAIL_SEED");
  return s ? std::strtoull(s, nullptr, 10) : 20261121;
}

ImageOptions Options() {
  ImageOptions o;
  o.virtual_size = kVirtual;
  o.lanes = 4;
  return o;
}

// The disk after each operation: states[0] before the first one.
struct Trace {
  std::vector<DiskModel> states;
  std::vector<uint64_t> acked_at;  // fences done when op i returned
};

// Recovers the crash image and checks it against the trace, given the
// number of fences completed before the crash.
// What a read-only open of the crash image reads, block by block: a copy
// of its bytes opened read-only from a file (it replays nothing).
Result<std::vector<std::vector<uint8_t>>> ReadOnlyView(const Mapping& m) {
  static testing::TempDir dir("/dev/shm");
  const std::string path = dir / "crash.img";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(static_cast<const char*>(m.data()),
              static_cast<std::streamsize>(m.size()));
    if (!out) return IoError("cannot write " + path, EIO);
  }
  MapOptions ro;
  ro.access = Access::kReadOnly;
  DAXSTORE_ASSIGN_OR_RETURN(Image img, Image::Open(path, ro));
  std::vector<std::vector<uint8_t>> blocks;
  for (uint64_t b = 0; b < kVirtual / kBs; b++) {
    blocks.emplace_back(kBs);
    DAXSTORE_RETURN_IF_ERROR(img.Read(b * kBs, blocks.back().data(), kBs));
  }
  return blocks;
}

Status CheckCrashImage(Mapping m, uint64_t fence, const Trace& t) {
  // Before recovery: a read-only open must read what recovery leaves.
  DAXSTORE_ASSIGN_OR_RETURN(auto ro_view, ReadOnlyView(m));
  DAXSTORE_ASSIGN_OR_RETURN(Image img, Image::Open(std::move(m)));
  DAXSTORE_ASSIGN_OR_RETURN(CheckReport rep, img.Check());
  if (!rep.clean()) return Corruption("check: " + rep.findings.front());
  size_t done = 0;  // operations acknowledged before the crash
  while (done < t.acked_at.size() && t.acked_at[done] <= fence) done++;
  const DiskModel& acked = t.states[done];
  const DiskModel& next = t.states[std::min(done + 1, t.states.size() - 1)];
  std::vector<uint8_t> got(kBs);
  for (uint64_t b = 0; b < kVirtual / kBs; b++) {
    DAXSTORE_RETURN_IF_ERROR(img.Read(b * kBs, got.data(), kBs));
    if (got != ro_view[b]) {
      return Corruption("block " + std::to_string(b) +
                        " read-only before recovery differs from what "
                        "recovery leaves");
    }
    bool old_ok = std::memcmp(got.data(), acked.at(b * kBs), kBs) == 0;
    bool new_ok = std::memcmp(got.data(), next.at(b * kBs), kBs) == 0;
    if (!old_ok && !new_ok) {
      return Corruption("block " + std::to_string(b) + " after " +
                        std::to_string(done) +
                        " acknowledged ops is neither old nor new (torn or "
                        "lost)");
    }
  }
  // Allocated space matches the content: nothing leaked.
  DAXSTORE_ASSIGN_OR_RETURN(ImageInfo info, img.Info());
  uint64_t nonzero = 0;
  for (uint64_t b = 0; b < kVirtual / kBs; b++) {
    DAXSTORE_RETURN_IF_ERROR(img.Read(b * kBs, got.data(), kBs));
    nonzero += std::any_of(got.begin(), got.end(), [](uint8_t c) { return c; });
  }
  if (info.allocated_blocks != nonzero) {
    return Corruption(std::to_string(info.allocated_blocks) +
                      " blocks allocated for " + std::to_string(nonzero) +
                      " non-zero blocks");
  }
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
  return {.random_variants = 4, .single_kept_limit = 12, .seed = seed};
}

// Each parameter is a different workload (and set of crash mixes); the
// first follows DAXSTORE_POWERFAIL_SEED when it is set.
class ImageCrashSeeds : public ::testing::TestWithParam<uint64_t> {};

TEST_P(ImageCrashSeeds, EveryPersistPointOfRandomIoRecovers) {
  const uint64_t seed = GetParam() ? GetParam() : Seed();
  auto sim = Simulator::Create(kSimSize);
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  auto img = Image::Format(std::move((*sim)->Map()).value(), Options());
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  Trace t;
  DiskModel model(kVirtual);
  std::mt19937_64 rng(seed);
  // A few blocks written before recording starts.
  auto pre = testing::RandomBytes(rng, 5 * kBs);
  ASSERT_TRUE(img->Write(2 * kBs, pre.data(), pre.size()).ok());
  model.Write(2 * kBs, pre.data(), pre.size());
  t.states.push_back(model);
  std::vector<CrashPoint> points;
  {
    powerfail::Recorder rec(*sim, 0, seed);
    for (int i = 0; i < 24; i++) {
      uint64_t off = rng() % kVirtual;
      if (rng() % 2) off -= off % 512;
      size_t n = 1 + rng() % std::min<uint64_t>(2 * kBs + 300, kVirtual - off);
      Status st;
      const uint64_t kind = rng() % 6;
      // Odd workloads run every operation on a new thread, hence on the
      // next lane: lanes then keep records naming blocks that other lanes
      // move, free and reuse before the crash. (One thread at a time, so
      // the simulator still sees one sequence of fences.)
      auto run = [&](auto op) {
        if (GetParam() % 2) {
          std::thread th([&] { st = op(); });
          th.join();
        } else {
          st = op();
        }
      };
      switch (kind) {
        case 0:
          run([&] { return img->Discard(off, n); });
          model.Zero(off, n);
          break;
        case 1: {
          std::vector<uint8_t> z(n, 0);
          run([&] { return img->Write(off, z.data(), n); });
          model.Zero(off, n);
          break;
        }
        default: {
          auto d = testing::RandomBytes(rng, n);
          run([&] { return img->Write(off, d.data(), n); });
          model.Write(off, d.data(), n);
        }
      }
      ASSERT_TRUE(st.ok()) << st.ToString();
      // From workload 4 on, every other pair acknowledges a write when it
      // returns, without Flush: it is durable then (its data and record
      // are; recovery redoes its map update).
      if (GetParam() < 4 || GetParam() % 4 < 2) {
        ASSERT_TRUE(img->Flush().ok());
      }
      t.acked_at.push_back((*sim)->fences());
      t.states.push_back(model);
    }
    points = rec.Finish();
  }
  ASSERT_GT(points.size(), 24u);
  std::fprintf(stderr, "image crash: %zu points, seed %llu\n", points.size(),
               static_cast<unsigned long long>(seed));
  auto rep = powerfail::CheckPoints(points, AgainstTrace(t), Variants(seed));
  ASSERT_TRUE(rep.status.ok()) << rep.status.ToString();
  EXPECT_GT(rep.images, points.size() * 3);
}

INSTANTIATE_TEST_SUITE_P(Workloads, ImageCrashSeeds,
                         ::testing::Range(uint64_t{0}, uint64_t{16}));

TEST(ImageCrash, NoValidRecordUndoesALaterMoveByAnotherLane) {
  // Lane A fills block 0 (its record's old entry is a hole). Lane B zeroes
  // block 0, which frees A's new block Y, and reuses Y for block 1. If A's
  // record were still valid at a crash, recovery would see the hole back
  // at block 0 and undo it: ref[Y] = 0 while block 1 maps Y.
  // (This is why records whose old entry is a hole are cleared.)
  auto sim = Simulator::Create(kSimSize);
  ASSERT_TRUE(sim.ok());
  auto img = Image::Format(std::move((*sim)->Map()).value(), Options());
  ASSERT_TRUE(img.ok());
  Trace t;
  DiskModel model(kVirtual);
  t.states.push_back(model);
  std::vector<uint8_t> a(kBs, 0xa1), zeros(kBs, 0), b(kBs, 0xb2);
  std::vector<CrashPoint> points;
  {
    powerfail::Recorder rec(*sim, 0, 7);
    auto step = [&](uint64_t off, const std::vector<uint8_t>& d) {
      // Zeros through Discard: no block is taken to check them.
      EXPECT_TRUE(
          (d[0] ? img->Write(off, d.data(), kBs) : img->Discard(off, kBs))
              .ok());
      model.Write(off, d.data(), kBs);
      t.acked_at.push_back((*sim)->fences());
      t.states.push_back(model);
    };
    // One thread at a time: each thread is a different lane.
    std::thread([&] { step(0, a); }).join();
    std::thread([&] {
      step(0, zeros);
      step(kBs, b);
      step(2 * kBs, b);  // B's record stops naming Y
    }).join();
    points = rec.Finish();
  }
  auto rep = powerfail::CheckPoints(points, AgainstTrace(t), Variants(7));
  ASSERT_TRUE(rep.status.ok()) << rep.status.ToString();
}

TEST(ImageCrash, CrashDuringFormatLeavesNoImageOrAnEmptyOne) {
  auto op = [](Mapping m) {
    return Image::Format(std::move(m), Options()).status();
  };
  auto check = [](Mapping m, const powerfail::CrashCase&) -> Status {
    auto img = Image::Open(std::move(m));
    if (img.status().kind() == ErrorKind::kNotFound) return Status::Ok();
    if (!img.ok()) return img.status();
    DAXSTORE_ASSIGN_OR_RETURN(ImageInfo info, img->Info());
    if (info.allocated_blocks) return Corruption("new image not empty");
    DAXSTORE_ASSIGN_OR_RETURN(CheckReport rep, img->Check());
    return rep.clean() ? Status::Ok() : Corruption(rep.findings[0]);
  };
  powerfail::ExploreOptions o;
  o.seed = Seed();
  auto rep = powerfail::Explore(
      kSimSize, [](Mapping) { return Status::Ok(); }, op, check, o);
  ASSERT_TRUE(rep.status.ok()) << rep.status.ToString();
}

TEST(ImageCrash, CrashDuringRecoveryRecoversAgain) {
  // A crash image with a valid redo record (the kept record of a
  // completed overwrite: the crash comes right after the write returned),
  // then crashes inside its recovery.
  std::vector<uint8_t> media;
  DiskModel before(kVirtual), after(kVirtual);
  std::vector<uint8_t> d(kBs, 0x77);
  {
    auto sim = Simulator::Create(kSimSize);
    ASSERT_TRUE(sim.ok());
    auto img = Image::Format(std::move((*sim)->Map()).value(), Options());
    ASSERT_TRUE(img.ok());
    ASSERT_TRUE(img->Write(0, d.data(), kBs).ok());
    before.Write(0, d.data(), kBs);
    std::fill(d.begin(), d.end(), 0x33);
    after = before;
    after.Write(0, d.data(), kBs);
    powerfail::Recorder rec(*sim, 0, 1);
    ASSERT_TRUE(img->Write(0, d.data(), kBs).ok());
    auto points = rec.Finish();
    // Fences: data + record (and the last write's apply); then the final
    // point.
    ASSERT_EQ(points.size(), 2u);
    std::mt19937_64 rng(1);
    media = Materialize(
        points.back(), [](size_t) { return Fate::kLost; }, rng);
    auto probe = Simulator::FromImage(media);
    auto reopened = Image::Open(std::move((*probe)->Map()).value());
    ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
    EXPECT_EQ(reopened->Info()->recovered_records, 1u);
  }
  auto setup = [&](Mapping m) {
    m.MemcpyPersist(m.data(), media.data(), media.size());
    return Status::Ok();
  };
  auto op = [](Mapping m) { return Image::Open(std::move(m)).status(); };
  Trace t;
  t.states = {after};
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
