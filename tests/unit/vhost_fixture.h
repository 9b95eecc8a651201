// A daxstore image served by a VhostBlkServer on a thread, for the
// vhost-user-blk tests.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <thread>

#include "daxstore/image.h"
#include "daxstore/vhost_blk.h"
#include "testing/temp_dir.h"
#include "testing/vhost_frontend.h"

namespace daxstore::testing {

class VhostTest : public ::testing::Test {
 public:
  static constexpr uint64_t kSize = 8 << 20;

 protected:
  void Serve(VhostBlkOptions o = {}) {
    ImageOptions io;
    io.virtual_size = kSize;
    io.lanes = 8;
    // Declared pmem (flushes by cache line, no msync): the tests are about
    // the protocol, the image's own tests cover durability on files.
    MapOptions mo;
    mo.emulate = PersistenceDomain::kMemoryController;
    auto img = Image::Create(dir_ / "disk.img", io, mo);
    ASSERT_TRUE(img.ok()) << img.status().ToString();
    image_ = std::make_unique<Image>(std::move(img).value());
    StartServer(o);
  }

  // A server for image_ on the socket (after StopServer: a restarted
  // backend).
  void StartServer(VhostBlkOptions o = {}) {
    o.socket_path = dir_ / "vhost.sock";
    if (o.serial.empty()) o.serial = "daxstore-test";
    if (o.message_timeout_ms == 5000) o.message_timeout_ms = 300;
    auto s = VhostBlkServer::Create(image_.get(), o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s).value();
    thread_ = std::thread([this] { run_status_ = server_->Run(); });
  }

  std::unique_ptr<VhostFrontend> Attach(VhostFrontend::Options o = {}) {
    auto f = VhostFrontend::Connect(dir_ / "vhost.sock", o);
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    if (!f.ok()) return nullptr;
    Status st = (*f)->Setup();
    EXPECT_TRUE(st.ok()) << st.ToString();
    if (!st.ok()) return nullptr;
    return std::move(f).value();
  }

  std::unique_ptr<VhostFrontend> Connect(VhostFrontend::Options o = {}) {
    auto f = VhostFrontend::Connect(dir_ / "vhost.sock", o);
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    return f.ok() ? std::move(f).value() : nullptr;
  }

  // Ends the server as a crash would look to the front end: its
  // connection closes and nothing more is returned.
  void StopServer() {
    if (server_) {
      server_->Stop();
      thread_.join();
      EXPECT_TRUE(run_status_.ok()) << run_status_.ToString();
      server_.reset();
    }
  }

  void TearDown() override { StopServer(); }

  TempDir dir_;
  std::unique_ptr<Image> image_;
  std::unique_ptr<VhostBlkServer> server_;
  std::thread thread_;
  Status run_status_;
};

}  // namespace daxstore::testing
