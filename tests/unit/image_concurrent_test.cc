// Image I/O from several threads at once (also run under TSan).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "daxstore/image.h"
#include "image/format.h"
#include "testing/image_model.h"
#include "testing/temp_dir.h"

namespace daxstore {
namespace {

using testing::DiskModel;
using testing::TempDir;

constexpr int kThreads = 4;
constexpr uint64_t kBs = 4096;

class ImageConcurrentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ImageOptions o;
    o.virtual_size = 64 * kBs;
    o.lanes = 8;
    MapOptions mo;
    mo.emulate = PersistenceDomain::kMemoryController;
    auto img = Image::Create(dir_ / "disk.img", o, mo);
    ASSERT_TRUE(img.ok()) << img.status().ToString();
    img_ = std::make_unique<Image>(std::move(img).value());
  }
  void ExpectClean() {
    auto r = img_->Check();
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->clean()) << r->findings.front();
  }
  TempDir dir_;
  std::unique_ptr<Image> img_;
};

TEST_F(ImageConcurrentTest, ConcurrentWritersOnDisjointBlocks) {
  const uint64_t size = img_->virtual_size();
  std::vector<DiskModel> models(kThreads, DiskModel(size));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t + 1);
      for (int i = 0; i < 300; i++) {
        uint64_t block = (rng() % (size / kBs / kThreads)) * kThreads + t;
        uint64_t in = rng() % kBs, n = 1 + rng() % (kBs - in);
        uint64_t off = block * kBs + in;
        if (rng() % 8 == 0) {
          if (!img_->Discard(off, n).ok()) failures++;
          models[t].Zero(off, n);
        } else {
          auto data = testing::RandomBytes(rng, n);
          if (!img_->Write(off, data.data(), n).ok()) failures++;
          models[t].Write(off, data.data(), n);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);
  std::vector<uint8_t> got(kBs);
  for (uint64_t b = 0; b < size / kBs; b++) {
    ASSERT_TRUE(img_->Read(b * kBs, got.data(), kBs).ok());
    ASSERT_EQ(0, std::memcmp(got.data(), models[b % kThreads].at(b * kBs), kBs))
        << "block " << b;
  }
  ExpectClean();
}

TEST_F(ImageConcurrentTest, ConcurrentPartialWritesToOneBlockKeepEveryByte) {
  // Each thread owns a quarter of every block: read-modify-write must not
  // lose another thread's bytes.
  const uint64_t blocks = 8, part = kBs / kThreads;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      for (int round = 1; round <= 50; round++) {
        std::vector<uint8_t> v(part, static_cast<uint8_t>(round * 4 + t));
        for (uint64_t b = 0; b < blocks; b++) {
          if (!img_->Write(b * kBs + t * part, v.data(), part).ok()) {
            failures++;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);
  std::vector<uint8_t> got(kBs);
  for (uint64_t b = 0; b < blocks; b++) {
    ASSERT_TRUE(img_->Read(b * kBs, got.data(), kBs).ok());
    for (uint64_t i = 0; i < kBs; i++) {
      ASSERT_EQ(got[i], 50 * 4 + i / part) << "block " << b << " byte " << i;
    }
  }
  ExpectClean();
}

TEST_F(ImageConcurrentTest, ConcurrentReadersNeverSeeATornBlock) {
  const uint64_t blocks = 4;
  std::atomic<bool> stop{false};
  std::atomic<int> torn{0}, failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; t++) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t + 100);
      for (int i = 0; i < 3000; i++) {
        uint64_t b = rng() % blocks;
        if (rng() % 5 == 0) {
          if (!img_->WriteZeroes(b * kBs, kBs).ok()) failures++;
        } else {
          std::vector<uint8_t> v(kBs, static_cast<uint8_t>(1 + rng() % 255));
          if (!img_->Write(b * kBs, v.data(), kBs).ok()) failures++;
        }
      }
    });
  }
  // Reader 0 reads one block into one buffer; reader 1 two blocks into
  // three buffers whose edges fall inside the blocks, so a copy retried
  // after a concurrent write must restart at the right buffer and byte.
  for (int t = 0; t < 2; t++) {
    threads.emplace_back([&, t] {
      const uint64_t span = t == 0 ? 1 : 2;
      std::vector<uint8_t> got(span * kBs);
      const size_t cut1 = 1000, cut2 = cut1 + kBs;
      std::vector<iovec> iov{{got.data(), cut1},
                             {got.data() + cut1, cut2 - cut1},
                             {got.data() + cut2, got.size() - cut2}};
      if (span == 1) iov = {{got.data(), kBs}};
      uint64_t b = t;
      while (!stop.load()) {
        b = (b + 1) % (blocks - span + 1);
        if (!img_->Readv(b * kBs, iov).ok()) failures++;
        for (uint64_t k = 0; k < span; k++) {
          const uint8_t* blk = got.data() + k * kBs;
          if (std::count(blk, blk + kBs, blk[0]) != kBs) {
            torn++;
            break;
          }
        }
      }
    });
  }
  threads[0].join();
  threads[1].join();
  stop = true;
  threads[2].join();
  threads[3].join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(torn.load(), 0);
  ExpectClean();
}

// Two clones of one snapshot share every block; threads rewrite them on
// both clones at once (each old block loses two references from two
// volumes), a reader checks the snapshot stays frozen, and another thread
// takes and deletes snapshots of the base meanwhile.
TEST(ImageSpareConcurrentTest, ConcurrentOverwritesOfAFullImageKeepSpares) {
  // A full image with one free block per lane: every lane keeps the block
  // its last overwrite freed as its spare, and writers never run out.
  TempDir dir;
  ImageOptions o;
  o.virtual_size = 32 * kBs;
  o.lanes = 4;
  o.data_blocks = 32 + 4;
  MapOptions mo;
  mo.emulate = PersistenceDomain::kMemoryController;
  auto img = Image::Create(dir / "full.img", o, mo);
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  std::vector<uint8_t> fill(o.virtual_size, 0x11);
  ASSERT_TRUE(img->Write(0, fill.data(), fill.size()).ok());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      std::vector<uint8_t> b(kBs);
      for (int i = 0; i < 200; i++) {
        uint64_t lba = static_cast<uint64_t>(t) * 8 + i % 8;  // own 8 blocks
        std::fill(b.begin(), b.end(), static_cast<uint8_t>(t * 50 + i % 8));
        b[0] = static_cast<uint8_t>(i);  // not zero in the first bytes
        b[kBs - 1] = static_cast<uint8_t>(1 + t);
        Status st = img->Write(lba * kBs, b.data(), kBs);
        if (!st.ok()) failures++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  std::vector<uint8_t> got(kBs);
  for (int t = 0; t < kThreads; t++) {
    for (int k = 0; k < 8; k++) {
      ASSERT_TRUE(img->Read((t * 8 + k) * kBs, got.data(), kBs).ok());
      // The last write to block k of thread t was i = 192 + k.
      EXPECT_EQ(got[0], static_cast<uint8_t>(192 + k));
      EXPECT_EQ(got[1], static_cast<uint8_t>(t * 50 + k));
      EXPECT_EQ(got[kBs - 1], static_cast<uint8_t>(1 + t));
    }
  }
  auto r = img->Check();
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->clean()) << r->findings.front();
}

TEST(ImageVolumeConcurrentTest, ConcurrentWritesOnTwoClonesSharingBlocks) {
  TempDir dir;
  ImageOptions o;
  o.virtual_size = 32 * kBs;
  o.lanes = 8;
  o.max_volumes = 5;
  o.data_blocks = 256;
  MapOptions mo;
  mo.emulate = PersistenceDomain::kMemoryController;
  auto img = Image::Create(dir / "disk.img", o, mo);
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  const uint64_t blocks = 32;
  for (uint64_t b = 0; b < blocks; b++) {
    std::vector<uint8_t> v(kBs, static_cast<uint8_t>(b + 1));
    ASSERT_TRUE(img->Write(b * kBs, v.data(), kBs).ok());
  }
  ASSERT_TRUE(img->Snapshot("gold").ok());
  ASSERT_TRUE(img->Clone("gold", "vm1").ok());
  ASSERT_TRUE(img->Clone("gold", "vm2").ok());
  std::vector<Image> vms;
  vms.push_back(std::move(img->OpenVolume("vm1")).value());
  vms.push_back(std::move(img->OpenVolume("vm2")).value());
  Image gold = std::move(img->OpenVolume("gold")).value();
  std::vector<DiskModel> models(kThreads, DiskModel(o.virtual_size));
  std::atomic<int> failures{0}, changed{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; t++) {
    writers.emplace_back([&, t] {
      // Threads t and t+2 share clone t%2 and split its blocks.
      Image& vm = vms[t % 2];
      std::mt19937_64 rng(t + 7);
      for (int i = 0; i < 200; i++) {
        uint64_t b = (rng() % (blocks / 2)) * 2 + t / 2;
        auto data = testing::RandomBytes(rng, kBs);
        if (!vm.Write(b * kBs, data.data(), kBs).ok()) failures++;
        models[t].Write(b * kBs, data.data(), kBs);
      }
    });
  }
  std::thread reader([&] {
    std::vector<uint8_t> got(kBs);
    for (uint64_t b = 0; !stop.load(); b = (b + 1) % blocks) {
      if (!gold.Read(b * kBs, got.data(), kBs).ok()) failures++;
      if (got != std::vector<uint8_t>(kBs, static_cast<uint8_t>(b + 1))) {
        changed++;
      }
    }
  });
  std::thread volumes([&] {
    for (int i = 0; !stop.load(); i++) {
      std::string name = "tmp" + std::to_string(i);
      if (!img->Snapshot(name).ok()) failures++;
      if (!img->DeleteVolume(name).ok()) failures++;
    }
  });
  for (auto& th : writers) th.join();
  stop = true;
  reader.join();
  volumes.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(changed.load(), 0);
  std::vector<uint8_t> got(kBs);
  for (uint64_t b = 0; b < blocks; b++) {
    for (int c = 0; c < 2; c++) {
      ASSERT_TRUE(vms[c].Read(b * kBs, got.data(), kBs).ok());
      const DiskModel& m = models[c + 2 * (b % 2)];
      std::vector<uint8_t> want(m.at(b * kBs), m.at(b * kBs) + kBs);
      if (std::all_of(want.begin(), want.end(), [](uint8_t x) { return !x; })) {
        want.assign(kBs, static_cast<uint8_t>(b + 1));  // never rewritten
      }
      ASSERT_EQ(got, want) << "clone " << c << " block " << b;
    }
  }
  auto r = img->Check();
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->clean()) << r->findings.front();
}

// Writers racing into an image whose refcount is damaged (one block the
// snapshot shares counted once): every write fails with kCorruption, the
// snapshot reads its bytes throughout, and the flag is set once.
TEST(ImageIntegrityConcurrentTest, ConcurrentWritesMeetingDamageAllFail) {
  TempDir dir;
  const std::string path = dir / "disk.img";
  ImageOptions o;
  o.virtual_size = 16 * kBs;
  o.lanes = 8;
  uint64_t ref_at = 0;
  {
    auto img = Image::Create(path, o);
    ASSERT_TRUE(img.ok()) << img.status().ToString();
    std::vector<uint8_t> v(16 * kBs, 0x5a);
    ASSERT_TRUE(img->Write(0, v.data(), v.size()).ok());
    ASSERT_TRUE(img->Snapshot("snap").ok());
  }
  {
    // Base's map names block 0's data block first; its refcount is 2.
    int fd = ::open(path.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    image::Superblock sb;
    ASSERT_EQ(::pread(fd, &sb, sizeof sb, 0), (ssize_t)sizeof sb);
    uint64_t entry = 0;
    ASSERT_EQ(::pread(fd, &entry, 8, static_cast<off_t>(sb.map_offset)), 8);
    ref_at = sb.ref_offset + 4 * image::EntryPba(entry);
    const uint32_t one = 1;
    ASSERT_EQ(::pwrite(fd, &one, 4, static_cast<off_t>(ref_at)), 4);
    ::close(fd);
  }
  auto img = Image::Open(path);
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  Image snap = std::move(img->OpenVolume("snap")).value();
  std::atomic<int> written{0}, other{0}, changed{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; t++) {
    writers.emplace_back([&, t] {
      std::vector<uint8_t> v(kBs, static_cast<uint8_t>(t));
      for (int i = 0; i < 50; i++) {
        Status st = img->Write((i % 16) * kBs, v.data(), kBs);
        if (st.ok()) written++;
        if (!st.ok() && st.kind() != ErrorKind::kCorruption) other++;
      }
    });
  }
  std::thread reader([&] {
    std::vector<uint8_t> got(kBs);
    for (uint64_t b = 0; !stop.load(); b = (b + 1) % 16) {
      if (!snap.Read(b * kBs, got.data(), kBs).ok() ||
          got != std::vector<uint8_t>(kBs, 0x5a)) {
        changed++;
      }
    }
  });
  for (auto& th : writers) th.join();
  stop = true;
  reader.join();
  EXPECT_EQ(written.load(), 0);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(changed.load(), 0);
  EXPECT_TRUE(img->corrupt());
}

}  // namespace
}  // namespace daxstore
