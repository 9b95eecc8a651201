// Durability across a power cut: the first boot writes through daxstore
// mappings and persists, then QEMU is killed without any sync; the second
// boot, on the same backing files, finds every persisted byte.
// Run by tests/kernel/durability.sh, one test per boot.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "daxstore/mapping.h"
#include "guest_env.h"

namespace daxstore {
namespace {

constexpr uint64_t kFileSize = 8 << 20;
constexpr char kCommit[] = "daxstore-durability-commit";

// The byte at offset i of the test pattern (not all one value, so a
// misplaced or stale page shows).
uint8_t PatternAt(uint64_t i) { return static_cast<uint8_t>(i * 131 + 17); }

std::vector<uint8_t> Pattern(uint64_t n) {
  std::vector<uint8_t> v(n);
  for (uint64_t i = 0; i < n; ++i) v[i] = PatternAt(i);
  return v;
}

// Data first, persisted; then the commit record, persisted. A reader that
// sees the commit record must see the data.
void WriteAndCommit(const Mapping& m, uint64_t data_len) {
  auto p = Pattern(data_len);
  m.MemcpyPersist(m.bytes() + 4096, p.data(), p.size());
  // Plain stores + Persist, the other way to make stores durable.
  for (uint64_t i = 0; i < 4096; ++i)
    m.bytes()[m.size() - 4096 + i] = ~PatternAt(i);
  m.Persist(m.bytes() + m.size() - 4096, 4096);
  m.MemcpyPersist(m.data(), kCommit, sizeof kCommit);
}

void ExpectCommitted(const Mapping& m, uint64_t data_len) {
  ASSERT_STREQ(reinterpret_cast<const char*>(m.data()), kCommit)
      << m.info().path << ": the commit record did not survive the power cut";
  auto p = Pattern(data_len);
  std::vector<uint8_t> back(data_len);
  ASSERT_TRUE(m.Read(4096, back.data(), back.size()).ok());
  EXPECT_EQ(back, p) << m.info().path << ": persisted data differs";
  for (uint64_t i = 0; i < 4096; ++i) {
    ASSERT_EQ(m.bytes()[m.size() - 4096 + i],
              static_cast<uint8_t>(~PatternAt(i)))
        << m.info().path << ": byte " << i << " of the last page";
  }
}

TEST(KernelDurability, WriteBeforePowerCut) {
  DAXSTORE_GUEST_PATH(dir, "DAXSTORE_TEST_EXT4_DAX_DIR");
  DAXSTORE_GUEST_PATH(dev, "DAXSTORE_TEST_DEVDAX");
  MapOptions o;
  o.create_size = kFileSize;
  o.require = Granularity::kCacheLine;
  auto file = Mapping::Open(dir + "/durable.img", o);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  WriteAndCommit(*file, 3 << 20);

  auto dax = Mapping::Open(dev);
  ASSERT_TRUE(dax.ok()) << dax.status().ToString();
  WriteAndCommit(*dax, 5 << 20);
}

TEST(KernelDurability, VerifyAfterReboot) {
  DAXSTORE_GUEST_PATH(dir, "DAXSTORE_TEST_EXT4_DAX_DIR");
  DAXSTORE_GUEST_PATH(dev, "DAXSTORE_TEST_DEVDAX");
  MapOptions o;
  o.access = Access::kReadOnly;
  auto file = Mapping::Open(dir + "/durable.img", o);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->size(), kFileSize);
  EXPECT_EQ(file->info().kind, MappingKind::kDaxFile);
  ExpectCommitted(*file, 3 << 20);

  auto dax = Mapping::Open(dev, o);
  ASSERT_TRUE(dax.ok()) << dax.status().ToString();
  ExpectCommitted(*dax, 5 << 20);
}

}  // namespace
}  // namespace daxstore
