// Damaged metadata costs what it damaged, never the process or the other
// volumes: damaged volume table entries, a damaged primary superblock and
// the corrupt flag, through the library and the daxstore binary.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "daxstore/daxstore.h"
#include "daxstore/image.h"
#include "daxstore/image_server.h"
#include "image/format.h"
#include "testing/temp_dir.h"

#ifndef DAXSTORE_CLI
#error "DAXSTORE_CLI must name the daxstore binary"
#endif

namespace daxstore {
namespace {

using nlohmann::json;

constexpr uint64_t kBlock = 4096;

struct CliRun {
  int rc = -1;
  std::string out, err;
};

bool Has(const std::string& s, const std::string& what) {
  return s.find(what) != std::string::npos;
}

class ImageIntegrityTest : public ::testing::Test {
 protected:
  // base: blocks 0-3 of 1s; snapshot "snap" of it; then base blocks 2-3
  // rewritten with 2s, so "snap" alone holds two blocks.
  void SetUp() override {
    ImageOptions o;
    o.virtual_size = 64 * kBlock;
    o.lanes = 2;
    o.max_volumes = 4;
    auto img = Image::Create(path_, o);
    ASSERT_TRUE(img.ok()) << img.status().ToString();
    ASSERT_TRUE(img->Write(0, Fill(1, 4).data(), 4 * kBlock).ok());
    ASSERT_TRUE(img->Snapshot("snap").ok());
    ASSERT_TRUE(img->Write(2 * kBlock, Fill(2, 2).data(), 2 * kBlock).ok());
  }

  static std::vector<uint8_t> Fill(uint8_t v, size_t blocks) {
    return std::vector<uint8_t>(blocks * kBlock, v);
  }
  // What base holds after SetUp (the first 4 blocks).
  static std::vector<uint8_t> BaseWant() {
    auto want = Fill(1, 4);
    std::memset(want.data() + 2 * kBlock, 2, 2 * kBlock);
    return want;
  }

  image::Superblock Sb() {
    image::Superblock sb;
    Pread(&sb, sizeof sb, 0);
    return sb;
  }
  uint64_t EntryOffset(uint32_t slot) {
    image::Superblock sb;
    Pread(&sb, sizeof sb, BackupAt());
    return sb.volume_offset + slot * image::kVolumeEntry;
  }
  uint64_t BackupAt() {
    int fd = ::open(path_.c_str(), O_RDONLY);
    off_t size = ::lseek(fd, 0, SEEK_END);
    ::close(fd);
    return image::BackupOffset(static_cast<uint64_t>(size));
  }
  image::VolumeEntry Entry(uint32_t slot) {
    image::VolumeEntry e;
    Pread(&e, sizeof e, EntryOffset(slot));
    return e;
  }
  void PutEntry(uint32_t slot, const image::VolumeEntry& e) {
    Pwrite(&e, sizeof e, EntryOffset(slot));
  }
  void Pread(void* p, size_t n, uint64_t off) {
    int fd = ::open(path_.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pread(fd, p, n, off), static_cast<ssize_t>(n));
    ::close(fd);
  }
  void Pwrite(const void* p, size_t n, uint64_t off) {
    int fd = ::open(path_.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, p, n, off), static_cast<ssize_t>(n));
    ::close(fd);
  }

  CliRun Cli(const std::string& args) {
    return Sh(std::string(DAXSTORE_CLI) + " " + args);
  }
  // A shell command line; its stderr goes to CliRun::err.
  CliRun Sh(const std::string& line) {
    CliRun r;
    const std::string err = dir_ / "stderr";
    std::string cmd = "(" + line + ") 2>" + err;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return r;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    int st = ::pclose(p);
    r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    std::ifstream in(err);
    r.err.assign(std::istreambuf_iterator<char>(in), {});
    return r;
  }

  testing::TempDir dir_;
  std::string path_ = dir_ / "disk.img";
};

// A volume name that is not valid UTF-8 (sealed with a good checksum, as
// a forger or a buggy writer would leave it) is reported as a damaged
// entry: list and info work, check calls it corruption.
TEST_F(ImageIntegrityTest, InvalidNameIsDamagedNotThrown) {
  image::VolumeEntry e = Entry(1);
  ASSERT_STREQ(e.name, "snap");
  const char bad[] = "sn\xff\xfe\x01p";
  std::memset(e.name, 0, sizeof e.name);
  std::memcpy(e.name, bad, sizeof bad - 1);
  image::SealVolume(e);
  PutEntry(1, e);

  {
    auto img = Image::Open(path_);
    ASSERT_TRUE(img.ok()) << img.status().ToString();
    auto vols = img->Volumes();
    ASSERT_TRUE(vols.ok());
    ASSERT_EQ(vols->size(), 2u);
    EXPECT_FALSE((*vols)[0].damaged);
    EXPECT_TRUE((*vols)[1].damaged);
    EXPECT_EQ((*vols)[1].name, "sn\\xff\\xfe\\x01p");
    EXPECT_TRUE(Has((*vols)[1].damage, "name")) << (*vols)[1].damage;
    EXPECT_EQ(img->Info()->damaged_volumes, 1u);
    auto rep = img->Check();
    ASSERT_TRUE(rep.ok());
    EXPECT_FALSE(rep->clean());
    EXPECT_TRUE(rep->corrupt());
    ASSERT_EQ(rep->damaged_volumes.size(), 1u);
    EXPECT_EQ(rep->damaged_volumes[0].slot, 1u);
    std::vector<uint8_t> got(4 * kBlock);
    ASSERT_TRUE(img->Read(0, got.data(), got.size()).ok());
    EXPECT_EQ(got, BaseWant());
  }

  CliRun r = Cli("image list " + path_);
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  json j = json::parse(r.out);
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["name"], "base");
  EXPECT_EQ(j[1]["damaged"], true);
  EXPECT_EQ(j[1]["name"], "sn\\xff\\xfe\\x01p");

  r = Cli("image info " + path_);
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_EQ(json::parse(r.out)["damaged_volumes"], 1);

  r = Cli("image check " + path_);
  EXPECT_EQ(r.rc, 2) << r.out << r.err;
  j = json::parse(r.out);
  EXPECT_EQ(j["clean"], false);
  ASSERT_EQ(j["damaged_volumes"].size(), 1u);
  EXPECT_TRUE(Has(r.err, "1 damaged volume table entries")) << r.err;
}

// One flipped bit in a snapshot's table entry costs the snapshot only;
// check --repair=all drops the entry, names it and frees its blocks.
TEST_F(ImageIntegrityTest, FlippedBitInSnapshotEntryCostsThatVolume) {
  image::VolumeEntry e = Entry(1);
  e.created_unix_ns ^= 1ull << 17;  // not re-sealed
  PutEntry(1, e);

  {
    auto img = Image::Open(path_, "base");
    ASSERT_TRUE(img.ok()) << img.status().ToString();
    EXPECT_EQ(img->OpenVolume("snap").status().kind(), ErrorKind::kNotFound);
    // Block 0 is still shared with the damaged snapshot's map: the write
    // goes out of place and leaves the shared block held.
    ASSERT_TRUE(img->Write(0, Fill(3, 1).data(), kBlock).ok());
    ASSERT_TRUE(img->Write(0, Fill(1, 1).data(), kBlock).ok());
    auto rep = img->Check();
    ASSERT_TRUE(rep.ok());
    EXPECT_EQ(rep->leaked_blocks, 0u);
    EXPECT_EQ(rep->overcommitted_blocks, 0u);
    ASSERT_EQ(rep->damaged_volumes.size(), 1u);
    EXPECT_TRUE(Has(rep->damaged_volumes[0].damage, "checksum"));
  }

  CliRun r = Cli("image list " + path_);
  ASSERT_EQ(r.rc, 0) << r.err;
  json j = json::parse(r.out);
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[1]["name"], "snap");
  EXPECT_EQ(j[1]["damaged"], true);
  r = Cli("image info " + path_ + " --volume base");
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::string raw = dir_ / "base.raw";
  r = Cli("image export " + path_ + " " + raw);
  ASSERT_EQ(r.rc, 0) << r.err;
  {
    std::ifstream in(raw, std::ios::binary);
    std::vector<uint8_t> got(4 * kBlock);
    in.read(reinterpret_cast<char*>(got.data()), got.size());
    EXPECT_EQ(got, BaseWant());
  }

  r = Cli("image check " + path_);
  EXPECT_EQ(r.rc, 2) << r.out << r.err;
  EXPECT_TRUE(Has(r.out, "volume table entry 1 ('snap') is damaged")) << r.out;

  r = Cli("image check --repair=all " + path_);
  EXPECT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_TRUE(Has(r.err, "dropped the damaged volume table entry 1 ('snap'"))
      << r.err;
  j = json::parse(r.out);
  ASSERT_EQ(j["damaged_volumes"].size(), 1u);
  EXPECT_EQ(j["damaged_volumes"][0]["dropped"], true);
  // The snapshot alone held the old blocks 0, 2 and 3 (base rewrote them).
  EXPECT_EQ(j["damaged_volumes"][0]["freed_blocks"].size(), 3u);

  r = Cli("image check " + path_);
  EXPECT_EQ(r.rc, 0) << r.out << r.err;
  auto img = Image::Open(path_);
  ASSERT_TRUE(img.ok());
  EXPECT_EQ(img->Volumes()->size(), 1u);
  std::vector<uint8_t> got(4 * kBlock);
  ASSERT_TRUE(img->Read(0, got.data(), got.size()).ok());
  EXPECT_EQ(got, BaseWant());
  // The slot is usable again.
  ASSERT_TRUE(img->Snapshot("snap2").ok());
}

// A damaged entry of the default volume: the image no longer opens by path
// (its other volumes do, by name); check --repair=all rebuilds the entry as
// a writable "base" that keeps its data, and a --repair=leaks leaves it.
TEST_F(ImageIntegrityTest, DamagedDefaultVolumeEntryIsRebuilt) {
  image::VolumeEntry e = Entry(0);
  e.created_unix_ns ^= 1ull << 9;  // not re-sealed
  PutEntry(0, e);

  EXPECT_EQ(Image::Open(path_).status().kind(), ErrorKind::kCorruption);
  {
    auto snap = Image::Open(path_, "snap");
    ASSERT_TRUE(snap.ok()) << snap.status().ToString();
    std::vector<uint8_t> got(4 * kBlock);
    ASSERT_TRUE(snap->Read(0, got.data(), got.size()).ok());
    EXPECT_EQ(got, Fill(1, 4));
  }

  CliRun r = Cli("image check " + path_);
  EXPECT_EQ(r.rc, 2) << r.out << r.err;
  EXPECT_TRUE(Has(r.out, "volume table entry 0 ('base') is damaged")) << r.out;
  EXPECT_TRUE(Has(r.out, "rebuilds it")) << r.out;

  // leaks repairs what loses nothing: the entry stays damaged.
  r = Cli("image check --repair=leaks " + path_);
  EXPECT_EQ(r.rc, 2) << r.out << r.err;
  EXPECT_EQ(Image::Open(path_).status().kind(), ErrorKind::kCorruption);

  r = Cli("image check --repair=all " + path_);
  EXPECT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_TRUE(Has(r.err, "rebuilt the damaged table entry of the default "
                         "volume ('base'"))
      << r.err;
  json j = json::parse(r.out);
  ASSERT_EQ(j["damaged_volumes"].size(), 1u);
  EXPECT_EQ(j["damaged_volumes"][0]["slot"], 0);
  EXPECT_EQ(j["damaged_volumes"][0]["rebuilt_as"], "base");
  EXPECT_EQ(j["damaged_volumes"][0]["dropped"], false);

  r = Cli("image check " + path_);
  EXPECT_EQ(r.rc, 0) << r.out << r.err;
  auto img = Image::Open(path_);
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  EXPECT_EQ(img->volume(), "base");
  EXPECT_FALSE(img->read_only());
  std::vector<uint8_t> got(4 * kBlock);
  ASSERT_TRUE(img->Read(0, got.data(), got.size()).ok());
  EXPECT_EQ(got, BaseWant());
  // Writable, and the blocks it shares with "snap" stay snap's.
  ASSERT_TRUE(img->Write(0, Fill(7, 2).data(), 2 * kBlock).ok());
  auto snap = img->OpenVolume("snap");
  ASSERT_TRUE(snap.ok());
  ASSERT_TRUE(snap->Read(0, got.data(), got.size()).ok());
  EXPECT_EQ(got, Fill(1, 4));
  auto rep = img->Check();
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->clean()) << rep->findings.front();
}

// A damaged primary superblock: the image opens through the backup, check
// says so (corruption), and --repair=leaks rewrites the primary.
TEST_F(ImageIntegrityTest, DamagedPrimarySuperblockIsReportedAndRestored) {
  const uint64_t junk = 0x1234;
  Pwrite(&junk, sizeof junk, offsetof(image::Superblock, lanes));
  {
    MapOptions ro;
    ro.access = Access::kReadOnly;
    auto img = Image::Open(path_, ro);
    ASSERT_TRUE(img.ok()) << img.status().ToString();
    std::vector<uint8_t> got(4 * kBlock);
    ASSERT_TRUE(img->Read(0, got.data(), got.size()).ok());
    EXPECT_EQ(got, BaseWant());
    auto rep = img->Check();
    ASSERT_TRUE(rep.ok());
    EXPECT_TRUE(rep->corrupt());
    EXPECT_TRUE(Has(rep->primary_superblock_damage, "checksum"));
  }
  // A read-only open leaves the primary as it is.
  EXPECT_NE(Sb().lanes, 2u);

  CliRun r = Cli("image check " + path_);
  EXPECT_EQ(r.rc, 2) << r.out << r.err;
  EXPECT_TRUE(Has(r.out, "primary superblock is damaged")) << r.out;
  EXPECT_TRUE(Has(r.err, "primary superblock")) << r.err;

  r = Cli("image check --repair=leaks " + path_);
  EXPECT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_TRUE(Has(r.err, "rewrote the damaged primary superblock")) << r.err;
  EXPECT_EQ(json::parse(r.out)["primary_superblock"]["restored"], true);
  EXPECT_EQ(Sb().lanes, 2u);
  r = Cli("image check " + path_);
  EXPECT_EQ(r.rc, 0) << r.out << r.err;
}

// A refcount damaged (refcounts carry no checksum) so that a write would
// free a block the snapshot still maps: the write fails with
// kCorruption, the snapshot keeps its bytes, the image is flagged corrupt
// (read-only from then on, reads working) until check --repair=all.
TEST_F(ImageIntegrityTest, WriteMeetingBadRefcountFlagsImageCorrupt) {
  image::Superblock sb = Sb();
  uint64_t entry = 0;
  Pread(&entry, sizeof entry, sb.map_offset);  // base, block 0
  ASSERT_TRUE(image::EntryPresent(entry));
  const uint64_t ref_at = sb.ref_offset + 4 * image::EntryPba(entry);
  uint32_t ref = 0;
  Pread(&ref, sizeof ref, ref_at);
  ASSERT_EQ(ref, 2u);  // base and snap
  ref = 1;
  Pwrite(&ref, sizeof ref, ref_at);

  {
    auto img = Image::Open(path_);
    ASSERT_TRUE(img.ok()) << img.status().ToString();
    EXPECT_FALSE(img->read_only());
    Status st = img->Write(0, Fill(9, 1).data(), kBlock);
    EXPECT_EQ(st.kind(), ErrorKind::kCorruption) << st.ToString();
    EXPECT_EQ(ErrnoOf(st), EUCLEAN);
    EXPECT_TRUE(Has(st.message(), "check --repair=all")) << st.message();
    // Nothing changed, the next write is refused, reads work.
    EXPECT_TRUE(img->read_only());
    st = img->Write(8 * kBlock, Fill(9, 1).data(), kBlock);
    EXPECT_EQ(st.kind(), ErrorKind::kCorruption) << st.ToString();
    EXPECT_FALSE(img->Snapshot("more").ok());
    auto snap = img->OpenVolume("snap");
    ASSERT_TRUE(snap.ok());
    std::vector<uint8_t> got(4 * kBlock);
    ASSERT_TRUE(snap->Read(0, got.data(), got.size()).ok());
    EXPECT_EQ(got, Fill(1, 4));
    ASSERT_TRUE(img->Read(0, got.data(), got.size()).ok());
    EXPECT_EQ(got, BaseWant());
  }
  EXPECT_TRUE(Sb().flags & image::kFlagCorrupt);

  {
    // Reopened: read-only with the message, reads work, the C ABI says
    // -EUCLEAN.
    auto img = Image::Open(path_);
    ASSERT_TRUE(img.ok()) << img.status().ToString();
    EXPECT_TRUE(img->read_only());
    EXPECT_TRUE(img->Info()->corrupt);
    Status st = img->Write(8 * kBlock, Fill(9, 1).data(), kBlock);
    EXPECT_EQ(st.kind(), ErrorKind::kCorruption);
    EXPECT_TRUE(Has(st.message(), "flagged corrupt")) << st.message();
    EXPECT_TRUE(Has(st.message(), "daxstore image check --repair=all"));
    std::vector<uint8_t> got(4 * kBlock);
    ASSERT_TRUE(img->Read(0, got.data(), got.size()).ok());
    EXPECT_EQ(got, BaseWant());
  }
  {
    daxstore_image* c = nullptr;
    ASSERT_EQ(daxstore_image_open(path_.c_str(), "base", 0, &c), 0)
        << daxstore_last_error();
    auto block = Fill(9, 1);
    EXPECT_EQ(daxstore_image_pwrite(c, block.data(), kBlock, 0), -EUCLEAN);
    EXPECT_TRUE(Has(daxstore_last_error(), "--repair=all"))
        << daxstore_last_error();
    std::vector<uint8_t> got(kBlock);
    EXPECT_EQ(daxstore_image_pread(c, got.data(), kBlock, 0),
              static_cast<ssize_t>(kBlock));
    EXPECT_EQ(got, Fill(1, 1));
    daxstore_image_close(c);
  }

  CliRun r = Cli("image info " + path_);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["corrupt"], true);
  r = Cli("image check " + path_);
  EXPECT_EQ(r.rc, 2) << r.out << r.err;
  EXPECT_EQ(json::parse(r.out)["corrupt_flag"], true);
  EXPECT_TRUE(Has(r.err, "flagged corrupt")) << r.err;
  // --repair=leaks cannot raise the refcount: the flag stays.
  r = Cli("image check --repair=leaks " + path_);
  EXPECT_EQ(r.rc, 2) << r.out << r.err;
  EXPECT_TRUE(Sb().flags & image::kFlagCorrupt);
  r = Cli("image check --repair=all " + path_);
  EXPECT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_TRUE(Has(r.out, "cleared the corrupt flag")) << r.out;
  EXPECT_FALSE(Sb().flags & image::kFlagCorrupt);
  r = Cli("image check " + path_);
  EXPECT_EQ(r.rc, 0) << r.out << r.err;

  auto img = Image::Open(path_);
  ASSERT_TRUE(img.ok());
  EXPECT_FALSE(img->read_only());
  ASSERT_TRUE(img->Write(0, Fill(9, 1).data(), kBlock).ok());
  auto snap = img->OpenVolume("snap");
  std::vector<uint8_t> got(4 * kBlock);
  ASSERT_TRUE(snap->Read(0, got.data(), got.size()).ok());
  EXPECT_EQ(got, Fill(1, 4));
  EXPECT_TRUE(img->Check()->clean());
}

// A refcount damaged to 0 on a block only the snapshot maps: no write
// takes the block; the first write fails with kCorruption and the snapshot
// keeps its bytes.
TEST_F(ImageIntegrityTest, FreeButMappedBlockIsNeverHandedOut) {
  image::Superblock sb = Sb();
  uint64_t entry = 0;
  // Snap's block 2: base rewrote it, so snap alone holds it (ref 1).
  Pread(&entry, sizeof entry, sb.map_offset + sb.map_slot_bytes + 2 * 8);
  ASSERT_TRUE(image::EntryPresent(entry));
  const uint32_t zero = 0;
  Pwrite(&zero, sizeof zero, sb.ref_offset + 4 * image::EntryPba(entry));

  auto img = Image::Open(path_);
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  Status st;
  // Enough new blocks that the free list would reach the damaged one.
  for (uint64_t lba = 8; lba < 40 && st.ok(); lba++) {
    st = img->Write(lba * kBlock, Fill(7, 1).data(), kBlock);
  }
  EXPECT_EQ(st.kind(), ErrorKind::kCorruption) << st.ToString();
  EXPECT_TRUE(Has(st.message(), "but its refcount is 0")) << st.message();
  EXPECT_TRUE(img->corrupt());
  auto snap = img->OpenVolume("snap");
  ASSERT_TRUE(snap.ok());
  std::vector<uint8_t> got(4 * kBlock);
  ASSERT_TRUE(snap->Read(0, got.data(), got.size()).ok());
  EXPECT_EQ(got, Fill(1, 4));
  auto rep = img->Check(CheckRepair::kAll);
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->corrupt_flag_cleared);
  EXPECT_TRUE(img->Check()->clean());
  ASSERT_TRUE(img->Write(8 * kBlock, Fill(7, 1).data(), kBlock).ok());
  ASSERT_TRUE(snap->Read(0, got.data(), got.size()).ok());
  EXPECT_EQ(got, Fill(1, 4));
}

// A snapshot's map entry damaged to name a block base holds at another
// virtual block (the refcount says 1, two entries name it): rewriting
// base's block must not free it, so the write fails and the snapshot
// still reads that block's bytes.
TEST_F(ImageIntegrityTest, BlockSharedAcrossVirtualBlocksIsNotFreed) {
  image::Superblock sb = Sb();
  uint64_t entry = 0;
  Pread(&entry, sizeof entry, sb.map_offset + 2 * 8);  // base block 2
  ASSERT_TRUE(image::EntryPresent(entry));
  Pwrite(&entry, sizeof entry, sb.map_offset + sb.map_slot_bytes + 9 * 8);

  auto img = Image::Open(path_);
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  auto snap = img->OpenVolume("snap");
  ASSERT_TRUE(snap.ok());
  std::vector<uint8_t> before(16 * kBlock), after(16 * kBlock);
  ASSERT_TRUE(snap->Read(0, before.data(), before.size()).ok());
  EXPECT_EQ(before[9 * kBlock], 2);
  Status st = img->Write(2 * kBlock, Fill(5, 1).data(), kBlock);
  EXPECT_EQ(st.kind(), ErrorKind::kCorruption) << st.ToString();
  for (uint64_t lba = 16; lba < 24; lba++) {
    (void)img->Write(lba * kBlock, Fill(6, 1).data(), kBlock);
  }
  ASSERT_TRUE(snap->Read(0, after.data(), after.size()).ok());
  EXPECT_EQ(after, before);
  EXPECT_TRUE(img->corrupt());
  EXPECT_TRUE(img->Check()->corrupt());
}

// A server over an image flagged corrupt offers its NBD exports read-only
// and says so in query-image; a damaged volume is no NBD export.
TEST_F(ImageIntegrityTest, ServerOffersAFlaggedImageReadOnly) {
  image::Superblock sb = Sb();
  uint64_t entry = 0;
  Pread(&entry, sizeof entry, sb.map_offset);
  const uint32_t one = 1;  // base and snap share the block: 2
  Pwrite(&one, sizeof one, sb.ref_offset + 4 * image::EntryPba(entry));
  {
    auto img = Image::Open(path_);
    ASSERT_TRUE(img.ok());
    EXPECT_EQ(img->Write(0, Fill(4, 1).data(), kBlock).kind(),
              ErrorKind::kCorruption);
  }
  image::VolumeEntry e = Entry(1);
  e.flags ^= 1u << 9;  // not re-sealed
  PutEntry(1, e);

  ImageServerOptions o;
  o.disk.target = path_;
  o.nbd = true;
  auto server = ImageServer::Open(o);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  EXPECT_EQ((*server)->NbdExports(), std::vector<std::string>{"base"});
  auto h = (*server)->OpenNbdExport("", false);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_TRUE((*h)->read_only());
  EXPECT_EQ((*h)->Write(0, Fill(4, 1).data(), kBlock).kind(),
            ErrorKind::kCorruption);
  std::vector<uint8_t> got(4 * kBlock);
  ASSERT_TRUE((*h)->Read(0, got.data(), got.size()).ok());
  EXPECT_EQ(got, BaseWant());
  json info = json::parse((*server)->Handle(R"({"execute":"query-image"})"));
  EXPECT_EQ(info["return"]["corrupt"], true) << info.dump();
  EXPECT_EQ(info["return"]["damaged_volumes"], 1) << info.dump();
  const std::vector<std::string> warn = (*server)->Warnings();
  ASSERT_EQ(warn.size(), 2u);
  EXPECT_TRUE(Has(warn[0], "flagged corrupt")) << warn[0];
  EXPECT_TRUE(Has(warn[0], "check --repair=all")) << warn[0];
  EXPECT_TRUE(Has(warn[1], "1 damaged volume table entry")) << warn[1];
  h->reset();
  server->reset();

  // The CLI server says so before it serves.
  const std::string sock = dir_ / "vhost.sock";
  CliRun r = Sh("XDG_RUNTIME_DIR=" + dir_.path() + " timeout -s INT 2 " +
                DAXSTORE_CLI + " serve vhost-user-blk " + path_ +
                " --socket " + sock);
  EXPECT_TRUE(Has(r.err, "daxstore: warning: " + path_ +
                             " is flagged corrupt"))
      << r.err;
  EXPECT_TRUE(Has(r.err, "daxstore: serving")) << r.err;
}

}  // namespace
}  // namespace daxstore
