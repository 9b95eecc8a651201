// Mapping::DataRanges: a scan of sparse metadata reads a file's data
// extents only, and never misses a byte that was written.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "daxstore/mapping.h"
#include "testing/temp_dir.h"

namespace daxstore {
namespace {

constexpr uint64_t kPage = 4096;

// Whether [off, off+n) lies inside one of the ranges.
bool Covered(const std::vector<ByteRange>& rs, uint64_t off, uint64_t n) {
  for (const ByteRange& r : rs) {
    if (r.offset <= off && off + n <= r.offset + r.length) return true;
  }
  return false;
}

TEST(DataRanges, SparseFileReportsWhatWasWrittenAndSkipsHoles) {
  testing::TempDir dir;
  MapOptions o;
  o.create_size = 1024 * kPage;
  o.emulate = PersistenceDomain::kMemoryController;
  auto m = Mapping::Open(dir / "sparse", o);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  const uint64_t written[] = {3 * kPage + 17, 500 * kPage, 1023 * kPage + 8};
  for (uint64_t at : written) m->MemsetPersist(m->bytes() + at, 0xab, 8);

  auto all = m->DataRanges(0, m->size());
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  uint64_t total = 0;
  for (const ByteRange& r : *all) total += r.length;
  for (uint64_t at : written) EXPECT_TRUE(Covered(*all, at, 8)) << at;
  // Holes are skipped (file systems report data at page or block size).
  EXPECT_LT(total, 64 * kPage);
  for (size_t i = 1; i < all->size(); i++) {
    EXPECT_GE((*all)[i].offset,
              (*all)[i - 1].offset + (*all)[i - 1].length);  // in order
  }

  // A window is clipped to itself.
  auto mid = m->DataRanges(400 * kPage + 5, 200 * kPage);
  ASSERT_TRUE(mid.ok());
  ASSERT_EQ(mid->size(), 1u);
  EXPECT_TRUE(Covered(*mid, 500 * kPage, 8));
  EXPECT_GE((*mid)[0].offset, 400 * kPage + 5);
  EXPECT_LE((*mid)[0].offset + (*mid)[0].length, 600 * kPage + 5);

  auto none = m->DataRanges(10 * kPage, 400 * kPage);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  auto past = m->DataRanges(m->size(), kPage);
  ASSERT_TRUE(past.ok());
  EXPECT_TRUE(past->empty());
}

TEST(DataRanges, MemoryHasNoHolesToTell) {
  std::vector<uint8_t> mem(16 * kPage, 0);
  PersistOps ops;
  ops.persist = ops.flush = [](const void*, size_t) {};
  ops.drain = [] {};
  ops.memcpy = ops.memmove = [](void* d, const void* s, size_t n, unsigned) {
    return std::memmove(d, s, n);
  };
  ops.memset = [](void* d, int c, size_t n, unsigned) {
    return std::memset(d, c, n);
  };
  auto m = Mapping::FromMemory(mem.data(), mem.size(), Granularity::kByte,
                               ops, nullptr, "memory");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  auto r = m->DataRanges(kPage, 4 * kPage);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0], (ByteRange{kPage, 4 * kPage}));
}

}  // namespace
}  // namespace daxstore
