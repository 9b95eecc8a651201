// daxstore serve nbd TARGET: exports an image (a file or a namespace) over
// NBD by running nbdkit with the daxstore plugin in the foreground (exec:
// signals reach nbdkit).
#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"
#include "daxstore/image.h"
#include "daxstore/platform.h"
#include "image_target.h"

namespace daxstore::cli {
namespace {

struct ServeNbdArgs {
  std::string image;
  std::string socket;
  std::string tcp;
  std::string threads;  // empty: the plugin's default
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

// $XDG_RUNTIME_DIR/daxstore or /tmp/daxstore-UID, created 0700 and ours.
std::string DefaultSocketDir(Platform& os) {
  std::string xdg = os.Environment("XDG_RUNTIME_DIR").value_or(std::string());
  std::string dir = !xdg.empty()
                        ? xdg + "/daxstore"
                        : "/tmp/daxstore-" + std::to_string(Must(os.UserId()));
  Status st = os.MakePrivateDir(dir);
  if (!st.ok()) {
    // A failed mkdir carries its errno; a directory that is not ours none.
    throw Fail(st.message() + (st.sys_errno() != 0
                                   ? "; pass --socket PATH"
                                   : "; remove it or pass --socket PATH"));
  }
  return dir;
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
  // Open (and close) the image first, so a missing or corrupt one, or a
  // namespace without one, gets our own one-line error instead of nbdkit's
  // at the first connection.
  ImageTarget t = ResolveImageTarget(cmd, a.image, "");
  OpenImageToServe(t, a.image, a.read_only);
  std::string abs = Must(os->AbsolutePath(t.path));

  // exec: nbdkit replaces us, so signals and the exit status are its own.
  std::vector<std::string> args = {nbdkit, "--foreground"};
  std::string uri;
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
    uri = "nbd://" + a.tcp + "/";
  } else {
    std::string sock = a.socket.empty() ? DefaultSocketDir(*os) + "/" +
                                              TargetBaseName(t) + ".nbd"
                                        : a.socket;
    ClaimSocket(*os, sock);
    args.insert(args.end(), {"--unix", sock});
    uri = "nbd+unix:///?socket=" + sock;
  }
  if (a.read_only) args.push_back("--readonly");
  args.push_back(PluginPath(*os));
  args.push_back("image=" + abs);
  if (t.options.emulate) {  // an emulated-bus namespace
    args.push_back("emulate=" +
                   std::string(PersistenceDomainName(*t.options.emulate)));
  }
  if (!a.threads.empty()) args.push_back("threads=" + a.threads);

  std::string what = t.ns.empty() ? abs : t.ns + " (" + abs + ")";
  std::fprintf(stderr, "daxstore: serving %s at %s%s\n", what.c_str(),
               uri.c_str(), a.read_only ? " (read-only)" : "");
  ExecOptions exec;
  if (a.tcp.empty()) exec.umask = 077;  // nbdkit creates the socket 0600
  throw Failure{os->Exec(args, exec)};  // returns only if it failed
}

}  // namespace

void AddServeNbd(CLI::App* serve) {
  static ServeNbdArgs a;
  auto* c = serve->add_subcommand(
      "nbd", "export an image over NBD (runs nbdkit with the daxstore plugin)");
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
