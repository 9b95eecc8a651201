#include <cstdio>
#include <list>
#include <thread>

#include "daxstore/vhost_blk.h"
#include "vhost/channel.h"
#include "vhost/ring_lease.h"
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
  s->lease_ = std::make_unique<vhost::RingLease>();
  s->os_ = options.platform ? options.platform : DefaultPlatform();
  DAXSTORE_ASSIGN_OR_RETURN(s->stop_fd_, s->os_->MakeEvent());
  DAXSTORE_RETURN_IF_ERROR(ClaimSocketPath(*s->os_, options.socket_path));
  DAXSTORE_ASSIGN_OR_RETURN(
      s->listen_fd_, s->os_->ListenUnix(options.socket_path, kMaxFrontEnds));
  return s;
}

VhostBlkServer::VhostBlkServer() = default;

VhostBlkServer::~VhostBlkServer() {
  if (listen_fd_ >= 0) {
    os_->Close(listen_fd_);
    (void)os_->Remove(options_.socket_path);
  }
  if (stop_fd_ >= 0) os_->Close(stop_fd_);
}

void VhostBlkServer::Stop() { os_->SignalEvent(stop_fd_); }

Status VhostBlkServer::Run() {
  struct Conn {
    std::thread thread;
    std::atomic<bool> done{false};
  };
  std::list<Conn> live;
  // Connections still served: a front end that sees its connection closed
  // is no longer counted.
  std::atomic<size_t> serving{0};
  auto reap = [&] {
    for (auto it = live.begin(); it != live.end();) {
      if (it->done.load()) {
        it->thread.join();
        it = live.erase(it);
      } else {
        ++it;
      }
    }
  };
  Status st;
  for (;;) {
    WaitFd w[2] = {{.fd = listen_fd_}, {.fd = stop_fd_}};
    auto n = os_->Wait(w, -1);
    if (!n.ok()) {
      st = n.status().WithContext("waiting for a front end");
      break;
    }
    if (w[1].ready) break;
    auto conn = os_->Accept(listen_fd_);
    if (!conn.ok()) {
      st = conn.status().WithContext("front end");
      break;
    }
    reap();
    if (serving.load() >= kMaxFrontEnds) {
      std::fprintf(stderr,
                   "daxstore vhost: %s: refusing a third front end (one "
                   "serves the volume, one may take over from it)\n",
                   options_.socket_path.c_str());
      os_->Close(*conn);
      continue;
    }
    if (serving.load() > 0)
      std::fprintf(stderr,
                   "daxstore vhost: %s: a second front end connected; its "
                   "rings run once the first one's have stopped\n",
                   options_.socket_path.c_str());
    connections_.fetch_add(1);
    serving.fetch_add(1);
    Conn& c = live.emplace_back();
    c.thread = std::thread([this, fd = *conn, &c, &serving] {
      ServeConnection(fd, &serving, true);
      c.done.store(true);
    });
  }
  // Stop() ends every connection's message loop.
  if (!live.empty()) os_->SignalEvent(stop_fd_);
  for (Conn& c : live) c.thread.join();
  return st;
}

void VhostBlkServer::ServeConnection(int conn, std::atomic<size_t>* serving,
                                     bool migration) {
  Status st = Serve(conn, migration);
  // The session (its rings, its lease) is gone before the front end sees
  // the connection close.
  if (serving != nullptr) serving->fetch_sub(1);
  os_->Close(conn);
  if (!st.ok())
    std::fprintf(stderr, "daxstore vhost: dropping the connection: %s\n",
                 st.message().c_str());
}

Status VhostBlkServer::ServeOne() {
  WaitFd w[2] = {{.fd = listen_fd_}, {.fd = stop_fd_}};
  auto n = os_->Wait(w, -1);
  if (!n.ok()) return n.status().WithContext("waiting for a front end");
  if (w[1].ready) return Status::Ok();
  auto conn = os_->Accept(listen_fd_);
  if (!conn.ok()) return conn.status().WithContext("front end");
  connections_.fetch_add(1);
  // No second front end can connect meanwhile: no migration offered.
  ServeConnection(*conn, nullptr, false);
  return Status::Ok();
}

Status VhostBlkServer::Serve(int conn, bool migration) {
  vhost::BlkDevice dev;
  dev.image = image_;
  dev.read_only = options_.read_only;
  dev.serial = options_.serial;
  vhost::Session session(dev, options_.queues, os_);
  session.set_stall(options_.stall);
  session.set_ring_lease(lease_.get());
  session.set_migration(migration);
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
