// The disk factory (LocateDisk, OpenDisk, CreateDisk) and the C ABI's
// namespace targets, on an emulated bus.
#include "daxstore/disk.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cerrno>
#include <string>

#include "daxstore/daxstore.h"
#include "daxstore/emulated_bus.h"
#include "daxstore/namespace.h"
#include "testing/temp_dir.h"

namespace daxstore {
namespace {

class Disk : public ::testing::Test {
 protected:
  void SetUp() override {
    EmulatedOptions o;
    o.dir = dir_ / "bus";
    ASSERT_TRUE(CreateEmulatedBus(o, {}).ok());
    auto b = OpenEmulatedBackend(o);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    for (const char* name : {"golden", "spare"}) {
      CreateRequest r;
      r.size = {SizeRequest::Kind::kBytes, 64ull << 20};
      r.name = name;
      auto ns = (*b)->Create(r);
      ASSERT_TRUE(ns.ok()) << ns.status().ToString();
      devices_.push_back(ns->dev);
      blockdevs_.push_back(ns->blockdev);
    }
  }
  DiskSpec Spec(const std::string& target) {
    DiskSpec s;
    s.target = target;
    s.bus = BusSelect::kEmulated;
    s.emulated_dir = dir_ / "bus";
    return s;
  }
  static ImageOptions Small() {
    ImageOptions o;
    o.virtual_size = 16ull << 20;
    o.max_volumes = 4;
    return o;
  }

  testing::TempDir dir_;
  std::vector<std::string> devices_, blockdevs_;
};

TEST_F(Disk, ANamespaceIsFoundByDeviceBlockDeviceAndName) {
  for (const std::string& t :
       {devices_[0], blockdevs_[0], std::string("golden")}) {
    auto loc = LocateDisk(Spec(t));
    ASSERT_TRUE(loc.ok()) << t << ": " << loc.status().ToString();
    EXPECT_EQ(loc->ns, devices_[0]) << t;
    EXPECT_EQ(loc->bus, "emulated");
    EXPECT_TRUE(loc->options.emulate.has_value()) << t;
  }
  auto none = LocateDisk(Spec("namespace7.7"));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().kind(), ErrorKind::kNotFound);
}

TEST_F(Disk, CreateOpensAndRefusesToFormatTwice) {
  auto empty = OpenDisk(Spec("golden"));
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().kind(), ErrorKind::kNotFound);
  EXPECT_NE(empty.status().message().find("image create"), std::string::npos)
      << empty.status().message();
  {
    DiskLocation where;
    auto img = CreateDisk(Spec("golden"), Small(), &where);
    ASSERT_TRUE(img.ok()) << img.status().ToString();
    EXPECT_EQ(where.ns, devices_[0]);
    std::string data(4096, 'g');
    ASSERT_TRUE(img->Write(0, data.data(), data.size()).ok());
    ASSERT_TRUE(img->Snapshot("s1").ok());
  }
  auto again = CreateDisk(Spec(devices_[0]), Small());
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().kind(), ErrorKind::kBusy);
  EXPECT_NE(again.status().message().find("already holds"), std::string::npos)
      << again.status().message();

  {
    DiskSpec snap = Spec("golden");
    snap.volume = "s1";
    auto s1 = OpenDisk(snap);
    ASSERT_TRUE(s1.ok()) << s1.status().ToString();
    EXPECT_TRUE(s1->read_only());
    std::string got(4096, 0);
    ASSERT_TRUE(s1->Read(0, got.data(), got.size()).ok());
    EXPECT_EQ(got, std::string(4096, 'g'));
    // The image is open: a second open, even in this process, is refused.
    auto twice = OpenDisk(Spec("golden"));
    ASSERT_FALSE(twice.ok());
    EXPECT_EQ(twice.status().kind(), ErrorKind::kBusy);
  }

  DiskSpec missing = Spec("golden");
  missing.volume = "nope";
  auto bad = OpenDisk(missing);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().kind(), ErrorKind::kNotFound);
  EXPECT_NE(bad.status().message().find("nope"), std::string::npos);
}

TEST_F(Disk, ANamespaceWithADamagedImageIsNotFormatted) {
  { ASSERT_TRUE(CreateDisk(Spec("golden"), Small()).ok()); }
  auto loc = LocateDisk(Spec("golden"));
  ASSERT_TRUE(loc.ok());
  // Both superblocks keep their magic but fail their checksum.
  {
    MapOptions mo = loc->options;
    mo.access = Access::kReadWrite;
    auto m = Mapping::Open(loc->path, mo);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    m->bytes()[64] ^= 0xff;
    m->bytes()[m->size() - 4096 + 64] ^= 0xff;
    m->Persist(m->bytes(), m->size());
  }
  auto again = CreateDisk(Spec("golden"), Small());
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().kind(), ErrorKind::kNotFound);
  EXPECT_NE(again.status().message().find("not formatting"), std::string::npos)
      << again.status().message();
}

TEST_F(Disk, TheCAbiTakesNamespaceTargets) {
  ASSERT_EQ(setenv("DAXSTORE_EMULATED_DIR", (dir_ / "bus").c_str(), 1), 0);
  daxstore_image_options o;
  daxstore_image_options_init(&o);
  o.virtual_size = 8 << 20;
  o.flags = DAXSTORE_OPEN_EMULATED_BUS;
  daxstore_image* img = nullptr;
  ASSERT_EQ(daxstore_image_create("spare", &o, &img), 0)
      << daxstore_last_error();
  std::string data(4096, 's');
  EXPECT_EQ(daxstore_image_pwrite(img, data.data(), data.size(), 8192), 4096);
  EXPECT_EQ(daxstore_image_snapshot(img, "snap"), 0) << daxstore_last_error();
  daxstore_image_close(img);

  img = nullptr;
  ASSERT_EQ(daxstore_image_open(devices_[1].c_str(), "snap",
                                DAXSTORE_OPEN_EMULATED_BUS, &img),
            0)
      << daxstore_last_error();
  std::string got(4096, 0);
  EXPECT_EQ(daxstore_image_pread(img, got.data(), got.size(), 8192), 4096);
  EXPECT_EQ(got, data);
  EXPECT_EQ(daxstore_image_pwrite(img, data.data(), data.size(), 0), -EROFS);
  daxstore_image_close(img);

  EXPECT_EQ(daxstore_image_open("namespace7.7", nullptr,
                                DAXSTORE_OPEN_EMULATED_BUS, &img),
            -ENOENT);
  EXPECT_EQ(img, nullptr);
  EXPECT_EQ(
      daxstore_image_open("golden", nullptr, DAXSTORE_OPEN_EMULATED_BUS, &img),
      -ENOENT);
  EXPECT_NE(std::string(daxstore_last_error()).find("image create"),
            std::string::npos)
      << daxstore_last_error();
  EXPECT_EQ(daxstore_image_open(
                "spare", nullptr,
                DAXSTORE_OPEN_EMULATED_BUS | DAXSTORE_OPEN_KERNEL_BUS, &img),
            -EINVAL);
  EXPECT_EQ(daxstore_image_create("spare", &o, &img), -EBUSY);
  unsetenv("DAXSTORE_EMULATED_DIR");
}

}  // namespace
}  // namespace daxstore
