// The control socket: an accept loop over a few connections at once, one
// JSON object per line each way; and its client.
#include <nlohmann/json.hpp>
#include <vector>

#include "server/state.h"

namespace daxstore {
namespace {

constexpr size_t kMaxRequest = 64 * 1024;  // bytes in one request line
constexpr size_t kMaxConnections = 16;

// Writes all of `text`, waiting while the peer's buffer is full.
Status SendAll(Platform& os, int fd, const std::string& text, int timeout_ms) {
  size_t done = 0;
  while (done < text.size()) {
    DAXSTORE_ASSIGN_OR_RETURN(
        size_t n, os.Send(fd, text.data() + done, text.size() - done));
    if (n == 0) {
      WaitFd w{.fd = fd, .write = true};
      DAXSTORE_ASSIGN_OR_RETURN(int ready, os.Wait({&w, 1}, timeout_ms));
      if (ready == 0) return IoError("the peer stopped reading", ETIMEDOUT);
    }
    done += n;
  }
  return Status::Ok();
}

struct Conn {
  int fd;
  std::string buf;
};

std::string Line(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
         "\n";
}

}  // namespace

void ImageServer::State::ControlLoop() {
  std::vector<Conn> conns;
  const std::string greeting =
      Line({{"daxstore", {{"version", "0.1.0"}, {"image", abs_path}}}});
  auto drop = [&](size_t i) {
    os->Close(conns[i].fd);
    conns.erase(conns.begin() + static_cast<ptrdiff_t>(i));
  };
  for (;;) {
    std::vector<WaitFd> w;
    w.push_back({.fd = stop_fd});
    w.push_back({.fd = control_fd});
    for (const Conn& c : conns) w.push_back({.fd = c.fd});
    auto n = os->Wait(w, -1);
    if (!n.ok() || w[0].ready) break;
    // Connections first: a new one joins the next round.
    for (size_t i = conns.size(); i-- > 0;) {
      if (!w[i + 2].ready) continue;
      char chunk[4096];
      auto r = os->Receive(conns[i].fd, chunk, sizeof chunk, nullptr, 0);
      if (!r.ok() || (r->bytes == 0 && !r->would_block)) {
        drop(i);
        continue;
      }
      conns[i].buf.append(chunk, r->bytes);
      bool close = false;
      for (size_t nl;
           !close && (nl = conns[i].buf.find('\n')) != std::string::npos;) {
        std::string req = conns[i].buf.substr(0, nl);
        conns[i].buf.erase(0, nl + 1);
        std::string reply = owner->Handle(req) + "\n";
        close = !SendAll(*os, conns[i].fd, reply, 5000).ok();
      }
      if (!close && conns[i].buf.size() > kMaxRequest) {
        (void)SendAll(*os, conns[i].fd,
                      Line({{"error",
                             {{"class", "invalid argument"},
                              {"desc",
                               "a request line is at most 64 KiB; "
                               "closing the connection"},
                              {"errno", 22}}}}),
                      1000);
        close = true;
      }
      if (close) drop(i);
    }
    if (w[1].ready) {
      auto fd = os->Accept(control_fd);
      if (!fd.ok()) continue;
      if (conns.size() >= kMaxConnections ||
          !SendAll(*os, *fd, greeting, 1000).ok()) {
        os->Close(*fd);
        continue;
      }
      conns.push_back({*fd, {}});
    }
  }
  for (const Conn& c : conns) os->Close(c.fd);
}

namespace {

// Reads one line from fd within timeout_ms.
Result<std::string> ReadLine(Platform& os, int fd, std::string* buf,
                             int timeout_ms) {
  for (;;) {
    if (size_t nl = buf->find('\n'); nl != std::string::npos) {
      std::string line = buf->substr(0, nl);
      buf->erase(0, nl + 1);
      return line;
    }
    if (buf->size() > 16 * kMaxRequest) {
      return IoError("the control socket's reply is too long", EPROTO);
    }
    WaitFd w{.fd = fd};
    DAXSTORE_ASSIGN_OR_RETURN(int ready, os.Wait({&w, 1}, timeout_ms));
    if (ready == 0) {
      return IoError("the server did not answer in time", ETIMEDOUT);
    }
    char chunk[4096];
    DAXSTORE_ASSIGN_OR_RETURN(Received r,
                              os.Receive(fd, chunk, sizeof chunk, nullptr, 0));
    if (r.bytes == 0 && !r.would_block) {
      return IoError("the server closed the control connection", ECONNRESET);
    }
    buf->append(chunk, r.bytes);
  }
}

struct Client {
  std::shared_ptr<Platform> os = DefaultPlatform();
  int fd = -1;
  std::string buf;
  std::string image;
  ~Client() {
    if (fd >= 0) os->Close(fd);
  }
  Status Connect(const std::string& socket, int timeout_ms) {
    DAXSTORE_ASSIGN_OR_RETURN(fd, os->ConnectUnix(socket));
    DAXSTORE_ASSIGN_OR_RETURN(std::string hello,
                              ReadLine(*os, fd, &buf, timeout_ms));
    auto j = nlohmann::json::parse(hello, nullptr, false);
    if (j.is_discarded() || !j.contains("daxstore") ||
        !j["daxstore"].is_object() || !j["daxstore"].contains("image") ||
        !j["daxstore"]["image"].is_string()) {
      return IoError(socket + " is not a daxstore control socket", EPROTO);
    }
    image = j["daxstore"]["image"].get<std::string>();
    return Status::Ok();
  }
};

}  // namespace

Result<std::string> ControlRequest(const std::string& socket,
                                   const std::string& request, int timeout_ms) {
  Client c;
  DAXSTORE_RETURN_IF_ERROR(c.Connect(socket, timeout_ms));
  DAXSTORE_RETURN_IF_ERROR(SendAll(*c.os, c.fd, request + "\n", timeout_ms));
  return ReadLine(*c.os, c.fd, &c.buf, timeout_ms);
}

Result<std::string> ControlImagePath(const std::string& socket,
                                     int timeout_ms) {
  Client c;
  DAXSTORE_RETURN_IF_ERROR(c.Connect(socket, timeout_ms));
  return c.image;
}

}  // namespace daxstore
