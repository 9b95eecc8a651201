// daxstore serve vhost-user-blk: serves volumes of an image (a file or a
// namespace) to VMMs over vhost-user, with the image's control socket, from
// this process (no NBD).
#include <cstdio>

#include "commands.h"
#include "daxstore/image.h"
#include "daxstore/image_server.h"
#include "daxstore/platform.h"
#include "daxstore/vhost_blk.h"
#include "image_target.h"

namespace daxstore::cli {
namespace {

struct VhostArgs {
  std::string image;
  std::string volume;
  std::string control;
  std::vector<std::string> more;  // VOLUME=SOCKET
  VhostBlkOptions options;
};

ImageServer* g_server = nullptr;
VhostBlkServer* g_single = nullptr;

void OnSignal(int) {
  if (g_server != nullptr) g_server->Stop();
  if (g_single != nullptr) g_single->Stop();
}

// Restart tests: one volume served directly, stalling as asked.
void ServeStalling(const CLI::App* cmd, const VhostArgs& a) {
  Image image = OpenImageToServe(cmd, a.image, a.volume, a.options.read_only);
  auto server = Must(VhostBlkServer::Create(&image, a.options));
  g_single = server.get();
  Must(DefaultPlatform()->OnStopSignals(OnSignal));
  std::fprintf(stderr, "daxstore: serving %s on %s (stalling)\n",
               a.image.c_str(), a.options.socket_path.c_str());
  Status st = server->Run();
  g_single = nullptr;
  Must(st);
}

void Serve(const CLI::App* cmd, const VhostArgs& a) {
  // Option errors first, before the image is opened (and locked).
  if (a.options.queues < 1 || a.options.queues > 64) {
    Must(InvalidArgument("--queues must be 1 to 64, not " +
                         std::to_string(a.options.queues)));
  }
  if (a.options.stall.after != 0) return ServeStalling(cmd, a);
  Platform& os = *DefaultPlatform();
  ImageTarget t = ResolveImageTarget(cmd, a.image, "");
  ImageServerOptions o;
  o.disk = SpecFor(cmd, a.image, "");
  o.read_only = a.options.read_only;
  o.control_socket = Must(os.AbsolutePath(
      a.control.empty()
          ? SocketDir(true, "--control") + "/" + TargetBaseName(t) + ".ctl"
          : a.control));
  ServedExport first;
  first.volume = a.volume;
  first.socket = a.options.socket_path;
  first.queues = a.options.queues;
  first.read_only = a.options.read_only;
  first.serial = a.options.serial;
  o.exports.push_back(first);
  for (const std::string& m : a.more) {
    size_t eq = m.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == m.size()) {
      throw Fail("--vhost-user-blk " + m +
                 ": use --vhost-user-blk VOLUME=SOCKET");
    }
    ServedExport e = first;
    e.volume = m.substr(0, eq);
    e.socket = m.substr(eq + 1);
    o.exports.push_back(e);
  }
  auto server = ImageServer::Open(o);
  if (!server.ok()) {
    // A namespace's message names it already.
    throw Failure{t.ns.empty()
                      ? server.status().WithContext("cannot serve " + a.image)
                      : server.status()};
  }
  for (const std::string& w : (*server)->Warnings()) {
    std::fprintf(stderr, "daxstore: warning: %s\n", w.c_str());
  }
  g_server = server->get();
  Must(os.OnStopSignals(OnSignal));
  Must((*server)->Start());
  std::string what = t.ns.empty() ? t.path : t.ns + " (" + t.path + ")";
  std::string socks;
  for (const ServedExport& e : o.exports) {
    socks += (socks.empty() ? "" : ", ") +
             (e.volume.empty() ? (*server)->default_volume() : e.volume) +
             " on " + e.socket;
  }
  std::fprintf(stderr, "daxstore: serving %s: %s (%u queue(s)%s); control %s\n",
               what.c_str(), socks.c_str(), a.options.queues,
               a.options.read_only ? ", read-only" : "",
               o.control_socket.c_str());
  Status st = (*server)->Run();
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
      "serve volumes of an image as vhost-user-blk devices on sockets");
  c->add_option("target", a->image,
                "the daxstore image: a file, or a namespace by device "
                "(namespace0.0, dax0.0, pmem0) or -n name")
      ->required();
  c->add_option("--socket", a->options.socket_path,
                "unix socket to create (mode 0600)")
      ->required();
  c->add_option("--volume", a->volume,
                "the volume to serve on --socket (default: the image's own "
                "disk; a snapshot is served read-only)");
  c->add_option("--vhost-user-blk", a->more,
                "also serve VOLUME on SOCKET: VOLUME=SOCKET (repeatable)");
  c->add_option("--control", a->control,
                "the image's control socket (default: NAME.ctl in "
                "$XDG_RUNTIME_DIR/daxstore or /tmp/daxstore-UID)");
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
