// daxstore serve vhost-user-blk: serves an image to a VMM over vhost-user.
#include <cstdio>

#include "commands.h"
#include "daxstore/image.h"
#include "daxstore/platform.h"
#include "daxstore/vhost_blk.h"

namespace daxstore::cli {
namespace {

struct VhostArgs {
  std::string image;
  VhostBlkOptions options;
};

VhostBlkServer* g_server = nullptr;

void OnSignal(int) {
  if (g_server != nullptr) g_server->Stop();
}

void Serve(const VhostArgs& a) {
  // Option errors first, before the image is opened (and locked).
  if (a.options.queues < 1 || a.options.queues > 64) {
    Must(InvalidArgument("--queues must be 1 to 64, not " +
                         std::to_string(a.options.queues)));
  }
  MapOptions mo;
  if (a.options.read_only) mo.access = Access::kReadOnly;
  Image image = Must(Image::Open(a.image, mo));
  auto server = Must(VhostBlkServer::Create(&image, a.options));
  g_server = server.get();
  Must(DefaultPlatform()->OnStopSignals(OnSignal));
  std::fprintf(stderr, "daxstore: serving %s on %s (%u queue(s)%s)\n",
               a.image.c_str(), a.options.socket_path.c_str(), a.options.queues,
               a.options.read_only ? ", read-only" : "");
  Status st = server->Run();
  g_server = nullptr;
  Must(st);
}

}  // namespace

void AddServeVhostCommands(CLI::App& app) {
  auto noun =
      app.get_subcommands([](CLI::App* c) { return c->get_name() == "serve"; });
  CLI::App* serve = noun.empty()
                        ? app.add_subcommand("serve", "serve an image to a VMM")
                        : noun.front();
  serve->require_subcommand(1);
  auto a = std::make_shared<VhostArgs>();
  auto* c = serve->add_subcommand(
      "vhost-user-blk", "serve IMAGE as a vhost-user-blk device on a socket");
  c->add_option("image", a->image, "daxstore image")->required();
  c->add_option("--socket", a->options.socket_path,
                "unix socket to create (mode 0600)")
      ->required();
  c->add_option("--queues", a->options.queues, "virtqueues (1 to 64)")
      ->capture_default_str();
  c->add_flag("--read-only", a->options.read_only,
              "reject writes (VIRTIO_BLK_F_RO)");
  c->add_option("--serial", a->options.serial, "GET_ID serial, <= 20 bytes");
  c->add_option("--stall-after", a->options.stall.after,
                "restart tests: take request N and no more, as a crashed "
                "backend would (then kill -9 this process)")
      ->group("Testing");
  c->callback([a] { Serve(*a); });
}

}  // namespace daxstore::cli
