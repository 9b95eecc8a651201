// daxstore serve nbd TARGET: exports an image (a file or a namespace) over
// NBD by running nbdkit with the daxstore plugin in the foreground (exec:
// signals reach nbdkit).
#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"
#include "daxstore/image.h"
#include "daxstore/image_server.h"
#include "daxstore/platform.h"
#include "image_target.h"

namespace daxstore::cli {
namespace {

struct ServeNbdArgs {
  std::string image;
  std::string socket;
  std::string tcp;
  std::string threads;  // empty: the plugin's default
  std::string volume;   // the default export
  std::string control;
  std::vector<std::string> vhost;  // VOLUME=SOCKET
  std::string tls_psk;             // nbdkit --tls-psk
  std::string tls_certificates;    // nbdkit --tls-certificates
  bool read_only = false;
};

// DAXSTORE_NBDKIT_PLUGIN, else the build tree's plugin, else the installed
// one, else the plugin's name (nbdkit then looks in its own plugin dir).
std::string PluginPath(Platform& os) {
  if (auto env = os.Environment("DAXSTORE_NBDKIT_PLUGIN")) return *env;
  for (const char* p : {DAXSTORE_BUILD_PLUGIN, DAXSTORE_INSTALLED_PLUGIN}) {
    if (*p != '\0' && os.Exists(p)) return p;
  }
  return "daxstore";
}

// Refuses a socket another server listens on; removes a stale one.
void ClaimSocket(Platform& os, const std::string& path) {
  SocketPath what = Must(os.ProbeUnixSocket(path));
  if (what == SocketPath::kNotSocket) {
    throw Fail(path + " exists and is not a socket; pick another --socket");
  }
  if (what == SocketPath::kLive) {
    throw Fail("socket " + path +
               " is in use by another server; stop it or pass --socket");
  }
  if (what == SocketPath::kStale) Must(os.Remove(path));
}

// --vhost-user-blk VOLUME=SOCKET, the socket made absolute.
ServedExport VhostExportOf(Platform& os, const std::string& arg) {
  size_t eq = arg.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == arg.size()) {
    throw Fail("--vhost-user-blk " + arg +
               ": use --vhost-user-blk VOLUME=SOCKET");
  }
  ServedExport e;
  e.kind = ServedExport::Kind::kVhostUserBlk;
  e.volume = arg.substr(0, eq);
  e.socket = Must(os.AbsolutePath(arg.substr(eq + 1)));
  if (e.socket.find(':') != std::string::npos) {
    throw Fail("--vhost-user-blk " + arg +
               ": the socket path may not contain ':'");
  }
  return e;
}

void ServeNbd(const CLI::App* cmd, const ServeNbdArgs& a) {
  if (!a.threads.empty() && a.threads != "serial" && a.threads != "parallel") {
    throw Fail("--threads " + a.threads +
               ": use --threads serial or --threads parallel");
  }
  std::shared_ptr<Platform> os = DefaultPlatform();
  auto nbdkit_path = os->FindProgram("nbdkit");
  if (!nbdkit_path.ok()) {
    throw Fail("nbdkit is not installed: apt-get install nbdkit");
  }
  const std::string& nbdkit = *nbdkit_path;
  ImageTarget t = ResolveImageTarget(cmd, a.image, "");
  const std::string ctl = Must(os->AbsolutePath(
      a.control.empty()
          ? SocketDir(true, "--control") + "/" + TargetBaseName(t) + ".ctl"
          : a.control));
  // Open (and close) the image with every export first, so a missing or
  // corrupt image, an unknown volume or a socket in use gets our own
  // one-line error before nbdkit starts.
  ImageServerOptions check;
  check.disk = SpecFor(cmd, a.image, "");
  check.read_only = a.read_only;
  check.control_socket = ctl;
  for (const std::string& v : a.vhost) {
    check.exports.push_back(VhostExportOf(*os, v));
  }
  {
    auto server = ImageServer::Open(check);
    if (!server.ok()) {
      // A namespace's message names it already.
      throw Failure{t.ns.empty()
                        ? server.status().WithContext("cannot serve " + a.image)
                        : server.status()};
    }
    if (!a.volume.empty()) {
      Must((*server)->OpenNbdExport(a.volume, a.read_only).status());
    }
    for (const std::string& w : (*server)->Warnings()) {
      std::fprintf(stderr, "daxstore: warning: %s\n", w.c_str());
    }
  }
  std::string abs = Must(os->AbsolutePath(t.path));

  // exec: nbdkit replaces us, so signals and the exit status are its own.
  std::vector<std::string> args = {nbdkit, "--foreground"};
  std::string uri;
  const std::string& vol = a.volume;  // "": the default export
  std::string nbd_socket;             // reported by the control socket
  if (!a.tcp.empty()) {
    size_t colon = a.tcp.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == a.tcp.size()) {
      throw Fail("--tcp wants ADDR:PORT, e.g. 127.0.0.1:10809");
    }
    std::string host = a.tcp.substr(0, colon);
    std::string port = a.tcp.substr(colon + 1);
    if (host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    args.insert(args.end(), {"--ipaddr", host, "--port", port});
    uri = "nbd://" + a.tcp + "/" + vol;
  } else {
    std::string sock = a.socket.empty()
                           ? SocketDir(true) + "/" + TargetBaseName(t) + ".nbd"
                           : a.socket;
    ClaimSocket(*os, sock);
    args.insert(args.end(), {"--unix", sock});
    nbd_socket = Must(os->AbsolutePath(sock));
    uri = "nbd+unix:///" + vol + "?socket=" + sock;
  }
  if (a.read_only) args.push_back("--readonly");
  if (!a.tls_psk.empty() || !a.tls_certificates.empty()) {
    // TLS only: nbdkit refuses clients that do not start it.
    args.push_back("--tls=require");
    if (!a.tls_psk.empty()) args.push_back("--tls-psk=" + a.tls_psk);
    if (!a.tls_certificates.empty()) {
      args.push_back("--tls-certificates=" + a.tls_certificates);
    }
    uri = "nbds" + uri.substr(3);
  }
  args.push_back(PluginPath(*os));
  args.push_back("image=" + abs);
  if (!nbd_socket.empty()) args.push_back("nbd-socket=" + nbd_socket);
  if (t.options.emulate) {  // an emulated-bus namespace
    args.push_back("emulate=" +
                   std::string(PersistenceDomainName(*t.options.emulate)));
  }
  if (!a.volume.empty()) args.push_back("volume=" + a.volume);
  if (!a.threads.empty()) args.push_back("threads=" + a.threads);
  std::string also;
  for (const ServedExport& e : check.exports) {
    args.push_back("vhost=" + e.volume + ":" + e.socket);
    also += "; vhost-user-blk " + e.volume + " on " + e.socket;
  }
  args.push_back("control=" + ctl);
  std::string what = t.ns.empty() ? abs : t.ns + " (" + abs + ")";
  // The plugin prints this once nbdkit listens and the exports run.
  args.push_back("announce=daxstore: serving " + what + " at " + uri +
                 (a.read_only ? " (read-only)" : "") +
                 "; every volume is an NBD export" + also + "; control " + ctl);
  ExecOptions exec;
  if (a.tcp.empty()) exec.umask = 077;  // nbdkit creates the socket 0600
  throw Failure{os->Exec(args, exec)};  // returns only if it failed
}

}  // namespace

void AddServeNbd(CLI::App* serve) {
  static ServeNbdArgs a;
  auto* c = serve->add_subcommand(
      "nbd",
      "serve every volume of an image over NBD, and any over vhost-user-blk "
      "(runs nbdkit with the daxstore plugin)");
  c->add_option("target", a.image,
                "the daxstore image: a file, or a namespace by device "
                "(namespace0.0, dax0.0, pmem0) or -n name")
      ->required();
  auto* sock = c->add_option(
      "--socket", a.socket,
      "Unix socket (default $XDG_RUNTIME_DIR/daxstore/NAME.nbd or "
      "/tmp/daxstore-UID/NAME.nbd, in a 0700 directory; NAME: the image's "
      "file name or the namespace's device)");
  c->add_option("--tcp", a.tcp, "listen on TCP ADDR:PORT instead")
      ->excludes(sock);
  c->add_flag("--read-only", a.read_only, "export read-only");
  c->add_option("--volume", a.volume,
                "the default export (the one a client gets without naming "
                "one; default: the image's own disk)");
  c->add_option("--vhost-user-blk", a.vhost,
                "also serve VOLUME over vhost-user-blk on SOCKET, from the "
                "same process: VOLUME=SOCKET (repeatable)");
  c->add_option("--control", a.control,
                "the image's control socket (default NAME.ctl beside the "
                "NBD socket's default)");
  auto* psk = c->add_option(
      "--tls-psk", a.tls_psk,
      "require TLS with pre-shared keys: the PSK file (USER:HEXKEY lines, "
      "as psktool writes them)");
  c->add_option("--tls-certificates", a.tls_certificates,
                "require TLS with X.509: the directory of ca-cert.pem, "
                "server-cert.pem and server-key.pem")
      ->excludes(psk);
  c->add_option("--threads", a.threads,
                "serial (the default): each connection's requests one at a "
                "time on its own thread; parallel: on nbdkit's worker "
                "threads (faster with several busy connections)");
  c->callback([c] { ServeNbd(c, a); });
}

void AddServeCommands(CLI::App& app) {
  auto* serve = app.add_subcommand("serve", "serve images to VMMs");
  serve->require_subcommand(1);
  AddServeNbd(serve);
}

}  // namespace daxstore::cli
