// Image verbs that work offline and on a served image alike: a request
// answered by an ImageServer in this process, or by the control socket of
// the server that owns the image.
#include <cerrno>
#include <cstdio>

#include "commands.h"
#include "daxstore/image_server.h"
#include "image_target.h"
#include "output.h"

namespace daxstore::cli {
namespace {

// A failed reply as a Status: its kind by name, its text, its errno.
Status ReplyError(const nlohmann::json& err) {
  std::string desc = err.value("desc", std::string("the server failed"));
  std::string cls = err.value("class", std::string());
  int e = err.value("errno", 0);
  for (ErrorKind k :
       {ErrorKind::kInvalidArgument, ErrorKind::kNotFound,
        ErrorKind::kUnsupported, ErrorKind::kBusy, ErrorKind::kNoSpace,
        ErrorKind::kIoError, ErrorKind::kCorruption, ErrorKind::kInternal}) {
    if (cls == ErrorKindName(k)) return Status::Error(k, desc, e);
  }
  return Status::Error(ErrorKind::kInternal, desc, e);
}

nlohmann::json ReturnOf(const std::string& text) {
  auto reply = nlohmann::json::parse(text, nullptr, false);
  if (reply.is_discarded() || !reply.is_object()) {
    throw Failure{Internal("the server's reply is not JSON: " + text)};
  }
  if (auto e = reply.find("error"); e != reply.end() && e->is_object()) {
    throw Failure{ReplyError(*e)};
  }
  return reply.value("return", nlohmann::json());
}

}  // namespace

nlohmann::json AskServer(const CLI::App* cmd, const std::string& target,
                         const std::string& emulate, const std::string& control,
                         const std::string& text, const Status& busy);

std::string SocketDir(bool create, const std::string& option) {
  Platform& os = *DefaultPlatform();
  std::string xdg = os.Environment("XDG_RUNTIME_DIR").value_or(std::string());
  std::string dir = !xdg.empty()
                        ? xdg + "/daxstore"
                        : "/tmp/daxstore-" + std::to_string(Must(os.UserId()));
  if (!create) return dir;
  Status st = os.MakePrivateDir(dir);
  if (!st.ok()) {
    // A failed mkdir carries its errno; a directory that is not ours none.
    throw Fail(st.message() +
               (st.sys_errno() != 0 ? "; pass " : "; remove it or pass ") +
               option + " PATH");
  }
  return dir;
}

std::string DefaultControlSocket(const ImageTarget& t) {
  return SocketDir(false) + "/" + TargetBaseName(t) + ".ctl";
}

nlohmann::json ImageRequest(const CLI::App* cmd, const std::string& target,
                            const std::string& emulate,
                            const std::string& control,
                            const nlohmann::json& request, bool write) {
  const std::string text = request.dump();
  ImageServerOptions o;
  o.disk = SpecFor(cmd, target, emulate);
  o.read_only = !write;
  auto local = ImageServer::Open(o);
  if (local.ok()) return ReturnOf((*local)->Handle(text));
  if (local.status().kind() != ErrorKind::kBusy) throw Failure{local.status()};
  return AskServer(cmd, target, emulate, control, text, local.status());
}

nlohmann::json ServerRequest(const CLI::App* cmd, const std::string& target,
                             const std::string& emulate,
                             const std::string& control,
                             const nlohmann::json& request,
                             const std::string& why) {
  ImageServerOptions o;
  o.disk = SpecFor(cmd, target, emulate);
  o.read_only = true;
  auto local = ImageServer::Open(o);
  if (local.ok()) {
    throw Failure{Unsupported("no server has " + target + " open: " + why)};
  }
  if (local.status().kind() != ErrorKind::kBusy) throw Failure{local.status()};
  return AskServer(cmd, target, emulate, control, request.dump(),
                   local.status());
}

// Busy: another process owns the image; ask its server, if it is one.
nlohmann::json AskServer(const CLI::App* cmd, const std::string& target,
                         const std::string& emulate, const std::string& control,
                         const std::string& text, const Status& busy) {
  ImageTarget t = ResolveImageTarget(cmd, target, emulate);
  const std::string sock = control.empty() ? DefaultControlSocket(t) : control;
  Platform& os = *DefaultPlatform();
  const std::string mine = Must(os.AbsolutePath(t.path));
  auto theirs = ControlImagePath(sock);
  if (!theirs.ok() && theirs.status().sys_errno() == EACCES) {
    // The socket is there but is not ours (0600, another user's server).
    throw Failure{Status::Error(
        theirs.status().kind(),
        "permission denied: " + sock +
            " is the control socket of another user's server for " + t.path +
            " (mode 0600); run this as the user the server runs as",
        EACCES)};
  }
  if (!theirs.ok() || *theirs != mine) {
    std::string why = !theirs.ok()
                          ? "no daxstore server answers on " + sock
                          : "the server on " + sock + " serves " + *theirs;
    throw Failure{Busy(busy.message() + "; " + why +
                       " (pass --control SOCKET to name the server's "
                       "control socket)")};
  }
  return ReturnOf(Must(ControlRequest(sock, text)));
}

void AddImageRequestOptions(CLI::App* verb, std::string* emulate,
                            std::string* control) {
  verb->add_option("--emulate", *emulate,
                   "declare the file pmem: cpu_cache or memory_controller");
  verb->add_option("--control", *control,
                   "the control socket of the server that has the image open "
                   "(default: the one 'daxstore serve' makes for it)");
  AddOutputOption(verb);
}

}  // namespace daxstore::cli
