// Live snapshots while writers run: each snapshot is a state that existed
// (every write acknowledged before the request, none started after the
// reply), shown with per-block sequence stamps; and exports added and
// removed while NBD handles do I/O.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "daxstore/image_server.h"
#include "testing/temp_dir.h"

namespace daxstore {
namespace {

using nlohmann::json;

constexpr uint64_t kBs = 4096;
constexpr uint64_t kBlocksPerWriter = 16;
constexpr int kWriters = 2;

// Writer w writes stamps 1, 2, 3... in order, stamp n to its block
// (n - 1) % kBlocksPerWriter, each block holding (w, n) in its first bytes.
struct Stamp {
  uint64_t writer;
  uint64_t seq;
};

uint64_t BlockOf(int w, uint64_t seq) {
  return w * kBlocksPerWriter + (seq - 1) % kBlocksPerWriter;
}

class Writer {
 public:
  Writer(int w, std::unique_ptr<Image> img) : w_(w), img_(std::move(img)) {}
  void Run(const std::atomic<bool>& stop) {
    std::vector<uint8_t> block(kBs);
    for (uint64_t seq = 1; !stop.load(); seq++) {
      started_.store(seq);
      Stamp st{static_cast<uint64_t>(w_), seq};
      std::memcpy(block.data(), &st, sizeof st);
      ASSERT_TRUE(img_->Write(BlockOf(w_, seq) * kBs, block.data(), kBs).ok());
      acked_.store(seq);
    }
  }
  uint64_t acked() const { return acked_.load(); }
  uint64_t started() const { return started_.load(); }

 private:
  int w_;
  std::unique_ptr<Image> img_;
  std::atomic<uint64_t> started_{0}, acked_{0};
};

// The highest stamp of writer w in `snap`, after checking the blocks hold
// exactly what the writes up to it left.
uint64_t Latest(Image& snap, int w) {
  std::vector<uint8_t> block(kBs);
  uint64_t latest = 0;
  std::vector<uint64_t> seen(kBlocksPerWriter);
  for (uint64_t b = 0; b < kBlocksPerWriter; b++) {
    EXPECT_TRUE(
        snap.Read((w * kBlocksPerWriter + b) * kBs, block.data(), kBs).ok());
    Stamp st;
    std::memcpy(&st, block.data(), sizeof st);
    if (st.seq == 0) continue;  // never written
    EXPECT_EQ(st.writer, static_cast<uint64_t>(w));
    seen[b] = st.seq;
    latest = std::max(latest, st.seq);
  }
  // Writes go in order: the blocks hold the last kBlocksPerWriter stamps
  // up to `latest`, each in its own block.
  for (uint64_t b = 0; b < kBlocksPerWriter; b++) {
    uint64_t expect = 0;
    for (uint64_t s = latest; s >= 1 && s + kBlocksPerWriter > latest; s--) {
      if (BlockOf(w, s) == w * kBlocksPerWriter + b) expect = s;
    }
    EXPECT_EQ(seen[b], expect) << "block " << b << " of writer " << w;
  }
  return latest;
}

TEST(ImageServerConcurrent, LiveSnapshotsHoldExactlyTheAcknowledgedWrites) {
  testing::TempDir dir;
  ImageOptions o;
  o.virtual_size = kWriters * kBlocksPerWriter * kBs;
  o.lanes = 4;
  o.max_volumes = 8;
  MapOptions mo;
  mo.emulate = PersistenceDomain::kMemoryController;
  ASSERT_TRUE(Image::Create(dir / "vm.img", o, mo).ok());
  ImageServerOptions so;
  so.disk.target = dir / "vm.img";
  so.disk.emulate = PersistenceDomain::kMemoryController;
  so.nbd = true;
  auto server = ImageServer::Open(so);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  ImageServer& s = **server;

  std::vector<std::unique_ptr<Writer>> writers;
  for (int w = 0; w < kWriters; w++) {
    auto h = s.OpenNbdExport("", false);
    ASSERT_TRUE(h.ok());
    writers.push_back(std::make_unique<Writer>(w, std::move(h).value()));
  }
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (auto& w : writers) {
    threads.emplace_back([&w, &stop] { w->Run(stop); });
  }
  for (int i = 0; i < 6; i++) {
    while (writers[0]->acked() < static_cast<uint64_t>(20 * (i + 1))) {
      std::this_thread::yield();
    }
    std::vector<uint64_t> before, after;
    for (auto& w : writers) before.push_back(w->acked());
    const std::string name = "s" + std::to_string(i);
    json r = json::parse(s.Handle(
        json{{"execute", "snapshot"}, {"arguments", {{"name", name}}}}.dump()));
    for (auto& w : writers) after.push_back(w->started());
    ASSERT_TRUE(r.contains("return")) << r;
    auto snap = s.OpenNbdExport(name, true);
    ASSERT_TRUE(snap.ok());
    for (int w = 0; w < kWriters; w++) {
      uint64_t latest = Latest(**snap, w);
      EXPECT_GE(latest, before[w]) << "snapshot " << name << " lost a write";
      EXPECT_LE(latest, after[w])
          << "snapshot " << name << " holds a write started after the reply";
    }
    (void)s.Handle(
        json{{"execute", "delete"}, {"arguments", {{"name", name}}}}.dump());
  }
  stop = true;
  for (auto& t : threads) t.join();
}

TEST(ImageServerConcurrent, ExportsComeAndGoWhileVolumesAreWritten) {
  testing::TempDir dir;
  ImageOptions o;
  o.virtual_size = 32 * kBs;
  o.lanes = 4;
  o.max_volumes = 4;
  MapOptions mo;
  mo.emulate = PersistenceDomain::kMemoryController;
  {
    auto img = Image::Create(dir / "vm.img", o, mo);
    ASSERT_TRUE(img.ok());
    ASSERT_TRUE(img->Snapshot("gold").ok());
    ASSERT_TRUE(img->Clone("gold", "vm1").ok());
  }
  ImageServerOptions so;
  so.disk.target = dir / "vm.img";
  so.disk.emulate = PersistenceDomain::kMemoryController;
  so.nbd = true;
  auto server = ImageServer::Open(so);
  ASSERT_TRUE(server.ok());
  ImageServer& s = **server;
  ASSERT_TRUE(s.Start().ok());
  std::atomic<bool> stop{false};
  std::thread io([&] {
    auto h = s.OpenNbdExport("vm1", false);
    ASSERT_TRUE(h.ok());
    std::vector<uint8_t> block(kBs, 0x5a);
    for (uint64_t i = 0; !stop.load(); i++) {
      ASSERT_TRUE((*h)->Write((i % 32) * kBs, block.data(), kBs).ok());
    }
  });
  const std::string sock = dir / "base.sock";
  for (int i = 0; i < 20; i++) {
    json add = json::parse(s.Handle(json{
        {"execute", "export-add"},
        {"arguments",
         {{"type", "vhost-user-blk"}, {"volume", "base"}, {"socket", sock}}}}
                                        .dump()));
    ASSERT_TRUE(add.contains("return")) << add;
    (void)s.NbdExports();
    json rm = json::parse(s.Handle(
        json{{"execute", "export-remove"},
             {"arguments", {{"type", "vhost-user-blk"}, {"volume", "base"}}}}
            .dump()));
    ASSERT_TRUE(rm.contains("return")) << rm;
  }
  stop = true;
  io.join();
}

}  // namespace
}  // namespace daxstore
