// Persist and copy functions at odd sizes and alignments, on every
// granularity, checked against plain memory and against the file itself.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <thread>
#include <vector>

#include "daxstore/mapping.h"
#include "platform/os_platform.h"
#include "testing/temp_dir.h"

namespace daxstore {
namespace {

using testing::TempDir;

struct Case {
  const char* name;
  std::optional<PersistenceDomain> emulate;
  Granularity expect;
  // Where the file lives ("": $TMPDIR) and whether that keeps data in
  // memory only (tmpfs: no msync) or has a backing store (msync).
  const char* parent = "";
  bool memory_only = false;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class PersistTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    const Case& c = GetParam();
    if (*c.parent && !std::filesystem::is_directory(c.parent)) {
      GTEST_SKIP() << c.parent << " does not exist here";  // kernel-tier guest
    }
    if (*c.parent) {
      auto mount = MakeOsPlatform()->MountOf(c.parent);
      bool memory = mount.ok() &&
                    (mount->fs_type == "tmpfs" || mount->fs_type == "ramfs");
      if (memory != c.memory_only) {
        GTEST_SKIP() << c.parent << " is " << (memory ? "" : "not ")
                     << "memory-only on this machine";
      }
    }
    dir_ = std::make_unique<TempDir>(c.parent);
    path_ = *dir_ / "p.img";
    MapOptions o;
    o.create_size = kSize;
    o.emulate = GetParam().emulate;
    auto m = Mapping::Open(path_, o);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    m_ = std::make_unique<Mapping>(std::move(m).value());
    ASSERT_EQ(m_->granularity(), GetParam().expect);
    if (*c.parent) {
      ASSERT_EQ(m_->info().memory_only, c.memory_only);
    }
    model_.assign(kSize, 0);
  }

  // What the file holds, read through the page cache, not the mapping.
  std::vector<uint8_t> FileContent() {
    std::vector<uint8_t> out(kSize);
    int fd = ::open(path_.c_str(), O_RDONLY);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::pread(fd, out.data(), kSize, 0), static_cast<ssize_t>(kSize));
    ::close(fd);
    return out;
  }

  void ExpectMatchesModel() {
    ASSERT_EQ(0, std::memcmp(m_->data(), model_.data(), kSize));
    ASSERT_TRUE(FileContent() == model_);
  }

  static constexpr size_t kSize = 4 << 20;
  std::unique_ptr<TempDir> dir_;
  std::string path_;
  std::unique_ptr<Mapping> m_;
  std::vector<uint8_t> model_;
};

TEST_P(PersistTest, MemcpyAtOddSizesAndAlignments) {
  std::mt19937_64 rng(42);
  std::vector<uint8_t> src(3 << 20);
  for (auto& b : src) b = static_cast<uint8_t>(rng());
  size_t sizes[] = {0,
                    1,
                    7,
                    8,
                    63,
                    64,
                    65,
                    255,
                    256,
                    257,
                    1000,
                    4095,
                    4096,
                    4097,
                    65537,
                    (1 << 20) + 17,
                    (2 << 20) + 4093};
  size_t pos = 0;
  for (size_t n : sizes) {
    for (size_t skew : {0ul, 1ul, 13ul, 63ul}) {
      size_t dst = (pos + skew) % (kSize - n);
      size_t from = (skew * 7) % (src.size() - n);
      void* r = m_->MemcpyPersist(m_->bytes() + dst, src.data() + from, n);
      EXPECT_EQ(r, m_->bytes() + dst);
      std::memcpy(model_.data() + dst, src.data() + from, n);
      pos += n + 4096 + 31;
    }
  }
  ExpectMatchesModel();
}

TEST_P(PersistTest, MemmoveHandlesOverlapBothWays) {
  for (size_t i = 0; i < 8192; ++i) {
    model_[i] = static_cast<uint8_t>(i * 31);
  }
  m_->MemcpyPersist(m_->data(), model_.data(), 8192);
  m_->MemmovePersist(m_->bytes() + 100, m_->bytes() + 37, 5000);
  std::memmove(model_.data() + 100, model_.data() + 37, 5000);
  m_->MemmovePersist(m_->bytes() + 3, m_->bytes() + 2050, 3001);
  std::memmove(model_.data() + 3, model_.data() + 2050, 3001);
  ExpectMatchesModel();
}

TEST_P(PersistTest, MemsetAndFlagsAndExplicitPersist) {
  m_->MemsetPersist(m_->bytes() + 5, 0xab, 70000);
  std::memset(model_.data() + 5, 0xab, 70000);
  // Several copies without fences, then one drain.
  for (int i = 0; i < 10; ++i) {
    uint64_t v = 0x1111111111111111ull * i;
    m_->MemcpyPersist(m_->bytes() + 100000 + i * 8, &v, 8, kCopyNoDrain);
    std::memcpy(model_.data() + 100000 + i * 8, &v, 8);
  }
  m_->Drain();
  m_->MemcpyPersist(m_->bytes() + 200000, "nt", 2, kCopyNonTemporal);
  m_->MemcpyPersist(m_->bytes() + 200002, "t", 1, kCopyTemporal);
  std::memcpy(model_.data() + 200000, "ntt", 3);
  // Plain stores, then Flush + Drain, then Persist.
  std::memset(m_->bytes() + 300001, 0x5a, 333);
  std::memset(model_.data() + 300001, 0x5a, 333);
  m_->Flush(m_->bytes() + 300001, 333);
  m_->Drain();
  std::memset(m_->bytes() + kSize - 10, 0x77, 10);
  std::memset(model_.data() + kSize - 10, 0x77, 10);
  m_->Persist(m_->bytes() + kSize - 10, 10);
  ExpectMatchesModel();
}

TEST_P(PersistTest, ConcurrentPersistOnDisjointLines) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        size_t off = (static_cast<size_t>(i) * 4 + t) * 64;
        uint8_t v = static_cast<uint8_t>(t + 1);
        m_->MemsetPersist(m_->bytes() + off, v, 64);
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) {
    for (int i = 0; i < 2000; ++i) {
      std::memset(model_.data() + (static_cast<size_t>(i) * 4 + t) * 64, t + 1,
                  64);
    }
  }
  ExpectMatchesModel();
}

TEST_P(PersistTest, DeepFlushSucceedsOnFiles) {
  m_->MemsetPersist(m_->data(), 3, 4096);
  std::memset(model_.data(), 3, 4096);
  EXPECT_TRUE(m_->DeepFlush(m_->bytes() + 17, 5000).ok());
  ExpectMatchesModel();
}

INSTANTIATE_TEST_SUITE_P(
    AllGranularities, PersistTest,
    ::testing::Values(
        Case{"page", std::nullopt, Granularity::kPage, "/var/tmp", false},
        Case{"page_memory_only", std::nullopt, Granularity::kPage, "/dev/shm",
             true},
        Case{"cacheline", PersistenceDomain::kMemoryController,
             Granularity::kCacheLine},
        Case{"byte", PersistenceDomain::kCpuCache, Granularity::kByte}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace daxstore
