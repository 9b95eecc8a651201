// vhost-user-blk round trips through the test front end, checked against
// an in-memory model of the disk; config, features, read-only, reconnect.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "platform/os_platform.h"
#include "unit/vhost_fixture.h"

namespace daxstore::testing {
namespace {

using Bytes = std::vector<uint8_t>;

TEST_F(VhostTest, SocketIsOwnerOnly) {
  Serve();
  struct stat st;
  ASSERT_EQ(stat((dir_ / "vhost.sock").c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(VhostTest, RefusesAPathThatIsNotASocket) {
  WriteText(dir_ / "vhost.sock", "data");
  ImageOptions io;
  io.virtual_size = 1 << 20;
  auto img = Image::Create(dir_ / "d.img", io);
  ASSERT_TRUE(img.ok());
  VhostBlkOptions o;
  o.socket_path = dir_ / "vhost.sock";
  auto s = VhostBlkServer::Create(&*img, o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("not a socket"), std::string::npos);
}

// Runs the CLI; returns its exit status and combined output.
int RunCli(const std::string& args, std::string* out) {
  std::string cmd = std::string(DAXSTORE_CLI) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  char buf[512];
  while (p != nullptr && fgets(buf, sizeof(buf), p) != nullptr) *out += buf;
  int rc = p != nullptr ? pclose(p) : -1;
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

TEST_F(VhostTest, CliRejectsBadInputWithOneLine) {
  Serve();  // creates disk.img
  std::string out;
  EXPECT_EQ(RunCli("serve vhost-user-blk " + (dir_ / "missing.img") +
                       " --socket " + (dir_ / "a.sock"),
                   &out),
            1);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_EQ(out.rfind("daxstore: ", 0), 0u) << out;
  out.clear();
  EXPECT_EQ(RunCli("serve vhost-user-blk " + (dir_ / "disk.img") +
                       " --queues 0 --socket " + (dir_ / "b.sock"),
                   &out),
            1);
  EXPECT_NE(out.find("--queues must be 1 to 64"), std::string::npos) << out;
  // The live server's socket is not taken over (another image: disk.img
  // itself is locked by the running server).
  {
    ImageOptions o;
    o.virtual_size = 1 << 20;
    ASSERT_TRUE(Image::Create(dir_ / "other.img", o).ok());
  }
  out.clear();
  EXPECT_EQ(RunCli("serve vhost-user-blk " + (dir_ / "other.img") +
                       " --read-only --socket " + (dir_ / "vhost.sock"),
                   &out),
            1);
  EXPECT_NE(out.find("another server is listening"), std::string::npos) << out;
}

TEST_F(VhostTest, ConfigAndFeatures) {
  VhostBlkOptions o;
  o.queues = 3;
  Serve(o);
  auto f = Attach({.queues = 3});
  ASSERT_TRUE(f);
  EXPECT_EQ(f->config().capacity, kSize / 512);
  EXPECT_EQ(f->config().blk_size, 512u);
  EXPECT_EQ(f->config().num_queues, 3);
  EXPECT_GT(f->config().seg_max, 0u);
  EXPECT_GT(f->config().max_discard_sectors, 0u);
  EXPECT_GT(f->config().max_write_zeroes_sectors, 0u);
  for (int bit :
       {VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_WRITE_ZEROES,
        VIRTIO_BLK_F_MQ, VIRTIO_BLK_F_BLK_SIZE, VIRTIO_BLK_F_SEG_MAX})
    EXPECT_TRUE(f->features() & (1ull << bit)) << bit;
  EXPECT_FALSE(f->features() & (1ull << VIRTIO_BLK_F_RO));
}

void ModelRun(VhostFrontend& f, Image& image, uint32_t q, uint64_t seed) {
  const uint64_t sectors = VhostTest::kSize / 512;
  Bytes model(VhostTest::kSize, 0);
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 300; ++i) {
    uint64_t n = 1 + rng() % 64;  // sectors, up to 32 KiB
    uint64_t s = rng() % (sectors - n);
    int op = static_cast<int>(rng() % 10);
    if (op < 4) {
      Bytes buf(n * 512);
      for (auto& b : buf) b = static_cast<uint8_t>(rng() % 3 ? rng() : 0);
      auto st = f.Request(q, VIRTIO_BLK_T_OUT, s, buf, {});
      ASSERT_TRUE(st.ok()) << st.status().ToString();
      ASSERT_EQ(*st, VIRTIO_BLK_S_OK);
      std::memcpy(model.data() + s * 512, buf.data(), buf.size());
    } else if (op < 8) {
      Bytes buf(n * 512, 0xaa);
      auto st = f.Request(q, VIRTIO_BLK_T_IN, s, {}, buf);
      ASSERT_TRUE(st.ok()) << st.status().ToString();
      ASSERT_EQ(*st, VIRTIO_BLK_S_OK);
      ASSERT_EQ(0, std::memcmp(buf.data(), model.data() + s * 512, buf.size()))
          << "read at sector " << s << " differs";
    } else {
      uint32_t type =
          op == 8 ? VIRTIO_BLK_T_DISCARD : VIRTIO_BLK_T_WRITE_ZEROES;
      virtio_blk_discard_write_zeroes seg{s, static_cast<uint32_t>(n),
                                          op == 9 ? 1u : 0u};
      auto st = f.Request(q, type, 0,
                          {reinterpret_cast<uint8_t*>(&seg), sizeof(seg)}, {});
      ASSERT_TRUE(st.ok());
      ASSERT_EQ(*st, VIRTIO_BLK_S_OK);
      std::memset(model.data() + s * 512, 0, n * 512);
    }
  }
  auto st = f.Request(q, VIRTIO_BLK_T_FLUSH, 0, {}, {});
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(*st, VIRTIO_BLK_S_OK);
  // The image itself holds what the guest wrote.
  Bytes all(VhostTest::kSize);
  ASSERT_TRUE(image.Read(0, all.data(), all.size()).ok());
  EXPECT_TRUE(all == model);
}

TEST_F(VhostTest, RandomIoMatchesModel) {
  Serve();
  auto f = Attach();
  ASSERT_TRUE(f);
  ModelRun(*f, *image_, 0, 1);
}

TEST_F(VhostTest, RegionWithMmapOffset) {
  Serve();
  auto f = Attach({.mmap_offset = 1 << 20});
  ASSERT_TRUE(f);
  ModelRun(*f, *image_, 0, 2);
}

TEST_F(VhostTest, GetIdAndUnsupported) {
  Serve();
  auto f = Attach();
  ASSERT_TRUE(f);
  Bytes id(VIRTIO_BLK_ID_BYTES, 0xff);
  auto st = f->Request(0, VIRTIO_BLK_T_GET_ID, 0, {}, id);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(*st, VIRTIO_BLK_S_OK);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(id.data())), "daxstore-test");
  st = f->Request(0, 99, 0, {}, {});
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(*st, VIRTIO_BLK_S_UNSUPP);
}

TEST_F(VhostTest, OutOfRangeAndMisalignedRequestsFail) {
  Serve();
  auto f = Attach();
  ASSERT_TRUE(f);
  Bytes buf(4096);
  const uint64_t last = kSize / 512;
  EXPECT_EQ(*f->Request(0, VIRTIO_BLK_T_IN, last - 4, {}, buf),
            VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(*f->Request(0, VIRTIO_BLK_T_OUT, ~0ull / 256, buf, {}),
            VIRTIO_BLK_S_IOERR);
  Bytes odd(100);
  EXPECT_EQ(*f->Request(0, VIRTIO_BLK_T_OUT, 0, odd, {}), VIRTIO_BLK_S_IOERR);
  virtio_blk_discard_write_zeroes seg{last - 1, 8, 0};
  EXPECT_EQ(*f->Request(0, VIRTIO_BLK_T_DISCARD, 0,
                        {reinterpret_cast<uint8_t*>(&seg), sizeof(seg)}, {}),
            VIRTIO_BLK_S_IOERR);
  seg = {0, 8, 1};  // UNMAP is only for WRITE_ZEROES
  EXPECT_EQ(*f->Request(0, VIRTIO_BLK_T_DISCARD, 0,
                        {reinterpret_cast<uint8_t*>(&seg), sizeof(seg)}, {}),
            VIRTIO_BLK_S_UNSUPP);
  EXPECT_EQ(*f->Request(0, VIRTIO_BLK_T_IN, last - 8, {}, buf),
            VIRTIO_BLK_S_OK);
}

TEST_F(VhostTest, ReadOnlyRejectsWrites) {
  VhostBlkOptions o;
  o.read_only = true;
  Serve(o);
  auto f = Attach();
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->features() & (1ull << VIRTIO_BLK_F_RO));
  Bytes buf(4096, 7);
  EXPECT_EQ(*f->Request(0, VIRTIO_BLK_T_OUT, 0, buf, {}), VIRTIO_BLK_S_IOERR);
  virtio_blk_discard_write_zeroes seg{0, 8, 0};
  EXPECT_EQ(*f->Request(0, VIRTIO_BLK_T_WRITE_ZEROES, 0,
                        {reinterpret_cast<uint8_t*>(&seg), sizeof(seg)}, {}),
            VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(*f->Request(0, VIRTIO_BLK_T_IN, 0, {}, buf), VIRTIO_BLK_S_OK);
  EXPECT_EQ(buf, Bytes(4096, 0));
}

TEST_F(VhostTest, ReconnectKeepsTheImage) {
  Serve();
  Bytes data(8192);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i);
  {
    auto f = Attach();
    ASSERT_TRUE(f);
    EXPECT_EQ(*f->Request(0, VIRTIO_BLK_T_OUT, 64, data, {}), VIRTIO_BLK_S_OK);
  }  // the VMM goes away without a word
  auto g = Attach();
  ASSERT_TRUE(g);
  Bytes back(8192);
  EXPECT_EQ(*g->Request(0, VIRTIO_BLK_T_IN, 64, {}, back), VIRTIO_BLK_S_OK);
  EXPECT_EQ(back, data);
  EXPECT_EQ(server_->connections(), 2u);
}

TEST_F(VhostTest, BatchOfRequestsOnOneKick) {
  Serve();
  auto f = Attach();
  ASSERT_TRUE(f);
  std::vector<Bytes> bufs(16, Bytes(4096));
  std::vector<VhostFrontend::Req> reqs(16);
  for (size_t i = 0; i < reqs.size(); ++i) {
    std::fill(bufs[i].begin(), bufs[i].end(), static_cast<uint8_t>(i + 1));
    reqs[i] = {VIRTIO_BLK_T_OUT, i * 8, bufs[i], {}};
  }
  ASSERT_TRUE(f->Run(0, reqs).ok());
  for (auto& r : reqs) EXPECT_EQ(r.status, VIRTIO_BLK_S_OK);
  std::vector<Bytes> back(16, Bytes(4096));
  for (size_t i = 0; i < reqs.size(); ++i)
    reqs[i] = {VIRTIO_BLK_T_IN, i * 8, {}, back[i]};
  ASSERT_TRUE(f->Run(0, reqs).ok());
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(reqs[i].status, VIRTIO_BLK_S_OK);
    EXPECT_EQ(reqs[i].used_len, 4096u + 1);
    EXPECT_EQ(back[i], bufs[i]);
  }
}

// The real OS, counting the guest-memory maps the server asks for; can
// refuse them.
class CountingPlatform : public OsPlatform {
 public:
  CountingPlatform() : OsPlatform("/sys") {}
  Result<void*> Map(void* addr, size_t len, int prot, int flags, int fd,
                    uint64_t off) override {
    if (refuse_maps) return NoSpace("injected: no address space", ENOMEM);
    maps.fetch_add(1);
    return OsPlatform::Map(addr, len, prot, flags, fd, off);
  }
  Status Unmap(void* addr, size_t len) override {
    unmaps.fetch_add(1);
    return OsPlatform::Unmap(addr, len);
  }
  std::atomic<int> maps{0}, unmaps{0};
  std::atomic<bool> refuse_maps{false};
};

TEST_F(VhostTest, GuestMemoryGoesThroughThePlatform) {
  auto os = std::make_shared<CountingPlatform>();
  VhostBlkOptions o;
  o.platform = os;
  Serve(o);
  Bytes data(4096, 0x5a);
  {
    auto f = Attach();
    ASSERT_TRUE(f);
    EXPECT_EQ(*f->Request(0, VIRTIO_BLK_T_OUT, 8, data, {}), VIRTIO_BLK_S_OK);
  }
  const int first = os->maps.load();
  EXPECT_GE(first, 1);
  // The first one's session ends once it sees its connection closed, and
  // unmaps everything it mapped.
  auto g = Attach();
  ASSERT_TRUE(g);
  for (int i = 0; i < 500 && os->unmaps.load() != first; ++i) usleep(10000);
  EXPECT_EQ(os->unmaps.load(), first);
  g.reset();
  // A memory table the OS cannot map drops that connection; the image and
  // the server carry on.
  os->refuse_maps = true;
  auto h = Connect();
  ASSERT_TRUE(h);
  EXPECT_FALSE(h->Setup().ok());
  EXPECT_TRUE(h->Closed(2000));
  h.reset();
  os->refuse_maps = false;
  auto k = Attach();
  ASSERT_TRUE(k);
  Bytes back(4096);
  EXPECT_EQ(*k->Request(0, VIRTIO_BLK_T_IN, 8, {}, back), VIRTIO_BLK_S_OK);
  EXPECT_EQ(back, data);
  EXPECT_EQ(server_->connections(), 4u);
}

}  // namespace
}  // namespace daxstore::testing
