// One suite for every namespace backend: create and destroy in every mode,
// sizes and alignments, a full region, a label-less region, reconfigure,
// system-ram and back, bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>

#include "daxstore/image.h"
#include "ns/backend_env.h"
#include "ns/layout.h"

namespace daxstore {
namespace {

using ns::kGiB;
using ns::kMiB;
using testing::BackendParam;

class NamespaceSuite : public ::testing::TestWithParam<BackendParam> {
 protected:
  // Opens a backend on a bus of this layout, or skips the test.
  void Open(EmulatedBusConfig layout = {},
            testing::Ways ways = testing::Ways::kExact) {
    env_ = GetParam().make();
    auto b = env_->Open(layout, ways);
    if (!b.ok() && b.status().kind() == ErrorKind::kUnsupported) {
      GTEST_SKIP() << b.status().message();
    }
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    be_ = std::move(b).value();
  }

  // The kernel names a created namespace after its region's seed, so tests
  // derive device names from the namespace they got: namespaceR.I has
  // pmemR (I == 0) or pmemR.I, and daxR.I.
  static std::string Suffix(const std::string& dev) {
    std::string tail = dev.substr(std::string("namespace").size());
    std::string region = tail.substr(0, tail.find('.'));
    std::string id = tail.substr(tail.find('.') + 1);
    return id == "0" ? region : tail;
  }
  static std::string PmemOf(const std::string& dev) {
    return "pmem" + Suffix(dev);
  }
  static std::string DaxOf(const std::string& dev) {
    return "dax" + dev.substr(std::string("namespace").size());
  }

  std::optional<Namespace> Find(const std::string& dev) {
    auto buses = be_->List({.ns = dev, .include_idle = true});
    EXPECT_TRUE(buses.ok()) << buses.status().ToString();
    if (!buses.ok()) return std::nullopt;
    for (const auto& b : *buses) {
      for (const auto& r : b.regions) {
        for (const auto& n : r.namespaces) return n;
      }
    }
    return std::nullopt;
  }

  Region RegionNamed(const std::string& dev) {
    auto buses = be_->List({.region = dev, .include_idle = true});
    EXPECT_TRUE(buses.ok());
    EXPECT_EQ(buses->size(), 1u);
    EXPECT_EQ(buses->at(0).regions.size(), 1u);
    return buses->at(0).regions.at(0);
  }

  Result<Namespace> Create(NamespaceMode mode, const std::string& size,
                           const std::string& region = "region0") {
    CreateRequest r;
    r.mode = mode;
    r.region = region;
    auto s = ParseSizeRequest(size);
    if (!s.ok()) return s.status();
    r.size = *s;
    return be_->Create(r);
  }

  std::shared_ptr<testing::BackendEnv> env_;
  std::unique_ptr<NamespaceBackend> be_;
};

TEST_P(NamespaceSuite, CreateAndDestroyInEveryMode) {
  Open();
  if (IsSkipped() || HasFatalFailure()) return;
  Region before = RegionNamed("region0");
  EXPECT_EQ(before.available_size, kGiB);
  struct Case {
    NamespaceMode mode;
    const char* blockdev_suffix;  // nullptr: no block device
    bool chardev;
    uint64_t size;
  };
  const Case cases[] = {
      {NamespaceMode::kFsdax, "", false, 250 * kMiB},
      {NamespaceMode::kDevdax, nullptr, true, 250 * kMiB},
      {NamespaceMode::kSector, "s", false, ns::BttUsableSize(256 * kMiB, 4096)},
      {NamespaceMode::kRaw, "", false, 256 * kMiB},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(NamespaceModeName(c.mode)));
    auto n = Create(c.mode, "256M");
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    EXPECT_EQ(n->dev.rfind("namespace0.", 0), 0u) << n->dev;
    EXPECT_EQ(n->mode, c.mode);
    EXPECT_EQ(n->size, c.size);
    EXPECT_EQ(n->raw_size, 256 * kMiB);
    EXPECT_EQ(n->blockdev, c.blockdev_suffix
                               ? PmemOf(n->dev) + c.blockdev_suffix
                               : std::string());
    EXPECT_EQ(n->dax_region.has_value(), c.chardev);
    if (n->dax_region) {
      EXPECT_EQ(n->dax_region->devices.at(0).chardev, DaxOf(n->dev));
      EXPECT_EQ(n->dax_region->align, 2 * kMiB);
    }
    EXPECT_TRUE(ns::ValidUuid(n->uuid));
    auto listed = Find(n->dev);
    ASSERT_TRUE(listed.has_value()) << n->dev << " is not listed";
    EXPECT_EQ(listed->uuid, n->uuid);
    EXPECT_EQ(listed->mode, c.mode);
    EXPECT_EQ(RegionNamed("region0").available_size, kGiB - 256 * kMiB);
    ASSERT_TRUE(be_->Destroy(n->dev, /*force=*/true).ok());
    EXPECT_FALSE(Find(n->dev).has_value());
    EXPECT_EQ(RegionNamed("region0").available_size, kGiB);
  }
}

// Namespace sizes are multiples of max(align, region align) x the
// region's interleave ways. What this expects is derived from the region
// the backend has: 2 GiB, 2-way on the emulated bus; a 1 GiB, 1-way NVDIMM
// in the kernel tier (QEMU's NVDIMMs each form their own region).
TEST_P(NamespaceSuite, SizesAndAlignments) {
  Open({.dimms_per_region = 2, .region_size = 2 * kGiB}, testing::Ways::kAny);
  if (IsSkipped() || HasFatalFailure()) return;
  const Region r = RegionNamed("region0");
  const uint64_t ways = static_cast<uint64_t>(r.interleave_ways());
  const uint64_t unit = std::max<uint64_t>(2 * kMiB, r.align) * ways;
  ASSERT_EQ(r.available_size, r.size);
  ASSERT_EQ(r.size % (4 * unit), 0u) << "the region cannot be quartered";
  // A misaligned size names the valid sizes on either side of it.
  const uint64_t odd = 100 * kMiB;
  ASSERT_NE(odd % unit, 0u);
  auto bad = Create(NamespaceMode::kFsdax, "100M");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().kind(), ErrorKind::kInvalidArgument);
  const std::string tries = "try --size " + ns::SizeArg(odd / unit * unit) +
                            " or --size " +
                            ns::SizeArg(odd / unit * unit + unit);
  EXPECT_NE(bad.status().message().find(tries), std::string::npos)
      << bad.status().message() << "\nwanted: " << tries;
  EXPECT_NE(bad.status().message().find(" x " + std::to_string(ways) +
                                        " interleave way"),
            std::string::npos)
      << bad.status().message();
  auto half = Create(NamespaceMode::kFsdax, "50%");
  ASSERT_TRUE(half.ok()) << half.status().ToString();
  EXPECT_EQ(half->raw_size, r.size / 2);
  // 1 GiB pages: the size must be a multiple of 1G x ways.
  const uint64_t huge = std::max<uint64_t>(kGiB, r.align) * ways;
  CreateRequest big;
  big.mode = NamespaceMode::kDevdax;
  big.align = kGiB;
  big.size = {SizeRequest::Kind::kBytes, huge + huge / 2};
  auto h = be_->Create(big);
  ASSERT_FALSE(h.ok());
  const std::string huge_tries =
      "try --size " + ns::SizeArg(huge) + " or --size " + ns::SizeArg(2 * huge);
  EXPECT_NE(h.status().message().find(huge_tries), std::string::npos)
      << h.status().message() << "\nwanted: " << huge_tries;
  // 4 KiB pages: a quarter of the region.
  CreateRequest small_pages;
  small_pages.region = r.dev;
  small_pages.mode = NamespaceMode::kDevdax;
  small_pages.align = 4096;
  small_pages.size = {SizeRequest::Kind::kBytes, r.size / 4};
  auto s = be_->Create(small_pages);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_NE(s->dev, half->dev);
  EXPECT_EQ(s->dax_region->align, 4096u);
  EXPECT_EQ(s->size, ns::UsableSize(NamespaceMode::kDevdax, MapLocation::kDev,
                                    r.size / 4, 4096, 0));
  CreateRequest mem;
  mem.region = r.dev;
  mem.mode = NamespaceMode::kFsdax;
  mem.map = MapLocation::kMem;
  auto m = be_->Create(mem);  // the rest: a quarter
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->raw_size, r.size / 4) << m->dev;
  EXPECT_EQ(*m->map, MapLocation::kMem);
  // map=mem keeps only the 8 KiB info block, rounded up to the 2M align.
  EXPECT_EQ(m->size, r.size / 4 - 2 * kMiB);
}

// The one interleave-specific check: a multiple of the per-DIMM unit that
// is not one of unit x ways is refused.
TEST_P(NamespaceSuite, InterleaveWaysMultiplyTheSizeUnit) {
  Open({.dimms_per_region = 2, .region_size = 2 * kGiB}, testing::Ways::kAny);
  if (IsSkipped() || HasFatalFailure()) return;
  const Region r = RegionNamed("region0");
  if (r.interleave_ways() < 2) {
    GTEST_SKIP() << r.dev << " is 1-way (QEMU's NVDIMMs each form their own "
                 << "region): no interleave to check";
  }
  const uint64_t per_dimm = std::max<uint64_t>(2 * kMiB, r.align);
  const uint64_t unit = per_dimm * r.interleave_ways();
  CreateRequest c;
  c.mode = NamespaceMode::kRaw;
  c.size = {SizeRequest::Kind::kBytes, unit + per_dimm};
  auto n = be_->Create(c);
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.status().message().find("try --size " + ns::SizeArg(unit) +
                                      " or --size " + ns::SizeArg(2 * unit)),
            std::string::npos)
      << n.status().message();
}

TEST_P(NamespaceSuite, AFullRegion) {
  Open();
  if (IsSkipped() || HasFatalFailure()) return;
  std::vector<std::string> devs;
  for (int i = 0; i < 4; ++i) {
    auto n = Create(NamespaceMode::kRaw, "256M");
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    devs.push_back(n->dev);
  }
  auto full = Create(NamespaceMode::kFsdax, "");
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.status().kind(), ErrorKind::kNoSpace);
  EXPECT_NE(full.status().message().find("no space left"), std::string::npos)
      << full.status().message();
  // Two holes of 256M that are not adjacent: 512M does not fit.
  ASSERT_TRUE(be_->Destroy(devs[0], true).ok());
  ASSERT_TRUE(be_->Destroy(devs[2], true).ok());
  Region r = RegionNamed("region0");
  EXPECT_EQ(r.available_size, 512 * kMiB);
  EXPECT_EQ(r.max_available_extent, 256 * kMiB);
  auto frag = Create(NamespaceMode::kRaw, "512M");
  ASSERT_FALSE(frag.ok());
  EXPECT_NE(frag.status().message().find("largest free extent is 256M"),
            std::string::npos)
      << frag.status().message();
  auto fits = Create(NamespaceMode::kRaw, "256M");
  ASSERT_TRUE(fits.ok()) << fits.status().ToString();
  EXPECT_NE(fits->dev, devs[1]);
  EXPECT_NE(fits->dev, devs[3]);
}

TEST_P(NamespaceSuite, ALabelLessRegion) {
  Open({.region_size = 512 * kMiB, .label_less = true});
  if (IsSkipped() || HasFatalFailure()) return;
  auto n = Find("namespace0.0");
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->mode, NamespaceMode::kFsdax);
  EXPECT_EQ(*n->map, MapLocation::kMem);
  EXPECT_TRUE(n->uuid.empty());
  Region r = RegionNamed("region0");
  EXPECT_TRUE(r.label_less);
  EXPECT_EQ(r.available_size, 0u);
  auto sub = Create(NamespaceMode::kFsdax, "128M");
  ASSERT_FALSE(sub.ok());
  EXPECT_NE(sub.status().message().find(
                "label-less region cannot be subdivided: reconfigure with -e"),
            std::string::npos)
      << sub.status().message();
  EXPECT_FALSE(be_->Destroy("namespace0.0", true).ok());
  EXPECT_EQ(be_->InitLabels("region0", true).status().kind(),
            ErrorKind::kUnsupported);
  for (auto mode : {NamespaceMode::kDevdax, NamespaceMode::kSector,
                    NamespaceMode::kRaw, NamespaceMode::kFsdax}) {
    CreateRequest e;
    e.reconfigure = "namespace0.0";
    e.mode = mode;
    e.force = true;
    auto re = be_->Create(e);
    ASSERT_TRUE(re.ok()) << re.status().ToString();
    EXPECT_EQ(re->mode, mode);
    EXPECT_EQ(re->raw_size, 512 * kMiB);
  }
}

TEST_P(NamespaceSuite, ReconfigureKeepsNameAndSize) {
  Open();
  if (IsSkipped() || HasFatalFailure()) return;
  CreateRequest c;
  c.mode = NamespaceMode::kFsdax;
  c.size = {SizeRequest::Kind::kBytes, 256 * kMiB};
  c.name = "db";
  auto n = be_->Create(c);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  CreateRequest e;
  e.reconfigure = n->dev;
  e.mode = NamespaceMode::kSector;
  auto busy = be_->Create(e);
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.status().kind(), ErrorKind::kBusy);
  EXPECT_NE(busy.status().message().find("-f"), std::string::npos);
  e.force = true;
  auto re = be_->Create(e);
  ASSERT_TRUE(re.ok()) << re.status().ToString();
  // The kernel reconfigures into its region's seed: the name, not the
  // device id, is what stays.
  EXPECT_EQ(re->name, "db");
  EXPECT_EQ(re->raw_size, 256 * kMiB);
  EXPECT_EQ(re->mode, NamespaceMode::kSector);
  EXPECT_EQ(re->blockdev, PmemOf(re->dev) + "s");
  EXPECT_NE(re->uuid, n->uuid);
  e.size = {SizeRequest::Kind::kBytes, 128 * kMiB};
  EXPECT_EQ(be_->Create(e).status().kind(), ErrorKind::kInvalidArgument);
}

TEST_P(NamespaceSuite, SystemRamAndBack) {
  Open();
  if (IsSkipped() || HasFatalFailure()) return;
  auto n = Create(NamespaceMode::kDevdax, "512M");
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  ASSERT_TRUE(n->dax_region.has_value());
  const std::string dax = n->dax_region->devices.at(0).chardev;
  auto ram = be_->ReconfigureDevice(dax, DaxMode::kSystemRam, false);
  ASSERT_TRUE(ram.ok()) << ram.status().ToString();
  EXPECT_EQ(ram->mode, DaxMode::kSystemRam);
  auto d = be_->Destroy(n->dev, true);
  EXPECT_EQ(d.kind(), ErrorKind::kBusy);
  EXPECT_NE(d.message().find("system-ram"), std::string::npos);
  EXPECT_EQ(be_->DisableNamespace(n->dev).kind(), ErrorKind::kBusy);
  CreateRequest e;
  e.reconfigure = n->dev;
  e.force = true;
  EXPECT_EQ(be_->Create(e).status().kind(), ErrorKind::kBusy);
  EXPECT_EQ(
      be_->ReconfigureDevice(dax, DaxMode::kDevdax, false).status().kind(),
      ErrorKind::kBusy);
  auto back = be_->ReconfigureDevice(dax, DaxMode::kDevdax, true);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->mode, DaxMode::kDevdax);
  EXPECT_TRUE(be_->Destroy(n->dev, true).ok());
  EXPECT_EQ(
      be_->ReconfigureDevice(dax, DaxMode::kSystemRam, false).status().kind(),
      ErrorKind::kNotFound);
}

TEST_P(NamespaceSuite, BadInput) {
  Open();
  if (IsSkipped() || HasFatalFailure()) return;
  EXPECT_FALSE(ParseSizeRequest("1.5x").ok());
  EXPECT_FALSE(ParseSizeRequest("-5G").ok());
  EXPECT_FALSE(ParseNamespaceMode("fastdax").ok());
  CreateRequest r;
  r.name = std::string(64, 'x');
  EXPECT_EQ(be_->Create(r).status().kind(), ErrorKind::kInvalidArgument);
  r.name = "ok";
  r.region = "region9";
  EXPECT_EQ(be_->Create(r).status().kind(), ErrorKind::kNotFound);
  r.region = "regionX";
  EXPECT_EQ(be_->Create(r).status().kind(), ErrorKind::kInvalidArgument);
  r.region = "";
  r.uuid = "12345";
  EXPECT_EQ(be_->Create(r).status().kind(), ErrorKind::kInvalidArgument);
  r.uuid = "2f1e4b4c-5d6e-4f70-8192-a3b4c5d6e7f8";
  // Raw: a personality (fsdax, devdax, sector) shows its own uuid.
  r.mode = NamespaceMode::kRaw;
  r.size = {SizeRequest::Kind::kBytes, 128 * kMiB};
  auto ok = be_->Create(r);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->uuid, r.uuid);
  EXPECT_FALSE(be_->Create(r).ok());  // the uuid is taken
  EXPECT_EQ(be_->Destroy("namespace0.7", true).kind(), ErrorKind::kNotFound);
  EXPECT_EQ(be_->Destroy("bogus", true).kind(), ErrorKind::kInvalidArgument);
}

TEST_P(NamespaceSuite, EnableDisableAndInitLabels) {
  Open({.regions = 2});
  if (IsSkipped() || HasFatalFailure()) return;
  auto n = Create(NamespaceMode::kFsdax, "256M", "region1");
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(n->dev.rfind("namespace1.", 0), 0u) << n->dev;
  EXPECT_EQ(n->blockdev, PmemOf(n->dev));
  ASSERT_TRUE(be_->DisableNamespace(n->dev).ok());
  auto hidden = be_->List({.ns = n->dev});
  ASSERT_TRUE(hidden.ok());
  EXPECT_TRUE(hidden->at(0).regions.at(0).namespaces.empty());
  EXPECT_FALSE(Find(n->dev)->enabled);
  EXPECT_TRUE(be_->Destroy(n->dev, false).ok());  // inactive: no -f needed
  EXPECT_EQ(be_->InitLabels("region0", false).status().kind(),
            ErrorKind::kBusy);
  ASSERT_TRUE(be_->DisableRegion("region0").ok());
  auto off = Create(NamespaceMode::kFsdax, "256M", "region0");
  EXPECT_NE(off.status().message().find("enable-region"), std::string::npos);
  auto inited = be_->InitLabels("region0", false);
  ASSERT_TRUE(inited.ok()) << inited.status().ToString();
  EXPECT_EQ(*inited, 1);
  ASSERT_TRUE(be_->EnableRegion("region0").ok());
  auto fresh = Create(NamespaceMode::kFsdax, "256M", "region0");
  EXPECT_TRUE(fresh.ok()) << fresh.status().ToString();
  // Filters.
  ASSERT_TRUE(Create(NamespaceMode::kSector, "256M", "region1").ok());
  auto sectors = be_->List({.mode = NamespaceMode::kSector});
  ASSERT_TRUE(sectors.ok());
  int count = 0;
  for (const auto& r : sectors->at(0).regions) {
    count += static_cast<int>(r.namespaces.size());
  }
  EXPECT_EQ(count, 1);
}

TEST_P(NamespaceSuite, DaxNamespacesMapThroughTheMappingLayer) {
  Open();
  if (IsSkipped() || HasFatalFailure()) return;
  auto n = Create(NamespaceMode::kDevdax, "256M");
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  auto t = be_->MapTargetOf(n->dev);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  auto m = Mapping::Open(t->path, t->options);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->size(), n->size);
  EXPECT_NE(m->granularity(), Granularity::kPage);
  m->MemcpyPersist(m->bytes(), "hello", 5);
  auto s = Create(NamespaceMode::kSector, "256M");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(be_->MapTargetOf(s->dev).status().kind(), ErrorKind::kUnsupported);
}

// An image open on a namespace makes it busy, as a mount does: destroy,
// reconfigure and disable refuse it even forced, and the image keeps its
// data. Once the image is closed, they work. (On the kernel bus the image
// holds /dev/daxX.Y; a mounted fsdax namespace is tested in the guest.)
TEST_P(NamespaceSuite, AnOpenImageMakesItsNamespaceBusy) {
  Open();
  if (IsSkipped() || HasFatalFailure()) return;
  auto n = Create(NamespaceMode::kDevdax, "256M");
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  auto t = be_->MapTargetOf(n->dev);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  const std::string data(512, 'k');
  {
    auto made = Image::Create(t->path, {.virtual_size = 16 * kMiB}, t->options);
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    ASSERT_TRUE(made->Write(0, data.data(), data.size()).ok());
  }
  for (Access access : {Access::kReadWrite, Access::kReadOnly}) {
    SCOPED_TRACE(access == Access::kReadWrite ? "read-write" : "read-only");
    MapOptions mo = t->options;
    mo.access = access;
    auto img = Image::Open(t->path, mo);
    ASSERT_TRUE(img.ok()) << img.status().ToString();
    Status d = be_->Destroy(n->dev, /*force=*/true);
    EXPECT_EQ(d.kind(), ErrorKind::kBusy) << d.ToString();
    EXPECT_NE(d.message().find("held by an open image or mapping"),
              std::string::npos)
        << d.message();
    CreateRequest e;
    e.reconfigure = n->dev;
    e.mode = NamespaceMode::kFsdax;
    e.force = true;
    EXPECT_EQ(be_->Create(e).status().kind(), ErrorKind::kBusy);
    EXPECT_EQ(be_->DisableNamespace(n->dev).kind(), ErrorKind::kBusy);
    auto still = Find(n->dev);
    ASSERT_TRUE(still.has_value());
    EXPECT_EQ(still->mode, NamespaceMode::kDevdax);
    EXPECT_TRUE(still->enabled);
    std::string back(512, '\0');
    ASSERT_TRUE(img->Read(0, back.data(), back.size()).ok());
    EXPECT_EQ(back, data);
  }
  EXPECT_TRUE(be_->Destroy(n->dev, true).ok());
  EXPECT_FALSE(Find(n->dev).has_value());
}

std::string ParamName(const ::testing::TestParamInfo<BackendParam>& info) {
  return info.param.name;
}

INSTANTIATE_TEST_SUITE_P(Backends, NamespaceSuite,
                         ::testing::ValuesIn(testing::BackendsUnderTest()),
                         ParamName);

}  // namespace
}  // namespace daxstore
