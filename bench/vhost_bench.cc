// Per-request cost of vhost-user-blk backends, driven by the same host-side
// front end (no guest): daxstore's backend vs qemu-storage-daemon exporting
// a raw file on the same storage. 4 KiB random reads and writes, QD1 and a
// batch of 16 per kick ("QD16").
//
// Storage: $DAXSTORE_BENCH_DIR (default /dev/shm). There is no pmem here, so
// the daxstore image is a file there declared pmem (persistence by cache
// flush, as on real pmem); qemu-storage-daemon gets a raw file next to it
// with cache.direct=off (page cache, no flush per write).
#include <benchmark/benchmark.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "daxstore/image.h"
#include "daxstore/vhost_blk.h"
#include "testing/vhost_frontend.h"

namespace daxstore {
namespace {

using testing::VhostFrontend;
constexpr uint64_t kImage = 256 << 20;
constexpr uint64_t kHot = 64 << 20;  // random offsets fall in here (pre-filled)

std::string Dir() {
  static std::string dir = [] {
    const char* d = std::getenv("DAXSTORE_BENCH_DIR");
    std::string t = std::string(d ? d : "/dev/shm") + "/daxstore-vhost.XXXXXX";
    if (mkdtemp(t.data()) == nullptr) std::abort();
    return t;
  }();
  return dir;
}

bool WaitForSocket(const std::string& path) {
  struct stat st;
  for (int i = 0; i < 100; ++i) {
    if (stat(path.c_str(), &st) == 0) return true;
    usleep(50000);
  }
  return false;
}

void Prefill(VhostFrontend& f) {
  std::vector<uint8_t> buf(64 * 1024, 0x5a);
  for (uint64_t off = 0; off < kHot; off += buf.size())
    if (!f.Request(0, VIRTIO_BLK_T_OUT, off / 512, buf, {}).ok()) std::abort();
}

struct Backend {
  std::unique_ptr<VhostFrontend> f;
  // daxstore
  std::unique_ptr<Image> image;
  std::unique_ptr<VhostBlkServer> server;
  std::thread thread;
  // qemu-storage-daemon
  pid_t pid = -1;
};

Backend* Daxstore() {
  static Backend* b = [] {
    auto* b = new Backend();
    MapOptions mo;
    mo.emulate = PersistenceDomain::kMemoryController;
    ImageOptions io;
    io.virtual_size = kImage;
    auto img = Image::Create(Dir() + "/disk.dxs", io, mo);
    if (!img.ok()) std::abort();
    b->image = std::make_unique<Image>(std::move(img).value());
    VhostBlkOptions o;
    o.socket_path = Dir() + "/daxstore.sock";
    auto s = VhostBlkServer::Create(b->image.get(), o);
    if (!s.ok()) std::abort();
    b->server = std::move(s).value();
    b->thread = std::thread([b] { (void)b->server->Run(); });
    auto f = VhostFrontend::Connect(o.socket_path, {});
    if (!f.ok() || !(*f)->Setup().ok()) std::abort();
    b->f = std::move(f).value();
    Prefill(*b->f);
    return b;
  }();
  return b;
}

Backend* Qsd() {
  static Backend* b = [] {
    auto* b = new Backend();
    std::string raw = Dir() + "/disk.raw", sock = Dir() + "/qsd.sock";
    if (truncate(raw.c_str(), kImage) != 0) {
      FILE* f = std::fopen(raw.c_str(), "w");
      if (f == nullptr || ftruncate(fileno(f), kImage) != 0) std::abort();
      std::fclose(f);
    }
    b->pid = fork();
    if (b->pid == 0) {
      std::string file =
          "driver=file,node-name=f,filename=" + raw + ",cache.direct=off";
      std::string exp =
          "type=vhost-user-blk,id=e,node-name=r,addr.type=unix,addr.path=" +
          sock + ",writable=on";
      execlp("qemu-storage-daemon", "qemu-storage-daemon", "--blockdev",
             file.c_str(), "--blockdev", "driver=raw,node-name=r,file=f",
             "--export", exp.c_str(), nullptr);
      _exit(127);
    }
    if (!WaitForSocket(sock)) return b;
    auto f = VhostFrontend::Connect(sock, {});
    Status st = f.ok() ? (*f)->Setup() : f.status();
    if (!st.ok()) {
      std::fprintf(stderr, "qemu-storage-daemon: %s\n", st.ToString().c_str());
      return b;
    }
    b->f = std::move(f).value();
    Prefill(*b->f);
    return b;
  }();
  return b;
}

// range(0): 0 daxstore, 1 qemu-storage-daemon; range(1): 1 write, 0 read;
// range(2): requests per kick.
void BM_Vhost4K(benchmark::State& state) {
  Backend* b = state.range(0) == 0 ? Daxstore() : Qsd();
  if (!b->f) {
    state.SkipWithError("backend not available (qemu-storage-daemon?)");
    return;
  }
  const bool write = state.range(1) == 1;
  const size_t qd = static_cast<size_t>(state.range(2));
  std::vector<std::vector<uint8_t>> bufs(qd, std::vector<uint8_t>(4096, 7));
  std::vector<VhostFrontend::Req> reqs(qd);
  std::mt19937_64 rng(42);
  for (auto _ : state) {
    for (size_t i = 0; i < qd; ++i) {
      uint64_t sector = (rng() % (kHot / 4096)) * 8;
      reqs[i] = write
                    ? VhostFrontend::Req{VIRTIO_BLK_T_OUT, sector, bufs[i], {}}
                    : VhostFrontend::Req{VIRTIO_BLK_T_IN, sector, {}, bufs[i]};
    }
    if (!b->f->Run(0, reqs).ok()) {
      state.SkipWithError("request failed");
      return;
    }
    for (auto& r : reqs)
      if (r.status != VIRTIO_BLK_S_OK) state.SkipWithError("I/O error");
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * qd));
  state.SetLabel(std::string(state.range(0) == 0 ? "daxstore" : "qsd") +
                 (write ? " write" : " read") + " QD" + std::to_string(qd));
}
BENCHMARK(BM_Vhost4K)
    ->ArgNames({"backend", "write", "qd"})
    ->ArgsProduct({{0, 1}, {0, 1}, {1, 16}})
    ->UseRealTime();

}  // namespace
}  // namespace daxstore

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (daxstore::Qsd()->pid > 0) {
    kill(daxstore::Qsd()->pid, SIGTERM);
    waitpid(daxstore::Qsd()->pid, nullptr, 0);
  }
  std::string cmd = "rm -rf " + daxstore::Dir();
  return std::system(cmd.c_str()) == 0 ? 0 : 1;
}
