// Image::Sharing: known layouts of zero blocks, clone sharing,
// self-sharing and inter-volume sharing, and the blocks a dedup of each
// scope would free; a report taken while a writer runs.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "daxstore/image.h"
#include "testing/temp_dir.h"

namespace daxstore {
namespace {

using testing::TempDir;

constexpr uint64_t kBs = 4096;

MapOptions Emulated() {
  MapOptions mo;
  mo.emulate = PersistenceDomain::kMemoryController;
  return mo;
}

class ImageSharingTest : public ::testing::Test {
 protected:
  Image Make(uint32_t max_volumes, uint64_t blocks) {
    ImageOptions o;
    o.virtual_size = blocks * kBs;
    o.lanes = 4;
    o.max_volumes = max_volumes;
    auto img = Image::Create(path_, o, Emulated());
    EXPECT_TRUE(img.ok()) << img.status().ToString();
    return std::move(img).value();
  }
  static void Put(Image& img, uint64_t b, uint8_t c) {
    std::vector<uint8_t> v(kBs, c);
    ASSERT_TRUE(img.Write(b * kBs, v.data(), kBs).ok());
  }
  static const SharingCounts& Of(const SharingReport& r,
                                 const std::string& name) {
    for (const VolumeSharing& v : r.volumes) {
      if (v.name == name) return v.counts;
    }
    ADD_FAILURE() << "no volume " << name;
    return r.total;
  }
  // Every mapped block is counted exactly once by kind.
  static void ExpectPartition(const SharingCounts& c) {
    EXPECT_EQ(c.mapped_blocks, c.zero_blocks + c.unreadable_blocks +
                                   c.self_sharing_blocks +
                                   c.inter_volume_blocks + c.distinct_blocks);
    EXPECT_EQ(c.virtual_blocks, c.mapped_blocks + c.holes);
  }
  TempDir dir_;
  std::string path_ = dir_.path() + "/img";
};

TEST_F(ImageSharingTest, OneVolume) {
  Image img = Make(2, 16);
  img.set_detect_zeroes(false);  // zero writes take data blocks
  Put(img, 0, 'A');
  Put(img, 1, 'A');
  Put(img, 2, 'A');
  Put(img, 3, 'B');
  Put(img, 4, 0);
  Put(img, 5, 0);
  Put(img, 9, 'B');
  auto r = img.Sharing();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->volumes.size(), 1u);
  const SharingCounts& c = r->volumes[0].counts;
  EXPECT_EQ(r->volumes[0].name, "base");
  EXPECT_EQ(r->volumes[0].group, "");
  EXPECT_EQ(r->block_size, kBs);
  EXPECT_EQ(c.virtual_blocks, 16u);
  EXPECT_EQ(c.holes, 9u);
  EXPECT_EQ(c.mapped_blocks, 7u);
  EXPECT_EQ(c.zero_blocks, 2u);
  EXPECT_EQ(c.shared_blocks, 0u);
  EXPECT_EQ(c.self_sharing_blocks, 3u);  // two more A, one more B
  EXPECT_EQ(c.inter_volume_blocks, 0u);
  EXPECT_EQ(c.distinct_blocks, 2u);
  // Two A and one B remapped, both zero blocks made holes.
  EXPECT_EQ(c.dedup_volume_blocks, 5u);
  EXPECT_EQ(c.dedup_group_blocks, 5u);
  EXPECT_EQ(r->data_blocks_used, 7u);
  ExpectPartition(c);
  EXPECT_EQ(r->total.dedup_volume_blocks, 5u);
  // Nothing changed.
  EXPECT_EQ(img.Info()->allocated_blocks, 7u);
}

TEST_F(ImageSharingTest, SnapshotAndClone) {
  Image img = Make(4, 32);
  img.set_detect_zeroes(false);
  for (uint64_t b : {0, 1, 2}) Put(img, b, 'A');
  Put(img, 3, 'B');
  Put(img, 4, 0);
  Put(img, 5, 0);
  Put(img, 7, 'C');
  ASSERT_TRUE(img.Snapshot("gold").ok());
  ASSERT_TRUE(img.Clone("gold", "vm1").ok());
  auto vm1 = img.OpenVolume("vm1");
  ASSERT_TRUE(vm1.ok());
  Put(*vm1, 0, 'E');  // copy-on-write: vm1's own block
  Put(*vm1, 10, 'B');
  Put(*vm1, 11, 'D');
  Put(*vm1, 12, 'D');

  auto r = img.Sharing();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->volumes.size(), 3u);
  const SharingCounts& base = Of(*r, "base");
  EXPECT_EQ(base.mapped_blocks, 7u);
  EXPECT_EQ(base.zero_blocks, 2u);
  EXPECT_EQ(base.shared_blocks, 7u);  // every block is gold's too
  EXPECT_EQ(base.self_sharing_blocks, 2u);
  EXPECT_EQ(base.inter_volume_blocks, 0u);
  EXPECT_EQ(base.distinct_blocks, 3u);
  // Every duplicate is also named by gold: remapping base frees nothing.
  EXPECT_EQ(base.dedup_volume_blocks, 0u);

  const SharingCounts& gold = Of(*r, "gold");
  EXPECT_EQ(gold.self_sharing_blocks, 2u);
  EXPECT_EQ(gold.inter_volume_blocks, 3u);  // A, B and C are base's
  EXPECT_EQ(gold.distinct_blocks, 0u);
  EXPECT_EQ(gold.dedup_volume_blocks, 0u);

  const SharingCounts& c = Of(*r, "vm1");
  EXPECT_EQ(c.mapped_blocks, 10u);
  EXPECT_EQ(c.zero_blocks, 2u);
  EXPECT_EQ(c.shared_blocks, 6u);        // all but E, B at 10, D, D
  EXPECT_EQ(c.self_sharing_blocks, 3u);  // A at 2, B at 10, D at 12
  EXPECT_EQ(c.inter_volume_blocks, 3u);  // A, B, C
  EXPECT_EQ(c.distinct_blocks, 2u);      // E, D
  // B at 10 onto the shared B, D at 12 onto D at 11.
  EXPECT_EQ(c.dedup_volume_blocks, 2u);
  EXPECT_EQ(c.dedup_group_blocks, 2u);  // no groups: the same
  for (const VolumeSharing& v : r->volumes) ExpectPartition(v.counts);

  EXPECT_EQ(r->total.mapped_blocks, 24u);
  EXPECT_EQ(r->total.distinct_blocks, 5u);  // A B C D E
  EXPECT_EQ(r->total.dedup_volume_blocks, 2u);
  EXPECT_EQ(r->data_blocks_used, 11u);
  EXPECT_EQ(img.Info()->allocated_blocks, 11u);

  // One volume alone: inter-volume sharing needs a second volume.
  auto only = img.Sharing({"vm1"});
  ASSERT_TRUE(only.ok());
  ASSERT_EQ(only->volumes.size(), 1u);
  EXPECT_EQ(only->volumes[0].counts.inter_volume_blocks, 0u);
  EXPECT_EQ(only->volumes[0].counts.distinct_blocks, 5u);
  EXPECT_EQ(only->volumes[0].counts.dedup_volume_blocks, 2u);
}

TEST_F(ImageSharingTest, UnknownVolume) {
  Image img = Make(2, 8);
  auto r = img.Sharing({"nope"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().kind(), ErrorKind::kNotFound);
  EXPECT_NE(r.status().message().find("'nope'"), std::string::npos);
}

// Sharing groups: set, shown, kept across a reopen, taken by snapshots,
// given to clones; bad names refused.
TEST_F(ImageSharingTest, Groups) {
  {
    Image img = Make(4, 8);
    ASSERT_TRUE(img.SetSharingGroup("base", "tenant-a").ok());
    ASSERT_TRUE(img.Snapshot("gold").ok());
    ASSERT_TRUE(img.Clone("gold", "vm1", "tenant-b").ok());
    ASSERT_TRUE(img.Clone("gold", "vm2").ok());
    Status bad = img.SetSharingGroup("vm2", "no/slash");
    EXPECT_EQ(bad.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(bad.message().find("sharing group"), std::string::npos);
    EXPECT_EQ(img.Clone("gold", "vm3", "a b").kind(),
              ErrorKind::kInvalidArgument);
    EXPECT_EQ(img.SetSharingGroup("nope", "g").kind(), ErrorKind::kNotFound);
  }
  auto img = Image::Open(path_, Emulated());
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  auto vols = img->Volumes();
  ASSERT_TRUE(vols.ok());
  std::map<std::string, std::string> got;
  for (const VolumeInfo& v : *vols) got[v.name] = v.group;
  EXPECT_EQ(got, (std::map<std::string, std::string>{{"base", "tenant-a"},
                                                     {"gold", "tenant-a"},
                                                     {"vm1", "tenant-b"},
                                                     {"vm2", ""}}));
  ASSERT_TRUE(img->SetSharingGroup("base", "").ok());
  auto again = img->Volumes();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)[0].group, "");
  auto check = img->Check();
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->clean());
}

// Volumes of one group may share what volumes alone may not.
TEST_F(ImageSharingTest, GroupScope) {
  Image img = Make(5, 8);
  ASSERT_TRUE(img.Snapshot("empty").ok());
  ASSERT_TRUE(img.Clone("empty", "a", "g").ok());
  ASSERT_TRUE(img.Clone("empty", "b", "g").ok());
  ASSERT_TRUE(img.Clone("empty", "x").ok());
  auto a = img.OpenVolume("a");
  auto b = img.OpenVolume("b");
  auto x = img.OpenVolume("x");
  ASSERT_TRUE(a.ok() && b.ok() && x.ok());
  Put(*a, 0, 'P');
  Put(*a, 1, 'Q');
  Put(*a, 2, 'Q');
  Put(*b, 0, 'P');
  Put(*x, 0, 'P');
  auto r = img.Sharing();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Of(*r, "a").dedup_volume_blocks, 1u);  // the second Q
  EXPECT_EQ(Of(*r, "a").dedup_group_blocks, 1u);   // a keeps its P
  EXPECT_EQ(Of(*r, "b").dedup_volume_blocks, 0u);
  EXPECT_EQ(Of(*r, "b").dedup_group_blocks, 1u);  // b's P onto a's
  EXPECT_EQ(Of(*r, "x").dedup_group_blocks, 0u);  // x is in no group
  EXPECT_EQ(Of(*r, "b").inter_volume_blocks, 1u);
  EXPECT_EQ(Of(*r, "x").inter_volume_blocks, 1u);
  EXPECT_EQ(r->total.dedup_volume_blocks, 1u);
  EXPECT_EQ(r->total.dedup_group_blocks, 2u);
  for (const VolumeSharing& v : r->volumes) {
    EXPECT_EQ(v.group, v.name == "a" || v.name == "b" ? "g" : "");
  }
}

// Every volume's content, block by block.
std::map<std::string, std::vector<uint8_t>> Contents(const Image& img) {
  std::map<std::string, std::vector<uint8_t>> out;
  auto vols = img.Volumes();
  EXPECT_TRUE(vols.ok());
  for (const VolumeInfo& v : *vols) {
    auto h = img.OpenVolume(v.name);
    EXPECT_TRUE(h.ok());
    std::vector<uint8_t> d(img.virtual_size());
    EXPECT_TRUE(h->Read(0, d.data(), d.size()).ok());
    out[v.name] = std::move(d);
  }
  return out;
}

// Dedup frees what the report said it would, changes no content, and
// leaves blocks that writes then split copy-on-write.
TEST_F(ImageSharingTest, DedupFreesWhatSharingReports) {
  Image img = Make(5, 32);
  img.set_detect_zeroes(false);
  ASSERT_TRUE(img.Snapshot("empty").ok());
  for (uint64_t b : {0, 1, 2}) Put(img, b, 'A');
  Put(img, 3, 'B');
  Put(img, 4, 0);
  ASSERT_TRUE(img.Clone("empty", "a", "g").ok());
  ASSERT_TRUE(img.Clone("empty", "b", "g").ok());
  auto a = img.OpenVolume("a");
  auto b = img.OpenVolume("b");
  ASSERT_TRUE(a.ok() && b.ok());
  Put(*a, 10, 'P');
  Put(*a, 11, 'P');
  Put(*a, 12, 0);
  Put(*b, 10, 'P');
  Put(*b, 13, 'Q');
  const auto before = Contents(img);
  const uint64_t used = img.Info()->allocated_blocks;

  auto r = img.Sharing();
  ASSERT_TRUE(r.ok());
  const uint64_t by_volume = r->total.dedup_volume_blocks;
  const uint64_t by_group = r->total.dedup_group_blocks;
  // base: two A and its zero block; a: one P and its zero block; b:
  // nothing alone.
  EXPECT_EQ(by_volume, 5u);
  EXPECT_EQ(by_group, 6u);  // and b's P onto a's (base is in no group)

  auto d = img.Dedup(DedupScope::kVolume);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->freed_blocks, by_volume);
  EXPECT_EQ(d->skipped_blocks, 0u);
  EXPECT_EQ(img.Info()->allocated_blocks, used - by_volume);
  auto g = img.Dedup(DedupScope::kGroup);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->freed_blocks, by_group - by_volume);
  EXPECT_EQ(img.Info()->allocated_blocks, used - by_group);
  EXPECT_EQ(img.Info()->allocated_blocks, 4u);  // A, B, P, Q
  EXPECT_EQ(Contents(img), before);
  auto again = img.Sharing();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->total.dedup_group_blocks, 0u);
  auto check = img.Check();
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->clean()) << check->findings.front();

  // Copy-on-write: a's two P blocks (now one data block, b's too) part.
  Put(*a, 10, 'X');
  std::vector<uint8_t> v(kBs);
  ASSERT_TRUE(a->Read(11 * kBs, v.data(), kBs).ok());
  EXPECT_EQ(v, std::vector<uint8_t>(kBs, 'P'));
  ASSERT_TRUE(b->Read(10 * kBs, v.data(), kBs).ok());
  EXPECT_EQ(v, std::vector<uint8_t>(kBs, 'P'));
  ASSERT_TRUE(a->Read(10 * kBs, v.data(), kBs).ok());
  EXPECT_EQ(v, std::vector<uint8_t>(kBs, 'X'));
  check = img.Check();
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->clean());
}

TEST_F(ImageSharingTest, DedupOneVolumeMatchesReport) {
  Image img = Make(2, 16);
  img.set_detect_zeroes(false);
  for (uint64_t b : {0, 1, 2, 7}) Put(img, b, 'A');
  Put(img, 3, 'B');
  Put(img, 9, 'B');
  Put(img, 4, 0);
  auto r = img.Sharing();
  ASSERT_TRUE(r.ok());
  auto d = img.Dedup(DedupScope::kVolume, {"base"});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->remapped_blocks, 4u);
  EXPECT_EQ(d->zero_blocks, 1u);
  EXPECT_EQ(d->freed_blocks, r->total.dedup_volume_blocks);
  EXPECT_EQ(img.Info()->allocated_blocks, 2u);  // one A, one B
  EXPECT_EQ(img.Dedup(DedupScope::kVolume, {"nope"}).status().kind(),
            ErrorKind::kNotFound);
}

// A speed limit holds the pass to that many bytes of mapped blocks per
// second (it sleeps while ahead), and the pass does the same work: 64
// mapped blocks scanned and 63 compared for their remap make 127 blocks,
// which at 1 MiB/s take at least 127 * 4 KiB / 1 MiB ~ 0.5 s.
TEST_F(ImageSharingTest, DedupSpeedHoldsThePassToItsRate) {
  Image img = Make(2, 64);
  for (uint64_t b = 0; b < 64; b++) Put(img, b, 'A');
  const auto start = std::chrono::steady_clock::now();
  auto d = img.Dedup(DedupScope::kVolume, {}, 1 << 20);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->remapped_blocks, 63u);
  EXPECT_EQ(d->freed_blocks, 63u);
  EXPECT_GE(took, std::chrono::milliseconds(127 * 4096 * 1000 / (1 << 20) - 2));
  std::vector<uint8_t> got(kBs);
  ASSERT_TRUE(img.Read(63 * kBs, got.data(), kBs).ok());
  EXPECT_EQ(got, std::vector<uint8_t>(kBs, 'A'));
}

// Dedup passes race writers on two volumes of one group: afterwards every
// block holds what its last write wrote, and the refcounts are exact.
// Runs dedup passes back to back, volume and group scope in turn, until
// `running` (writers still writing) is 0; at least one pass.
void PassWhileWriting(Image& img, const std::atomic<int>& running, int* passes,
                      uint64_t* remapped) {
  do {
    auto d = img.Dedup(*passes % 2 ? DedupScope::kGroup : DedupScope::kVolume);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    *remapped += d->remapped_blocks;
    ++*passes;
  } while (running.load() > 0);
}

TEST_F(ImageSharingTest, DedupConcurrentWithWriters) {
  constexpr uint64_t kBlocks = 32;
  Image img = Make(4, kBlocks);
  ASSERT_TRUE(img.Snapshot("empty").ok());
  ASSERT_TRUE(img.Clone("empty", "w1", "g").ok());
  ASSERT_TRUE(img.Clone("empty", "w2", "g").ok());
  std::atomic<int> running{2};
  std::vector<std::vector<uint8_t>> last(2, std::vector<uint8_t>(kBlocks));
  auto writer = [&](int id) {
    auto h = img.OpenVolume(id == 0 ? "w1" : "w2");
    ASSERT_TRUE(h.ok());
    std::vector<uint8_t> v(kBs);
    // Few distinct contents, so the passes find many duplicates.
    for (uint64_t i = 0; i < 3000; i++) {
      const uint64_t blk = (i * 7 + id) % kBlocks;
      const uint8_t c = static_cast<uint8_t>('a' + (i * 13 + id) % 4);
      std::fill(v.begin(), v.end(), c);
      ASSERT_TRUE(h->Write(blk * kBs, v.data(), kBs).ok());
      last[id][blk] = c;
    }
    running.fetch_sub(1);
  };
  std::thread t1(writer, 0), t2(writer, 1);
  int passes = 0;
  uint64_t remapped = 0;
  PassWhileWriting(img, running, &passes, &remapped);
  t1.join();
  t2.join();
  auto d = img.Dedup(DedupScope::kGroup);
  ASSERT_TRUE(d.ok());
  EXPECT_GT(passes, 0);
  for (int id = 0; id < 2; id++) {
    auto h = img.OpenVolume(id == 0 ? "w1" : "w2");
    ASSERT_TRUE(h.ok());
    std::vector<uint8_t> v(kBs);
    for (uint64_t blk = 0; blk < kBlocks; blk++) {
      ASSERT_TRUE(h->Read(blk * kBs, v.data(), kBs).ok());
      const uint8_t want = last[id][blk];
      EXPECT_EQ(v, std::vector<uint8_t>(kBs, want))
          << "volume " << id << " block " << blk;
    }
  }
  // At most four distinct contents over both volumes remain.
  EXPECT_LE(img.Info()->allocated_blocks, 4u);
  auto check = img.Check();
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->clean()) << check->findings.front();
}

// Passes back to back while four writers (each on its own lane) rewrite
// their own blocks of two volumes of the group, half the time with content
// no other block holds, half with one of four duplicated contents: so
// writes free unshared blocks (their one-fence path) and make blocks the
// running pass meets as remap targets and as blocks to remap, while their
// records may still be valid. Afterwards every block reads as last
// written, a last pass changes nothing, and Check is clean.
TEST_F(ImageSharingTest, ConcurrentOneFenceWritesDuringPassesKeepEveryBlock) {
  constexpr uint64_t kBlocks = 64;
  constexpr int kWriters = 4;
  Image img = Make(4, kBlocks);
  ASSERT_TRUE(img.Snapshot("empty").ok());
  ASSERT_TRUE(img.Clone("empty", "w1", "g").ok());
  ASSERT_TRUE(img.Clone("empty", "w2", "g").ok());
  // Tag below 4: duplicated content 'a' + tag; above: content no other
  // write has (the tag in its first bytes).
  auto content = [](uint64_t tag) {
    std::vector<uint8_t> v(kBs,
                           static_cast<uint8_t>(tag < 4 ? 'a' + tag : 'z'));
    if (tag >= 4) std::memcpy(v.data(), &tag, sizeof tag);
    return v;
  };
  // last[v][b]: the tag last written to block b of volume v (kNever: a
  // hole, reading zeros).
  constexpr uint64_t kNever = ~uint64_t{0};
  std::vector<std::vector<uint64_t>> last(
      2, std::vector<uint64_t>(kBlocks, kNever));
  // Opened first: a pass holds the volume table shared, which a handle's
  // open takes exclusive.
  std::vector<Image> vols;
  for (const char* name : {"w1", "w2"}) {
    auto h = img.OpenVolume(name);
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    vols.push_back(std::move(*h));
  }
  std::atomic<int> running{kWriters};
  auto writer = [&](int id) {
    const int vol = id % 2;
    Image* h = &vols[vol];
    std::mt19937_64 rng(id + 1);
    for (uint64_t i = 0; i < 4000; i++) {
      // Thread id owns the blocks of its volume with b % 2 == id / 2.
      const uint64_t b = (rng() % (kBlocks / 2)) * 2 + id / 2;
      const uint64_t tag = rng() % 2 ? rng() % 4 : 4 + (i << 8 | id);
      const std::vector<uint8_t> v = content(tag);
      ASSERT_TRUE(h->Write(b * kBs, v.data(), kBs).ok());
      last[vol][b] = tag;
    }
    running.fetch_sub(1);
  };
  std::vector<std::thread> writers;
  for (int id = 0; id < kWriters; id++) writers.emplace_back(writer, id);
  int passes = 0;
  uint64_t remapped = 0;
  PassWhileWriting(img, running, &passes, &remapped);
  for (std::thread& t : writers) t.join();
  EXPECT_GT(remapped, 0u);
  std::fprintf(stderr, "%d passes, %llu blocks remapped\n", passes,
               static_cast<unsigned long long>(remapped));
  auto expect_last = [&](const char* when) {
    for (int vol = 0; vol < 2; vol++) {
      auto h = img.OpenVolume(vol == 0 ? "w1" : "w2");
      ASSERT_TRUE(h.ok());
      std::vector<uint8_t> got(kBs);
      for (uint64_t b = 0; b < kBlocks; b++) {
        ASSERT_TRUE(h->Read(b * kBs, got.data(), kBs).ok());
        const uint64_t tag = last[vol][b];
        ASSERT_EQ(got,
                  tag == kNever ? std::vector<uint8_t>(kBs, 0) : content(tag))
            << when << ": volume " << vol << " block " << b;
      }
    }
  };
  expect_last("after the race");
  auto check = img.Check();
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->clean()) << check->findings.front();
  auto d = img.Dedup(DedupScope::kGroup);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  expect_last("after a last pass");
  check = img.Check();
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->clean()) << check->findings.front();
}

// One writable volume whose blocks a volume-scope dedup made one data
// block: two threads overwriting different entries drop references to
// that block at once, and no drop may be lost (Check then finds the
// refcount above the entries naming it).
TEST_F(ImageSharingTest, ConcurrentOverwritesOfBlocksDedupSharedInOneVolume) {
  constexpr uint64_t kBlocks = 256;
  for (int round = 0; round < 4; round++) {
    TempDir dir;
    ImageOptions o;
    o.virtual_size = kBlocks * kBs;
    o.lanes = 4;
    auto img = Image::Create(dir.path() + "/img", o, Emulated());
    ASSERT_TRUE(img.ok()) << img.status().ToString();
    for (uint64_t b = 0; b < kBlocks; b++) Put(*img, b, 'A');
    auto d = img->Dedup(DedupScope::kVolume);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    ASSERT_EQ(d->remapped_blocks, kBlocks - 1);
    auto writer = [&](uint64_t first, uint8_t c) {
      std::vector<uint8_t> v(kBs);
      for (uint64_t b = first; b < kBlocks; b += 2) {
        v.assign(kBs, static_cast<uint8_t>(c + b % 5));
        ASSERT_TRUE(img->Write(b * kBs, v.data(), kBs).ok());
      }
    };
    std::thread t1(writer, 0, 'a'), t2(writer, 1, 'k');
    t1.join();
    t2.join();
    auto check = img->Check();
    ASSERT_TRUE(check.ok()) << check.status().ToString();
    ASSERT_TRUE(check->clean())
        << "round " << round << ": " << check->findings.front();
    std::vector<uint8_t> v(kBs);
    for (uint64_t b = 0; b < kBlocks; b++) {
      ASSERT_TRUE(img->Read(b * kBs, v.data(), kBs).ok());
      const uint8_t c = static_cast<uint8_t>((b % 2 ? 'k' : 'a') + b % 5);
      ASSERT_EQ(v, std::vector<uint8_t>(kBs, c)) << "block " << b;
    }
  }
}

// A report taken while another handle rewrites blocks: every block is
// counted once, as a hole or as data.
TEST_F(ImageSharingTest, ConcurrentWithWriter) {
  Image img = Make(2, 64);
  for (uint64_t b = 0; b < 64; b += 2) Put(img, b, 'A');
  auto writer_img = img.OpenVolume("base");
  ASSERT_TRUE(writer_img.ok());
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> written{0};
  std::thread writer([&] {
    std::vector<uint8_t> v(kBs);
    // At least one pass over every block, then on until told to stop.
    for (uint64_t i = 0; i < 64 || !stop.load(); i++) {
      std::fill(v.begin(), v.end(), static_cast<uint8_t>('a' + i % 3));
      ASSERT_TRUE(writer_img->Write((i % 64) * kBs, v.data(), kBs).ok());
      written.fetch_add(1);
    }
  });
  // Reports until the writer has rewritten every block three times.
  int reports = 0;
  do {
    auto r = img.Sharing();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ExpectPartition(r->volumes[0].counts);
    reports++;
  } while (written.load() < 3 * 64);
  stop = true;
  writer.join();
  EXPECT_GT(reports, 0);
  // Quiet again: every block is one of 'a', 'b', 'c' (or an untouched A).
  auto r = img.Sharing();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->volumes[0].counts.holes, 0u);
  EXPECT_LE(r->volumes[0].counts.distinct_blocks, 4u);
  EXPECT_EQ(r->volumes[0].counts.mapped_blocks, 64u);
}

}  // namespace
}  // namespace daxstore
