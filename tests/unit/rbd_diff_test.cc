// RBD diff v1 streams: writer/parser round trips between two images, the
// changed-block map, and every malformed stream refused with the target
// image unchanged.
#include "daxstore/rbd_diff.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "daxstore/image.h"
#include "testing/temp_dir.h"

namespace daxstore::rbd {
namespace {

constexpr uint64_t kBs = 4096;
constexpr uint64_t kBlocks = 64;

MapOptions Emulated() {
  MapOptions mo;
  mo.emulate = PersistenceDomain::kMemoryController;
  return mo;
}

Image Make(const std::string& path) {
  ImageOptions o;
  o.virtual_size = kBlocks * kBs;
  o.lanes = 4;
  o.max_volumes = 6;
  auto img = Image::Create(path, o, Emulated());
  EXPECT_TRUE(img.ok()) << img.status().ToString();
  return std::move(img).value();
}

std::vector<uint8_t> Contents(const Image& img, const std::string& vol) {
  auto h = img.OpenVolume(vol);
  EXPECT_TRUE(h.ok()) << h.status().ToString();
  std::vector<uint8_t> b(h->virtual_size());
  EXPECT_TRUE(h->Read(0, b.data(), b.size()).ok());
  return b;
}

std::vector<std::string> Names(const Image& img) {
  std::vector<std::string> n;
  auto vols = img.Volumes();
  EXPECT_TRUE(vols.ok()) << vols.status().ToString();
  for (const auto& v : *vols) n.push_back(v.name);
  std::sort(n.begin(), n.end());
  return n;
}

std::vector<uint8_t> Diff(const Image& img, const std::string& from,
                          const std::string& to, DiffStats* st = nullptr) {
  std::vector<uint8_t> out;
  auto r = WriteDiff(img, from, to, [&](std::span<const uint8_t> b) {
    out.insert(out.end(), b.begin(), b.end());
    return Status::Ok();
  });
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (st && r.ok()) *st = *r;
  return out;
}

DiffSource From(const std::vector<uint8_t>& s) {
  auto pos = std::make_shared<size_t>(0);
  return [&s, pos](std::span<uint8_t> buf) -> Result<size_t> {
    size_t n = std::min(buf.size(), s.size() - *pos);
    if (n > 0) std::memcpy(buf.data(), s.data() + *pos, n);
    *pos += n;
    return n;
  };
}

void Put(Image& img, uint64_t block, uint8_t c, uint64_t n = 1) {
  std::vector<uint8_t> b(n * kBs, c);
  ASSERT_TRUE(img.Write(block * kBs, b.data(), b.size()).ok());
}

class RbdDiffTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Put(src_, 1, 0x11, 3);
    Put(src_, 10, 0x22);
    Put(src_, 63, 0x33);
    ASSERT_TRUE(src_.Snapshot("s1").ok());
    Put(src_, 2, 0x44);                             // rewritten
    ASSERT_TRUE(src_.Discard(10 * kBs, kBs).ok());  // mapped, then a hole
    Put(src_, 20, 0x55, 2);                         // new
    ASSERT_TRUE(src_.Snapshot("s2").ok());
  }
  testing::TempDir dir_;
  Image src_ = Make(dir_.path() + "/src.img");
  Image dst_ = Make(dir_.path() + "/dst.img");
};

TEST_F(RbdDiffTest, ChangesComeFromTheBlockMaps) {
  auto s2 = src_.OpenVolume("s2").value();
  auto c = s2.Changes("s1");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  std::vector<Extent> want = {
      {2 * kBs, kBs, false}, {10 * kBs, kBs, true}, {20 * kBs, 2 * kBs, false}};
  ASSERT_EQ(c->size(), want.size());
  for (size_t i = 0; i < want.size(); i++) {
    EXPECT_EQ((*c)[i].offset, want[i].offset) << i;
    EXPECT_EQ((*c)[i].length, want[i].length) << i;
    EXPECT_EQ((*c)[i].hole, want[i].hole) << i;
  }
  EXPECT_EQ(s2.Changes("nope").status().kind(), ErrorKind::kNotFound);
}

TEST_F(RbdDiffTest, FullThenIncrementalRoundTrip) {
  DiffStats full, inc;
  auto d1 = Diff(src_, "", "s1", &full);
  EXPECT_EQ(std::string(d1.begin(), d1.begin() + 12), "rbd diff v1\n");
  EXPECT_EQ(full.data_bytes, 5 * kBs);  // blocks 1-3, 10, 63
  EXPECT_EQ(full.zero_bytes, 0u);
  auto r1 = ImportDiff(dst_, "", From(d1));
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  EXPECT_EQ(Contents(dst_, "s1"), Contents(src_, "s1"));

  auto d2 = Diff(src_, "s1", "s2", &inc);
  EXPECT_EQ(inc.data_bytes, 3 * kBs);  // unchanged blocks are not sent
  EXPECT_EQ(inc.zero_bytes, kBs);
  auto r2 = ImportDiff(dst_, "", From(d2));
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ(Contents(dst_, "s2"), Contents(src_, "s2"));
  EXPECT_EQ(Contents(dst_, "base"), Contents(src_, "s2"));
  // No staging volume is left.
  EXPECT_EQ(Names(dst_), (std::vector<std::string>{"base", "s1", "s2"}));
  EXPECT_TRUE(dst_.Check().value().clean());
}

TEST_F(RbdDiffTest, ImportRefusesWhatDoesNotFit) {
  auto d2 = Diff(src_, "s1", "s2");
  // From-snapshot missing.
  auto r = ImportDiff(dst_, "", From(d2));
  EXPECT_EQ(r.status().kind(), ErrorKind::kNotFound) << r.status().ToString();
  // To-snapshot already there.
  auto d1 = Diff(src_, "", "s1");
  ASSERT_TRUE(ImportDiff(dst_, "", From(d1)).ok());
  r = ImportDiff(dst_, "", From(d1));
  EXPECT_EQ(r.status().kind(), ErrorKind::kBusy) << r.status().ToString();
  // Another size.
  ImageOptions o;
  o.virtual_size = 2 * kBlocks * kBs;
  o.max_volumes = 4;
  auto big = Image::Create(dir_.path() + "/big.img", o, Emulated()).value();
  r = ImportDiff(big, "", From(d1));
  EXPECT_EQ(r.status().kind(), ErrorKind::kUnsupported)
      << r.status().ToString();
  EXPECT_EQ(Names(big), std::vector<std::string>{"base"});
}

// One volume slot short of staging plus the to-snapshot: refused before
// anything is written, the volumes and the data as they were.
TEST_F(RbdDiffTest, ImportRefusesWithoutTheVolumeSlotsItTakes) {
  auto d1 = Diff(src_, "", "s1");
  ASSERT_TRUE(ImportDiff(dst_, "", From(d1)).ok());  // base, s1
  ASSERT_TRUE(dst_.Snapshot("x").ok());
  ASSERT_TRUE(dst_.Clone("x", "y").ok());
  ASSERT_TRUE(dst_.Snapshot("z").ok());  // 5 of 6 slots: 1 free, 2 needed
  const auto names = Names(dst_);
  const auto before = Contents(dst_, "base");
  auto r = ImportDiff(dst_, "", From(Diff(src_, "s1", "s2")));
  EXPECT_EQ(r.status().kind(), ErrorKind::kNoSpace) << r.status().ToString();
  EXPECT_NE(r.status().message().find("takes 2 free volume slots"),
            std::string::npos)
      << r.status().message();
  EXPECT_EQ(Names(dst_), names);
  EXPECT_EQ(Contents(dst_, "base"), before);
  // With a slot freed it applies.
  ASSERT_TRUE(dst_.DeleteVolume("y").ok());
  ASSERT_TRUE(ImportDiff(dst_, "", From(Diff(src_, "s1", "s2"))).ok());
  EXPECT_EQ(Contents(dst_, "s2"), Contents(src_, "s2"));
}

// Each malformed stream: refused, and the image keeps its content and
// volumes.
TEST_F(RbdDiffTest, BadStreamsLeaveTheImageUnchanged) {
  auto d1 = Diff(src_, "", "s1");
  ASSERT_TRUE(ImportDiff(dst_, "", From(d1)).ok());
  Put(dst_, 30, 0x77);  // base differs from s1
  auto good = Diff(src_, "s1", "s2");
  const auto before = Contents(dst_, "base");
  const auto vols = Names(dst_);

  auto le = [](std::vector<uint8_t>& b, uint64_t v, int n) {
    for (int i = 0; i < n; i++) b.push_back(static_cast<uint8_t>(v >> 8 * i));
  };
  std::vector<uint8_t> meta;  // header + f, t, s of the good stream
  {
    const std::string m = "rbd diff v1\n";
    meta.assign(m.begin(), m.end());
    meta.push_back('f');
    le(meta, 2, 4);
    meta.push_back('s');
    meta.push_back('1');
    meta.push_back('t');
    le(meta, 2, 4);
    meta.push_back('s');
    meta.push_back('2');
    meta.push_back('s');
    le(meta, kBlocks * kBs, 8);
  }
  ASSERT_EQ(std::vector<uint8_t>(good.begin(), good.begin() + meta.size()),
            meta);
  auto with = [&](std::vector<uint8_t> tail) {
    auto s = meta;
    s.insert(s.end(), tail.begin(), tail.end());
    return s;
  };
  std::vector<uint8_t> write_rec = {'w'};
  le(write_rec, 5 * kBs, 8);
  le(write_rec, 16, 8);
  write_rec.insert(write_rec.end(), 16, 0xab);
  std::vector<uint8_t> past = {'w'};
  le(past, kBlocks * kBs - 8, 8);
  le(past, 16, 8);
  std::vector<uint8_t> absurd = {'z'};
  le(absurd, 8, 8);
  le(absurd, ~uint64_t{0}, 8);
  std::vector<uint8_t> long_name = {'t'};
  le(long_name, 1u << 30, 4);
  auto late_meta = write_rec;
  late_meta.push_back('s');
  le(late_meta, kBlocks * kBs, 8);

  struct Case {
    const char* what;
    std::vector<uint8_t> stream;
  };
  std::vector<Case> cases = {
      {"empty", {}},
      {"bad header",
       [&] {
         auto s = good;
         s[10] = '2';
         return s;
       }()},
      {"truncated in data",
       std::vector<uint8_t>(good.begin(), good.end() - 100)},
      {"missing end mark", std::vector<uint8_t>(good.begin(), good.end() - 1)},
      {"bytes after the end mark",
       [&] {
         auto s = good;
         s.push_back(0);
         return s;
       }()},
      {"unknown tag", with({'q'})},
      {"write past the size", with(past)},
      {"absurd zero length", with(absurd)},
      {"absurd name length", with(long_name)},
      {"metadata after data", with(late_meta)},
      {"data then truncation", with(write_rec)},
      {"no size",
       [&] {
         std::string m = "rbd diff v1\ne";
         return std::vector<uint8_t>(m.begin(), m.end());
       }()},
  };
  for (const Case& c : cases) {
    auto r = ImportDiff(dst_, "", From(c.stream));
    EXPECT_FALSE(r.ok()) << c.what;
    if (c.stream.size() > 12 || std::string(c.what) == "empty") {
      EXPECT_EQ(r.status().kind(), ErrorKind::kCorruption)
          << c.what << ": " << r.status().ToString();
    }
    EXPECT_EQ(Contents(dst_, "base"), before) << c.what;
    EXPECT_EQ(Names(dst_), vols) << c.what;
  }
  // The good stream still applies after all that.
  ASSERT_TRUE(ImportDiff(dst_, "", From(good)).ok());
  EXPECT_EQ(Contents(dst_, "s2"), [&] {
    auto want = Contents(src_, "s2");
    std::memset(want.data() + 30 * kBs, 0x77, kBs);  // base's own write stays
    return want;
  }());
  EXPECT_TRUE(dst_.Check().value().clean());
}

}  // namespace
}  // namespace daxstore::rbd
