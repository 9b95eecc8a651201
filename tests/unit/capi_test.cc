// The C ABI: error codes and messages, read-only handles, volumes,
// and concurrent I/O on one handle with per-thread error messages.
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "daxstore/daxstore.h"
#include "testing/temp_dir.h"

namespace {

using daxstore::testing::TempDir;

daxstore_image* Create(const std::string& path, uint64_t size) {
  daxstore_image_options o;
  daxstore_image_options_init(&o);
  o.virtual_size = size;
  o.flags = DAXSTORE_EMULATED_PMEM;
  daxstore_image* img = nullptr;
  EXPECT_EQ(daxstore_image_create(path.c_str(), &o, &img), 0)
      << daxstore_last_error();
  return img;
}

TEST(Capi, ErrorsAreNegativeErrnoWithAMessage) {
  TempDir dir;
  daxstore_image* img = Create(dir / "a.img", 1 << 20);
  ASSERT_NE(img, nullptr);
  char buf[512] = {1};
  EXPECT_EQ(daxstore_image_pwrite(img, buf, sizeof buf, 1 << 20), -EINVAL);
  EXPECT_NE(std::string(daxstore_last_error()).find("beyond"),
            std::string::npos)
      << daxstore_last_error();
  daxstore_image_close(img);

  daxstore_image_options o;
  daxstore_image_options_init(&o);
  o.virtual_size = 1 << 20;
  EXPECT_EQ(daxstore_image_create((dir / "a.img").c_str(), &o, &img), -EBUSY);
  EXPECT_EQ(img, nullptr);
  EXPECT_EQ(daxstore_image_open((dir / "none.img").c_str(), nullptr, 0, &img),
            -ENOENT);
  EXPECT_EQ(daxstore_image_open((dir / "a.img").c_str(), "snap", 0, &img),
            -ENOENT);
  EXPECT_NE(std::string(daxstore_last_error()).find("snap"), std::string::npos)
      << daxstore_last_error();
  EXPECT_EQ(daxstore_image_open((dir / "a.img").c_str(), nullptr, 64, &img),
            -EINVAL);
  EXPECT_EQ(daxstore_image_flush(nullptr), -EINVAL);
  EXPECT_STRNE(daxstore_strerror(-EUCLEAN), "");
}

TEST(Capi, SnapshotsAndClonesShareBlocks) {
  TempDir dir;
  daxstore_image_options o;
  daxstore_image_options_init(&o);
  o.virtual_size = 1 << 20;
  o.max_volumes = 4;
  o.flags = DAXSTORE_EMULATED_PMEM;
  daxstore_image* base = nullptr;
  ASSERT_EQ(daxstore_image_create((dir / "g.img").c_str(), &o, &base), 0)
      << daxstore_last_error();
  std::vector<char> a(8192, 'a'), b(4096, 'b'), got(8192);
  ASSERT_EQ(daxstore_image_pwrite(base, a.data(), a.size(), 0), 8192);
  ASSERT_EQ(daxstore_image_snapshot(base, "golden"), 0)
      << daxstore_last_error();
  ASSERT_EQ(daxstore_image_clone(base, "golden", "vm1"), 0);
  EXPECT_EQ(daxstore_image_clone(base, "golden", "vm1"), -EBUSY)
      << daxstore_last_error();
  // The base moves on; the snapshot and the clone keep the old data.
  ASSERT_EQ(daxstore_image_pwrite(base, b.data(), b.size(), 0), 4096);
  daxstore_image *snap = nullptr, *vm1 = nullptr;
  ASSERT_EQ(daxstore_image_open_volume(base, "golden", &snap), 0);
  ASSERT_EQ(daxstore_image_open_volume(base, "vm1", &vm1), 0);
  ASSERT_EQ(daxstore_image_pread(snap, got.data(), got.size(), 0), 8192);
  EXPECT_EQ(got, a);
  EXPECT_EQ(daxstore_image_pwrite(snap, b.data(), b.size(), 0), -EROFS);
  EXPECT_NE(std::string(daxstore_last_error()).find("read-only"),
            std::string::npos)
      << daxstore_last_error();
  ASSERT_EQ(daxstore_image_pwrite(vm1, b.data(), b.size(), 4096), 4096);
  ASSERT_EQ(daxstore_image_pread(vm1, got.data(), got.size(), 0), 8192);
  EXPECT_TRUE(std::equal(got.begin(), got.begin() + 4096, a.begin()));
  EXPECT_TRUE(std::equal(got.begin() + 4096, got.end(), b.begin()));
  // Listing, and the busy rule for deleting an open volume.
  daxstore_volume_info v[4];
  ASSERT_EQ(daxstore_image_list_volumes(base, v, 4), 3);
  EXPECT_EQ(daxstore_image_list_volumes(base, nullptr, 0), 3);
  int snapshots = 0;
  for (auto& e : v) {
    if (std::string(e.name) == "golden") {
      snapshots++;
      EXPECT_EQ(e.snapshot, 1u);
      EXPECT_EQ(e.mapped_blocks, 2u);
    }
    if (std::string(e.name) == "vm1") {
      EXPECT_STREQ(e.parent, "golden");
    }
  }
  EXPECT_EQ(snapshots, 1);
  EXPECT_EQ(daxstore_image_delete_volume(base, "vm1"), -EBUSY)
      << daxstore_last_error();
  daxstore_image_close(vm1);
  daxstore_image_close(snap);
  struct daxstore_image_info before, after;
  ASSERT_EQ(daxstore_image_info(base, &before), 0);
  ASSERT_EQ(daxstore_image_delete_volume(base, "vm1"), 0);
  ASSERT_EQ(daxstore_image_delete_volume(base, "golden"), 0);
  ASSERT_EQ(daxstore_image_info(base, &after), 0);
  // vm1's own block and golden's now unshared second block are freed.
  EXPECT_EQ(before.allocated_bytes - after.allocated_bytes, 2 * 4096u);
  EXPECT_EQ(daxstore_image_list_volumes(base, v, 4), 1);
  daxstore_image_close(base);
}

TEST(Capi, CorruptSuperblocksAreEuclean) {
  TempDir dir;
  std::string path = dir / "c.img";
  daxstore_image_close(Create(path, 1 << 20));
  // Damage both copies without removing the magic: flip bytes after it.
  int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  off_t size = ::lseek(fd, 0, SEEK_END);
  char junk[64];
  std::fill(std::begin(junk), std::end(junk), '\x7f');
  ASSERT_EQ(::pwrite(fd, junk, sizeof junk, 16), 64);
  ASSERT_EQ(::pwrite(fd, junk, sizeof junk, size - 4096 + 16), 64);
  ::close(fd);
  daxstore_image* img = nullptr;
  int rc =
      daxstore_image_open(path.c_str(), nullptr, DAXSTORE_EMULATED_PMEM, &img);
  EXPECT_EQ(rc, -EUCLEAN) << daxstore_last_error();
  EXPECT_EQ(img, nullptr);
}

TEST(Capi, ReadOnlyHandleRefusesWrites) {
  TempDir dir;
  std::string path = dir / "r.img";
  daxstore_image* img = Create(path, 1 << 20);
  char buf[4096];
  std::fill(std::begin(buf), std::end(buf), 'x');
  ASSERT_EQ(daxstore_image_pwrite(img, buf, sizeof buf, 0), 4096);
  daxstore_image_close(img);
  ASSERT_EQ(
      daxstore_image_open(path.c_str(), nullptr, DAXSTORE_OPEN_READ_ONLY, &img),
      0);
  EXPECT_EQ(daxstore_image_pwrite(img, buf, sizeof buf, 0), -EROFS);
  EXPECT_EQ(daxstore_image_discard(img, 0, 4096), -EROFS);
  EXPECT_EQ(daxstore_image_write_zeroes(img, 0, 4096), -EROFS);
  char back[4096] = {};
  EXPECT_EQ(daxstore_image_pread(img, back, sizeof back, 0), 4096);
  EXPECT_EQ(std::string(back, 4096), std::string(buf, 4096));
  struct daxstore_image_info info;
  ASSERT_EQ(daxstore_image_info(img, &info), 0);
  EXPECT_EQ(info.allocated_bytes, 4096u);
  daxstore_image_close(img);
}

// Threads write their own blocks on one handle; each also makes a failing
// call and must see its own message, not another thread's.
TEST(CapiConcurrent, IoAndLastErrorPerThread) {
  TempDir dir;
  daxstore_image* img = Create(dir / "t.img", 8 << 20);
  ASSERT_NE(img, nullptr);
  constexpr int kThreads = 4, kBlocks = 64;
  std::vector<std::thread> ts;
  std::vector<int> bad(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      std::vector<char> buf(4096, static_cast<char>('a' + t));
      for (int i = 0; i < kBlocks; ++i) {
        uint64_t off = (static_cast<uint64_t>(i) * kThreads + t) * 4096;
        if (daxstore_image_pwrite(img, buf.data(), 4096, off) != 4096) ++bad[t];
        // A distinct failure per thread: a length unique to it.
        uint64_t len = 4096 * (t + 1);
        if (daxstore_image_pread(img, buf.data(), len, (8 << 20) - 512) >= 0)
          ++bad[t];
        std::string want = std::to_string(len);
        if (std::string(daxstore_last_error()).find(want) == std::string::npos)
          ++bad[t];
      }
    });
  }
  for (auto& th : ts) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(bad[t], 0) << "thread " << t;
  std::vector<char> back(4096);
  for (int i = 0; i < kBlocks * kThreads; ++i) {
    ASSERT_EQ(daxstore_image_pread(img, back.data(), 4096, i * 4096ull), 4096);
    EXPECT_EQ(back[0], 'a' + i % kThreads);
    EXPECT_EQ(back[4095], 'a' + i % kThreads);
  }
  daxstore_image_close(img);
}

}  // namespace
