// Image I/O from several threads at once (also run under TSan).
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "daxstore/image.h"
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
      for (int i = 0; i < 400; i++) {
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
  for (int t = 0; t < 2; t++) {
    threads.emplace_back([&, t] {
      std::vector<uint8_t> got(kBs);
      uint64_t b = t;
      while (!stop.load()) {
        b = (b + 1) % blocks;
        if (!img_->Read(b * kBs, got.data(), kBs).ok()) failures++;
        for (uint64_t i = 1; i < kBs; i++) {
          if (got[i] != got[0]) {
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

}  // namespace
}  // namespace daxstore
