// daxstore serve vhost-user-blk: serves an image (a file or a namespace) to
// a VMM over vhost-user.
#include <cstdio>

#include "commands.h"
#include "daxstore/image.h"
#include "daxstore/platform.h"
#include "daxstore/vhost_blk.h"
#include "image_target.h"

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

void Serve(const CLI::App* cmd, const VhostArgs& a) {
  // Option errors first, before the image is opened (and locked).
  if (a.options.queues < 1 || a.options.queues > 64) {
    Must(InvalidArgument("--queues must be 1 to 64, not " +
                         std::to_string(a.options.queues)));
  }
  ImageTarget t = ResolveImageTarget(cmd, a.image, "");
  Image image = OpenImageToServe(t, a.image, a.options.read_only);
  auto server = Must(VhostBlkServer::Create(&image, a.options));
  g_server = server.get();
  Must(DefaultPlatform()->OnStopSignals(OnSignal));
  std::string what = t.ns.empty() ? t.path : t.ns + " (" + t.path + ")";
  std::fprintf(stderr, "daxstore: serving %s on %s (%u queue(s)%s)\n",
               what.c_str(), a.options.socket_path.c_str(), a.options.queues,
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
      "vhost-user-blk",
      "serve an image as a vhost-user-blk device on a socket");
  c->add_option("target", a->image,
                "the daxstore image: a file, or a namespace by device "
                "(namespace0.0, dax0.0, pmem0) or -n name")
      ->required();
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
  c->callback([c, a] { Serve(c, *a); });
}

}  // namespace daxstore::cli
