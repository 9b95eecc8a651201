// ImageServer: one process owns an image and serves all of its volumes.
#include <algorithm>
#include <cstdio>

#include "server/state.h"

namespace daxstore {
namespace {

Status CheckSocketFree(Platform& os, const std::string& path) {
  DAXSTORE_ASSIGN_OR_RETURN(SocketPath what, os.ProbeUnixSocket(path));
  if (what == SocketPath::kNotSocket) {
    return Busy(path + " exists and is not a socket; pick another socket path");
  }
  if (what == SocketPath::kLive) {
    return Busy("another server is listening on " + path +
                "; stop it or pick another socket path");
  }
  return Status::Ok();
}

}  // namespace

ImageServer::ImageServer(std::unique_ptr<State> s) : s_(std::move(s)) {
  s_->owner = this;
}

Result<std::unique_ptr<ImageServer>> ImageServer::Open(
    const ImageServerOptions& options) {
  std::shared_ptr<Platform> os =
      options.platform ? options.platform : DefaultPlatform();
  DiskSpec spec = options.disk;
  spec.volume.clear();
  spec.platform = os;
  spec.access = options.read_only ? Access::kReadOnly : Access::kReadWrite;
  DiskLocation loc;
  DAXSTORE_ASSIGN_OR_RETURN(Image image, OpenDisk(spec, &loc));
  auto s = std::make_unique<State>(std::move(image));
  s->options = options;
  s->os = os;
  s->location = loc;
  auto abs = os->AbsolutePath(loc.path);
  s->abs_path = abs.ok() ? *abs : loc.path;
  std::set<std::string> sockets;
  for (const ServedExport& e : options.exports) {
    if (e.kind != ServedExport::Kind::kVhostUserBlk) continue;
    std::string vol = e.volume.empty() ? s->image.volume() : e.volume;
    if (!s->VolumeExists(vol)) {
      return NotFound("image " + loc.Describe() + " has no volume '" + vol +
                      "'; 'daxstore image list' shows them");
    }
    if (e.socket.empty()) {
      return InvalidArgument("the vhost-user-blk export of '" + vol +
                             "' needs a socket path");
    }
    if (!sockets.insert(e.socket).second) {
      return InvalidArgument("socket " + e.socket +
                             " is given to two exports; give each its own");
    }
    DAXSTORE_RETURN_IF_ERROR(CheckSocketFree(*os, e.socket));
  }
  if (!options.control_socket.empty()) {
    DAXSTORE_RETURN_IF_ERROR(CheckSocketFree(*os, options.control_socket));
  }
  DAXSTORE_ASSIGN_OR_RETURN(s->stop_fd, os->MakeEvent());
  return std::unique_ptr<ImageServer>(new ImageServer(std::move(s)));
}

ImageServer::~ImageServer() {
  Stop();
  if (s_->control_thread.joinable()) s_->control_thread.join();
  {
    std::lock_guard lock(s_->mu);
    for (auto& [name, e] : s_->vhost) s_->StopVhost(*e);
    s_->vhost.clear();
  }
  if (s_->control_fd >= 0) {
    s_->os->Close(s_->control_fd);
    (void)s_->os->Remove(s_->options.control_socket);
  }
  if (s_->stop_fd >= 0) s_->os->Close(s_->stop_fd);
}

Status ImageServer::Start() {
  std::lock_guard lock(s_->mu);
  if (s_->started) return Status::Ok();
  for (const ServedExport& e : s_->options.exports) {
    if (e.kind == ServedExport::Kind::kVhostUserBlk) {
      DAXSTORE_RETURN_IF_ERROR(s_->StartVhost(e));
    }
  }
  if (!s_->options.control_socket.empty()) {
    const std::string& path = s_->options.control_socket;
    DAXSTORE_RETURN_IF_ERROR(CheckSocketFree(*s_->os, path));
    DAXSTORE_ASSIGN_OR_RETURN(SocketPath what, s_->os->ProbeUnixSocket(path));
    if (what == SocketPath::kStale) {
      DAXSTORE_RETURN_IF_ERROR(s_->os->Remove(path));
    }
    DAXSTORE_ASSIGN_OR_RETURN(s_->control_fd, s_->os->ListenUnix(path, 8));
    s_->control_thread = std::thread([s = s_.get()] { s->ControlLoop(); });
  }
  s_->started = true;
  return Status::Ok();
}

Status ImageServer::Run() {
  DAXSTORE_RETURN_IF_ERROR(Start());
  WaitFd stop{.fd = s_->stop_fd};
  for (;;) {
    DAXSTORE_ASSIGN_OR_RETURN(int n, s_->os->Wait({&stop, 1}, -1));
    if (n > 0) return Status::Ok();
  }
}

void ImageServer::Stop() {
  if (s_->stop_fd >= 0) s_->os->SignalEvent(s_->stop_fd);
}

const DiskLocation& ImageServer::location() const { return s_->location; }

std::string ImageServer::default_volume() const { return s_->image.volume(); }

std::vector<std::string> ImageServer::Warnings() const {
  std::vector<std::string> out;
  auto info = s_->image.Info();
  if (!info.ok()) return {info.status().message()};
  const std::string& path = s_->abs_path;
  if (info->corrupt) {
    out.push_back(path +
                  " is flagged corrupt (a write met an inconsistency): every "
                  "volume is served read-only; stop the server and run "
                  "'daxstore image check --repair=all " +
                  path + "'");
  }
  if (info->damaged_volumes) {
    out.push_back(path + " has " + std::to_string(info->damaged_volumes) +
                  " damaged volume table entr" +
                  (info->damaged_volumes == 1 ? "y" : "ies") +
                  ", not served: 'daxstore image check " + path +
                  "' lists them");
  }
  return out;
}

std::vector<std::string> ImageServer::NbdExports() const {
  std::vector<std::string> out;
  if (!s_->options.nbd) return out;
  auto vols = s_->image.Volumes();
  if (!vols.ok()) return out;
  std::lock_guard lock(s_->mu);
  for (const VolumeInfo& v : *vols) {
    if (!v.damaged && !s_->nbd_hidden.count(v.name)) out.push_back(v.name);
  }
  return out;
}

Result<std::unique_ptr<Image>> ImageServer::OpenNbdExport(
    const std::string& name, bool read_only) {
  const std::string vol = name.empty() ? s_->image.volume() : name;
  {
    std::lock_guard lock(s_->mu);
    if (!s_->options.nbd || s_->nbd_hidden.count(vol)) {
      return NotFound("no NBD export '" + vol + "' on " +
                      s_->location.Describe() +
                      "; 'nbdinfo --list' shows the exports");
    }
  }
  auto handle = s_->image.OpenVolume(vol);
  if (!handle.ok()) {
    return NotFound("no NBD export '" + vol + "' on " +
                    s_->location.Describe() +
                    ": no such volume; 'nbdinfo --list' shows the exports");
  }
  (void)read_only;  // the host enforces a read-only connection
  return std::make_unique<Image>(std::move(handle).value());
}

bool ImageServer::State::VolumeExists(const std::string& volume) const {
  auto vols = image.Volumes();
  if (!vols.ok()) return false;
  return std::any_of(vols->begin(), vols->end(), [&](const VolumeInfo& v) {
    return !v.damaged && v.name == volume;
  });
}

Status ImageServer::State::StartVhost(const ServedExport& spec) {
  ServedExport e = spec;
  if (e.volume.empty()) e.volume = image.volume();
  if (vhost.count(e.volume)) {
    return Busy("volume '" + e.volume +
                "' already has a vhost-user-blk export on " +
                vhost[e.volume]->spec.socket);
  }
  for (const auto& [name, other] : vhost) {
    if (other->spec.socket == e.socket) {
      return Busy("socket " + e.socket + " already serves volume '" + name +
                  "'");
    }
  }
  DAXSTORE_ASSIGN_OR_RETURN(Image handle, image.OpenVolume(e.volume));
  auto x = std::make_unique<VhostExport>();
  x->spec = e;
  x->handle = std::make_unique<Image>(std::move(handle));
  VhostBlkOptions vo;
  vo.socket_path = e.socket;
  vo.queues = e.queues;
  vo.read_only = e.read_only || options.read_only || x->handle->read_only();
  vo.serial = e.serial;
  vo.platform = os;
  DAXSTORE_ASSIGN_OR_RETURN(x->server,
                            VhostBlkServer::Create(x->handle.get(), vo));
  VhostBlkServer* server = x->server.get();
  std::string vol = e.volume;
  x->thread = std::thread([server, vol] {
    Status st = server->Run();
    if (!st.ok()) {
      std::fprintf(stderr,
                   "daxstore: vhost-user-blk export of '%s' ended: %s\n",
                   vol.c_str(), st.message().c_str());
    }
  });
  vhost[e.volume] = std::move(x);
  return Status::Ok();
}

void ImageServer::State::StopVhost(VhostExport& e) {
  if (e.server) e.server->Stop();
  if (e.thread.joinable()) e.thread.join();
  e.server.reset();  // closes and removes the socket
  e.handle.reset();
}

}  // namespace daxstore
