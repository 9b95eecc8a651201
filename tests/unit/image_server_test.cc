// One server per image: NBD exports by volume, the control channel's
// commands and its answers to hostile requests, exports added and removed
// while serving, the control socket's permissions.
#include "daxstore/image_server.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "testing/temp_dir.h"

namespace daxstore {
namespace {

using nlohmann::json;
using testing::TempDir;

constexpr uint64_t kBs = 4096;

class ImageServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_ / "vm.img";
    ImageOptions o;
    o.virtual_size = 64 * kBs;
    o.lanes = 4;
    o.max_volumes = 6;
    MapOptions mo;
    mo.emulate = PersistenceDomain::kMemoryController;
    auto img = Image::Create(path_, o, mo);
    ASSERT_TRUE(img.ok()) << img.status().ToString();
    std::vector<uint8_t> gold(8 * kBs, 0x60);
    ASSERT_TRUE(img->Write(0, gold.data(), gold.size()).ok());
    ASSERT_TRUE(img->Snapshot("golden").ok());
    ASSERT_TRUE(img->Clone("golden", "vm1").ok());
    ASSERT_TRUE(img->Clone("golden", "vm2").ok());
  }

  ImageServerOptions Options() {
    ImageServerOptions o;
    o.disk.target = path_;
    o.disk.emulate = PersistenceDomain::kMemoryController;
    o.nbd = true;
    return o;
  }

  std::unique_ptr<ImageServer> Serve(ImageServerOptions o) {
    auto s = ImageServer::Open(o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  // Handle() on a request; the reply parsed.
  static json Ask(ImageServer& s, const json& request) {
    return json::parse(s.Handle(request.dump()));
  }
  static json Ask(ImageServer& s, const std::string& raw) {
    return json::parse(s.Handle(raw));
  }

  TempDir dir_;
  std::string path_;
};

TEST_F(ImageServerTest, EveryVolumeIsAnExportAndClonesKeepTheirOwnWrites) {
  auto s = Serve(Options());
  ASSERT_NE(s, nullptr);
  std::vector<std::string> names = s->NbdExports();
  EXPECT_EQ(names, (std::vector<std::string>{"base", "golden", "vm1", "vm2"}));

  auto vm1 = s->OpenNbdExport("vm1", false);
  auto vm2 = s->OpenNbdExport("vm2", false);
  ASSERT_TRUE(vm1.ok() && vm2.ok());
  std::vector<uint8_t> mine(kBs, 0x11), buf(kBs);
  ASSERT_TRUE((*vm1)->Write(2 * kBs, mine.data(), kBs).ok());
  ASSERT_TRUE((*vm2)->Read(2 * kBs, buf.data(), kBs).ok());
  EXPECT_EQ(buf, std::vector<uint8_t>(kBs, 0x60)) << "vm2 sees vm1's write";
  ASSERT_TRUE((*vm1)->Read(3 * kBs, buf.data(), kBs).ok());
  EXPECT_EQ(buf, std::vector<uint8_t>(kBs, 0x60)) << "golden content lost";

  auto golden = s->OpenNbdExport("golden", false);
  ASSERT_TRUE(golden.ok());
  EXPECT_TRUE((*golden)->read_only());
  EXPECT_FALSE((*golden)->Write(0, mine.data(), kBs).ok());

  auto dflt = s->OpenNbdExport("", false);
  ASSERT_TRUE(dflt.ok());
  EXPECT_EQ((*dflt)->volume(), "base");
  auto none = s->OpenNbdExport("vm9", false);
  EXPECT_EQ(none.status().kind(), ErrorKind::kNotFound);
}

TEST_F(ImageServerTest, SnapshotCloneDeleteAndQueriesWhileServing) {
  auto s = Serve(Options());
  ASSERT_NE(s, nullptr);
  json r = Ask(*s, {{"execute", "snapshot"},
                    {"arguments", {{"volume", "vm1"}, {"name", "vm1-s1"}}},
                    {"id", 7}});
  ASSERT_TRUE(r.contains("return")) << r;
  EXPECT_EQ(r["id"], 7);
  r = Ask(*s, {{"execute", "clone"},
               {"arguments", {{"snapshot", "vm1-s1"}, {"name", "vm3"}}}});
  ASSERT_TRUE(r.contains("return")) << r;
  // A new volume is an NBD export at once.
  auto names = s->NbdExports();
  EXPECT_NE(std::find(names.begin(), names.end(), "vm3"), names.end());

  r = Ask(*s, {{"execute", "query-volumes"}});
  ASSERT_TRUE(r["return"].is_array()) << r;
  EXPECT_EQ(r["return"].size(), 6u);
  for (const auto& v : r["return"]) {
    if (v["name"] == "vm3") {
      EXPECT_EQ(v["parent"], "vm1-s1");
    }
    // The golden blocks are shared by every clone: none is unique.
    if (v["name"] == "vm2") {
      EXPECT_EQ(v["unique_blocks"], 0);
    }
  }
  r = Ask(*s, {{"execute", "query-image"}});
  EXPECT_EQ(r["return"]["volumes"], 6);
  EXPECT_EQ(r["return"]["max_volumes"], 6);

  // A volume with an open NBD connection cannot be deleted under it.
  {
    auto h = s->OpenNbdExport("vm3", false);
    ASSERT_TRUE(h.ok());
    r = Ask(*s, {{"execute", "delete"}, {"arguments", {{"name", "vm3"}}}});
    ASSERT_TRUE(r.contains("error")) << r;
    EXPECT_EQ(r["error"]["class"], "busy");
    EXPECT_EQ(r["error"]["errno"], EBUSY);
  }
  r = Ask(*s, {{"execute", "delete"}, {"arguments", {{"name", "vm3"}}}});
  ASSERT_TRUE(r.contains("return")) << r;
  r = Ask(*s, {{"execute", "delete"}, {"arguments", {{"name", "base"}}}});
  EXPECT_TRUE(r.contains("error")) << r;
}

TEST_F(ImageServerTest, HostileRequestsGetErrorsAndLeaveTheImageClean) {
  auto s = Serve(Options());
  ASSERT_NE(s, nullptr);
  const std::vector<std::string> bad = {
      "",
      "{",
      "[1,2]",
      "\"snapshot\"",
      R"({"execute": 5})",
      R"({"execute": "format-everything"})",
      R"({"execute": "snapshot"})",
      R"({"execute": "snapshot", "arguments": {"name": 5}})",
      R"({"execute": "snapshot", "arguments": [1]})",
      R"({"execute": "snapshot", "arguments": {"name": "../../etc"}})",
      R"({"execute": "snapshot", "arguments": {"name": "x", "volume": "nope"}})",
      R"({"execute": "clone", "arguments": {"snapshot": "vm1", "name": "c"}})",
      R"({"execute": "delete", "arguments": {"name": "nope"}})",
      R"({"execute": "export-add", "arguments": {"type": "9p", "volume": "vm1"}})",
      R"({"execute": "export-add", "arguments": {"type": "vhost-user-blk", "volume": "vm1", "queues": 0, "socket": "/x"}})",
      R"({"execute": "export-remove", "arguments": {"type": "vhost-user-blk", "volume": "vm1"}})",
      "{\"execute\": \"snapshot\", \"arguments\": {\"name\": \"\xff\xfe\"}}",
      R"({"execute": "snapshot", "arguments": {"name": ")" +
          std::string(1 << 20, 'a') + "\"}}",
  };
  for (const std::string& req : bad) {
    json r = Ask(*s, req);
    EXPECT_TRUE(r.contains("error")) << req.substr(0, 80) << " -> " << r;
    EXPECT_FALSE(r["error"]["desc"].get<std::string>().empty());
  }
  json r = Ask(*s, {{"execute", "query-volumes"}});
  EXPECT_EQ(r["return"].size(), 4u) << "a hostile request made a volume";
  s.reset();
  auto img = Image::Open(path_);
  ASSERT_TRUE(img.ok());
  auto check = img->Check();
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->clean());
}

TEST_F(ImageServerTest, VhostExportsComeAndGoAndProtectTheirVolume) {
  ImageServerOptions o = Options();
  ServedExport e;
  e.volume = "vm1";
  e.socket = dir_ / "vm1.sock";
  o.exports.push_back(e);
  o.control_socket = dir_ / "ctl";
  auto s = Serve(o);
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->Start().ok());
  auto os = DefaultPlatform();
  EXPECT_EQ(*os->ProbeUnixSocket(e.socket), SocketPath::kLive);

  json r = Ask(*s, {{"execute", "delete"}, {"arguments", {{"name", "vm1"}}}});
  ASSERT_TRUE(r.contains("error")) << r;
  EXPECT_NE(r["error"]["desc"].get<std::string>().find("export-remove"),
            std::string::npos);

  const std::string vm2 = dir_ / "vm2.sock";
  r = Ask(*s, {{"execute", "export-add"},
               {"arguments",
                {{"type", "vhost-user-blk"},
                 {"volume", "vm2"},
                 {"socket", vm2},
                 {"queues", 2}}}});
  ASSERT_TRUE(r.contains("return")) << r;
  EXPECT_EQ(*os->ProbeUnixSocket(vm2), SocketPath::kLive);
  // One socket per volume, one volume per socket.
  r = Ask(*s, {{"execute", "export-add"},
               {"arguments",
                {{"type", "vhost-user-blk"},
                 {"volume", "vm2"},
                 {"socket", dir_ / "other.sock"}}}});
  EXPECT_TRUE(r.contains("error")) << r;
  r = Ask(*s, {{"execute", "query-exports"}});
  int vhost = 0;
  for (const auto& x : r["return"]) vhost += x["type"] == "vhost-user-blk";
  EXPECT_EQ(vhost, 2) << r;

  r = Ask(*s, {{"execute", "export-remove"},
               {"arguments", {{"type", "vhost-user-blk"}, {"volume", "vm1"}}}});
  ASSERT_TRUE(r.contains("return")) << r;
  EXPECT_EQ(*os->ProbeUnixSocket(e.socket), SocketPath::kAbsent);
  r = Ask(*s, {{"execute", "delete"}, {"arguments", {{"name", "vm1"}}}});
  EXPECT_TRUE(r.contains("return")) << r;

  // NBD exports can be hidden and shown again.
  r = Ask(*s, {{"execute", "export-remove"},
               {"arguments", {{"type", "nbd"}, {"volume", "vm2"}}}});
  ASSERT_TRUE(r.contains("return")) << r;
  EXPECT_EQ(s->OpenNbdExport("vm2", true).status().kind(),
            ErrorKind::kNotFound);
  r = Ask(*s, {{"execute", "export-add"},
               {"arguments", {{"type", "nbd"}, {"volume", "vm2"}}}});
  EXPECT_TRUE(s->OpenNbdExport("vm2", true).ok());
  s.reset();
  EXPECT_EQ(*os->ProbeUnixSocket(vm2), SocketPath::kAbsent);
  EXPECT_EQ(*os->ProbeUnixSocket(o.control_socket), SocketPath::kAbsent);
}

TEST_F(ImageServerTest, ControlSocketAnswersItsOwnerAndRefusesOthers) {
  ImageServerOptions o = Options();
  o.control_socket = dir_ / "ctl";
  auto s = Serve(o);
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->Start().ok());
  struct stat st;
  ASSERT_EQ(::stat(o.control_socket.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto image = ControlImagePath(o.control_socket);
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  EXPECT_EQ(*image, path_);
  auto reply = ControlRequest(o.control_socket,
                              R"({"execute": "snapshot", "arguments": )"
                              R"({"volume": "vm2", "name": "live"}})");
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_TRUE(json::parse(*reply).contains("return")) << *reply;
  // A line longer than 64 KiB: an error, then the connection closes.
  reply = ControlRequest(o.control_socket, std::string(100 << 10, ' '));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_TRUE(json::parse(*reply).contains("error")) << *reply;
  // The server still answers.
  reply = ControlRequest(o.control_socket, R"({"execute": "query-image"})");
  ASSERT_TRUE(reply.ok());

  if (::geteuid() != 0) {
    GTEST_SKIP() << "refusing another user needs root to become one";
  }
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // As nobody: connecting to a 0600 socket of root's is refused.
    if (::setresgid(65534, 65534, 65534) != 0 ||
        ::setresuid(65534, 65534, 65534) != 0) {
      _exit(3);
    }
    auto r =
        ControlRequest(o.control_socket, R"({"execute": "query-image"})", 2000);
    _exit(!r.ok() && r.status().sys_errno() == EACCES ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "another user reached the socket";
}

TEST_F(ImageServerTest, OpenRefusesUnknownVolumesAndTakenSockets) {
  ImageServerOptions o = Options();
  ServedExport e;
  e.volume = "vm7";
  e.socket = dir_ / "vm7.sock";
  o.exports.push_back(e);
  EXPECT_EQ(ImageServer::Open(o).status().kind(), ErrorKind::kNotFound);
  o.exports[0].volume = "vm1";
  testing::WriteText(o.exports[0].socket, "not a socket");
  EXPECT_EQ(ImageServer::Open(o).status().kind(), ErrorKind::kBusy);
  // One image, one owner: a second server is refused.
  auto first = Serve(Options());
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(ImageServer::Open(Options()).status().kind(), ErrorKind::kBusy);
}

}  // namespace
}  // namespace daxstore
