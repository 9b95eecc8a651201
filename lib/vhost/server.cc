#include <cstdio>

#include "daxstore/vhost_blk.h"
#include "vhost/channel.h"
#include "vhost/session.h"

namespace daxstore {
namespace {

Status ClaimSocketPath(Platform& os, const std::string& path) {
  DAXSTORE_ASSIGN_OR_RETURN(SocketPath what, os.ProbeUnixSocket(path));
  switch (what) {
    case SocketPath::kAbsent:
      return Status::Ok();
    case SocketPath::kNotSocket:
      return Busy(path +
                  " exists and is not a socket; remove it or pick "
                  "another --socket path");
    case SocketPath::kLive:
      return Busy("another server is listening on " + path);
    case SocketPath::kStale:
      return os.Remove(path);  // stale socket from an earlier run
  }
  return Internal("unknown socket path state");
}

}  // namespace

Result<std::unique_ptr<VhostBlkServer>> VhostBlkServer::Create(
    Image* image, const VhostBlkOptions& options) {
  if (options.queues == 0 || options.queues > vhost::kMaxQueues)
    return InvalidArgument("--queues must be 1 to 64");
  if (options.serial.size() > 20)
    return InvalidArgument("--serial is longer than 20 bytes");
  std::unique_ptr<VhostBlkServer> s(new VhostBlkServer());
  s->image_ = image;
  s->options_ = options;
  s->os_ = options.platform ? options.platform : DefaultPlatform();
  DAXSTORE_ASSIGN_OR_RETURN(s->stop_fd_, s->os_->MakeEvent());
  DAXSTORE_RETURN_IF_ERROR(ClaimSocketPath(*s->os_, options.socket_path));
  DAXSTORE_ASSIGN_OR_RETURN(s->listen_fd_,
                            s->os_->ListenUnix(options.socket_path, 1));
  return s;
}

VhostBlkServer::~VhostBlkServer() {
  if (listen_fd_ >= 0) {
    os_->Close(listen_fd_);
    (void)os_->Remove(options_.socket_path);
  }
  if (stop_fd_ >= 0) os_->Close(stop_fd_);
}

void VhostBlkServer::Stop() { os_->SignalEvent(stop_fd_); }

Status VhostBlkServer::Run() {
  for (;;) {
    WaitFd stop{.fd = stop_fd_};
    auto n = os_->Wait({&stop, 1}, 0);
    if (n.ok() && *n > 0) return Status::Ok();
    DAXSTORE_RETURN_IF_ERROR(ServeOne());
  }
}

Status VhostBlkServer::ServeOne() {
  WaitFd w[2] = {{.fd = listen_fd_}, {.fd = stop_fd_}};
  auto n = os_->Wait(w, -1);
  if (!n.ok()) return n.status().WithContext("waiting for a front end");
  if (w[1].ready) return Status::Ok();
  auto conn = os_->Accept(listen_fd_);
  if (!conn.ok()) return conn.status().WithContext("front end");
  connections_.fetch_add(1);
  Status st = Serve(*conn);
  os_->Close(*conn);
  if (!st.ok())
    std::fprintf(stderr, "daxstore vhost: dropping the connection: %s\n",
                 st.message().c_str());
  return Status::Ok();
}

Status VhostBlkServer::Serve(int conn) {
  vhost::BlkDevice dev;
  dev.image = image_;
  dev.read_only = options_.read_only;
  dev.serial = options_.serial;
  vhost::Session session(dev, options_.queues, os_);
  session.set_stall(options_.stall);
  std::vector<uint8_t> reply;
  for (;;) {
    vhost::Message msg(os_.get());  // its fds are closed after each round
    DAXSTORE_ASSIGN_OR_RETURN(
        vhost::ReadOutcome r,
        vhost::ReadMessage(*os_, conn, stop_fd_, options_.message_timeout_ms,
                           &msg, session.drop_event()));
    if (r != vhost::ReadOutcome::kMessage) return Status::Ok();
    bool has_reply = false;
    Status st =
        session.Handle(msg.hdr, msg.payload, msg.fds.fds_, &reply, &has_reply);
    if (has_reply)
      DAXSTORE_RETURN_IF_ERROR(
          vhost::WriteReply(*os_, conn, msg.hdr.request, reply,
                            options_.message_timeout_ms, session.reply_fd()));
    DAXSTORE_RETURN_IF_ERROR(st);
  }
}

}  // namespace daxstore
