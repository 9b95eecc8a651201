// daxstore serve nbd IMAGE: exports an image over NBD by running nbdkit with
// the daxstore plugin in the foreground (exec: signals reach nbdkit).
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "commands.h"
#include "daxstore/image.h"

namespace daxstore::cli {
namespace {

struct ServeNbdArgs {
  std::string image;
  std::string socket;
  std::string tcp;
  bool read_only = false;
};

Failure Fail(std::string message) {
  return Failure{Status::Error(ErrorKind::kInvalidArgument, message)};
}

// The first executable `name` on PATH, or "".
std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string rest = path ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= rest.size()) {
    size_t end = rest.find(':', start);
    if (end == std::string::npos) end = rest.size();
    std::string candidate = rest.substr(start, end - start) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

// DAXSTORE_NBDKIT_PLUGIN, else the build tree's plugin, else the installed
// one, else the plugin's name (nbdkit then looks in its own plugin dir).
std::string PluginPath() {
  if (const char* env = std::getenv("DAXSTORE_NBDKIT_PLUGIN")) return env;
  for (const char* p : {DAXSTORE_BUILD_PLUGIN, DAXSTORE_INSTALLED_PLUGIN}) {
    if (::access(p, R_OK) == 0) return p;
  }
  return "daxstore";
}

// $XDG_RUNTIME_DIR/daxstore or /tmp/daxstore-UID, created 0700 and ours.
std::string DefaultSocketDir() {
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  std::string dir = (xdg && *xdg) ? std::string(xdg) + "/daxstore"
                                  : "/tmp/daxstore-" + std::to_string(getuid());
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    throw Fail("cannot create " + dir + ": " + std::strerror(errno) +
               "; pass --socket PATH");
  }
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) ||
      st.st_uid != getuid() || (st.st_mode & 077) != 0) {
    throw Fail(dir + " is not a private directory of yours (mode 0700); " +
               "remove it or pass --socket PATH");
  }
  return dir;
}

// Refuses a socket another server listens on; removes a stale one.
void ClaimSocket(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return;
  if (!S_ISSOCK(st.st_mode)) {
    throw Fail(path + " exists and is not a socket; pick another --socket");
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  bool live = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr),
                                   sizeof(addr)) == 0;
  if (fd >= 0) ::close(fd);
  if (live) {
    throw Fail("socket " + path +
               " is in use by another server; stop it or pass --socket");
  }
  ::unlink(path.c_str());
}

void ServeNbd(const ServeNbdArgs& a) {
  std::string nbdkit = FindOnPath("nbdkit");
  if (nbdkit.empty()) {
    throw Fail("nbdkit is not installed: apt-get install nbdkit");
  }
  // Open (and close) the image first, so a missing or corrupt one gets our
  // own one-line error instead of nbdkit's at the first connection.
  MapOptions map_options;
  map_options.access = a.read_only ? Access::kReadOnly : Access::kReadWrite;
  auto image = Image::Open(a.image, map_options);
  if (!image.ok()) {
    throw Failure{Status::Error(
        image.status().kind(),
        "cannot serve " + a.image + ": " + image.status().message())};
  }
  std::string abs = std::filesystem::absolute(a.image).string();

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
    std::string sock =
        a.socket.empty()
            ? DefaultSocketDir() + "/" +
                  std::filesystem::path(abs).filename().string() + ".nbd"
            : a.socket;
    ClaimSocket(sock);
    ::umask(077);  // nbdkit creates the socket 0600
    args.insert(args.end(), {"--unix", sock});
    uri = "nbd+unix:///?socket=" + sock;
  }
  if (a.read_only) args.push_back("--readonly");
  args.push_back(PluginPath());
  args.push_back("image=" + abs);

  std::fprintf(stderr, "daxstore: serving %s at %s%s\n", abs.c_str(),
               uri.c_str(), a.read_only ? " (read-only)" : "");
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  ::execv(nbdkit.c_str(), argv.data());
  throw Failure{IoError("cannot run " + nbdkit, errno)};
}

}  // namespace

void AddServeNbd(CLI::App* serve) {
  static ServeNbdArgs a;
  auto* c = serve->add_subcommand(
      "nbd", "export an image over NBD (runs nbdkit with the daxstore plugin)");
  c->add_option("image", a.image, "the daxstore image")->required();
  auto* sock = c->add_option(
      "--socket", a.socket,
      "Unix socket (default $XDG_RUNTIME_DIR/daxstore/IMAGE.nbd or "
      "/tmp/daxstore-UID/IMAGE.nbd, in a 0700 directory)");
  c->add_option("--tcp", a.tcp, "listen on TCP ADDR:PORT instead")
      ->excludes(sock);
  c->add_flag("--read-only", a.read_only, "export read-only");
  c->callback([] { ServeNbd(a); });
}

void AddServeCommands(CLI::App& app) {
  auto* serve = app.add_subcommand("serve", "serve images to VMMs");
  serve->require_subcommand(1);
  AddServeNbd(serve);
}

}  // namespace daxstore::cli
