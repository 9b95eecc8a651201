// mirror::Target over libnbd: requests go out asynchronously, up to a few
// in flight, and every wait polls in short slices so that Abort and the
// I/O timeout end it.
#include <libnbd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <vector>

#include "mirror/target.h"

namespace daxstore::mirror {
namespace {

constexpr size_t kMaxInFlight = 64;
constexpr int kPollMs = 100;

class NbdTarget final : public Target {
 public:
  NbdTarget(nbd_handle* h, NbdTargetOptions o) : h_(h), o_(std::move(o)) {}
  ~NbdTarget() override {
    if (h_) nbd_close(h_);
  }

  Status Connect() {
    DAXSTORE_RETURN_IF_ERROR(Call(nbd_add_meta_context(h_, "base:allocation")));
    DAXSTORE_RETURN_IF_ERROR(Call(nbd_set_uri_allow_local_file(h_, true)));
    if (o_.tls)
      DAXSTORE_RETURN_IF_ERROR(Call(nbd_set_tls(h_, LIBNBD_TLS_REQUIRE)));
    if (!o_.tls_psk_file.empty()) {
      DAXSTORE_RETURN_IF_ERROR(
          Call(nbd_set_tls_psk_file(h_, o_.tls_psk_file.c_str())));
    }
    if (!o_.tls_certificates.empty()) {
      DAXSTORE_RETURN_IF_ERROR(
          Call(nbd_set_tls_certificates(h_, o_.tls_certificates.c_str())));
    }
    if (!o_.tls_username.empty()) {
      DAXSTORE_RETURN_IF_ERROR(
          Call(nbd_set_tls_username(h_, o_.tls_username.c_str())));
    }
    std::string uri = o_.uri;
    if (o_.tls && uri.rfind("nbd://", 0) == 0) uri = "nbds://" + uri.substr(6);
    if (o_.tls && uri.rfind("nbd+unix://", 0) == 0) {
      uri = "nbds+unix://" + uri.substr(11);
    }
    DAXSTORE_RETURN_IF_ERROR(Call(nbd_aio_connect_uri(h_, uri.c_str())));
    DAXSTORE_RETURN_IF_ERROR(
        PollUntil([&] { return nbd_aio_is_connecting(h_) == 0; }));
    if (nbd_aio_is_ready(h_) != 1) return Failed("connecting");
    int64_t size = nbd_get_size(h_);
    if (size < 0) return Failed("reading the export's size");
    size_ = static_cast<uint64_t>(size);
    if (nbd_is_read_only(h_) == 1) {
      return InvalidArgument("the NBD export " + o_.uri +
                             " is read-only; serve the destination image "
                             "read-write");
    }
    return Status::Ok();
  }

  uint64_t size() const override { return size_; }

  bool HasBlockStatus() const override {
    return nbd_can_meta_context(h_, "base:allocation") == 1;
  }

  Result<bool> KnownZero() override {
    if (!HasBlockStatus()) return false;
    struct Walk {
      uint64_t next = 0;
      bool zero = true;
    } walk;
    uint64_t offset = 0;
    while (offset < size_ && walk.zero) {
      walk.next = offset;
      nbd_extent_callback cb{};
      cb.user_data = &walk;
      cb.callback = [](void* p, const char* ctx, uint64_t off, uint32_t* e,
                       size_t n, int*) -> int {
        auto* w = static_cast<Walk*>(p);
        if (std::strcmp(ctx, "base:allocation") != 0) return 0;
        for (size_t i = 0; i + 1 < n; i += 2) {
          if (!(e[i + 1] & LIBNBD_STATE_ZERO)) w->zero = false;
          off += e[i];
        }
        w->next = off;
        return 0;
      };
      const uint64_t count =
          std::min<uint64_t>(size_ - offset, uint64_t{1} << 30);
      int64_t c = nbd_aio_block_status(h_, count, offset, cb,
                                       nbd_completion_callback{}, 0);
      if (c < 0) return Failed("asking the export's block status");
      DAXSTORE_RETURN_IF_ERROR(Await(static_cast<uint64_t>(c)));
      if (walk.next <= offset) return false;  // no progress: do not trust it
      offset = walk.next;
    }
    return walk.zero;
  }

  Status Write(uint64_t offset, std::span<const uint8_t> data) override {
    if (!h_) return Closed();
    DAXSTORE_RETURN_IF_ERROR(Room());
    auto buf = std::make_unique<std::vector<uint8_t>>(data.begin(), data.end());
    int64_t c = nbd_aio_pwrite(h_, buf->data(), buf->size(), offset,
                               nbd_completion_callback{}, 0);
    if (c < 0) return Failed("writing");
    queued_.push_back({static_cast<uint64_t>(c), std::move(buf)});
    return Status::Ok();
  }

  Status Zero(uint64_t offset, uint64_t length) override {
    if (!h_) return Closed();
    DAXSTORE_RETURN_IF_ERROR(Room());
    int64_t c = nbd_aio_zero(h_, length, offset, nbd_completion_callback{}, 0);
    if (c < 0) return Failed("writing zeroes");
    queued_.push_back({static_cast<uint64_t>(c), nullptr});
    return Status::Ok();
  }

  Status Drain() override {
    if (!h_) return Closed();
    while (!queued_.empty()) DAXSTORE_RETURN_IF_ERROR(Retire());
    return Status::Ok();
  }

  Status Flush() override {
    if (!h_) return Closed();
    DAXSTORE_RETURN_IF_ERROR(Drain());
    if (nbd_can_flush(h_) != 1) return Status::Ok();  // writes are durable
    int64_t c = nbd_aio_flush(h_, nbd_completion_callback{}, 0);
    if (c < 0) return Failed("flushing");
    return Await(static_cast<uint64_t>(c));
  }

  void Abort() override { aborted_.store(true, std::memory_order_relaxed); }

  void Close() override {
    if (!h_) return;
    // NBD_CMD_DISC without waiting for the server (which may be gone).
    if (nbd_aio_is_ready(h_) == 1 && nbd_aio_in_flight(h_) == 0) {
      (void)nbd_aio_disconnect(h_, 0);
    }
    nbd_close(h_);
    h_ = nullptr;
    queued_.clear();  // their buffers: the handle is gone
  }

 private:
  struct Queued {
    uint64_t cookie;
    std::unique_ptr<std::vector<uint8_t>> buf;  // alive until completed
  };

  Status Closed() {
    return Status::Error(ErrorKind::kIoError,
                         "NBD destination " + o_.uri + ": closed", EPIPE);
  }

  Status Call(int rc) { return rc == -1 ? Failed("setting up") : Status::Ok(); }

  Status Failed(const std::string& what) {
    const char* e = nbd_get_error();
    int err = nbd_get_errno();
    return Status::Error(
        ErrorKind::kIoError,
        "NBD destination " + o_.uri + ": " + what + ": " + (e ? e : "failed"),
        err ? err : EIO);
  }

  // Polls until done(); fails once the I/O timeout has passed.
  template <typename Done>
  Status PollUntil(Done done) {
    const auto start = std::chrono::steady_clock::now();
    while (!done()) {
      if (aborted_.load(std::memory_order_relaxed)) {
        return Status::Error(ErrorKind::kIoError,
                             "NBD destination " + o_.uri + ": cancelled",
                             ECANCELED);
      }
      int r = nbd_poll(h_, kPollMs);
      if (r == -1) return Failed("waiting for the server");
      // Sending is no sign of life (a stopped server's socket buffers keep
      // taking data): only the answer counts.
      auto now = std::chrono::steady_clock::now();
      if (now - start > std::chrono::milliseconds(o_.io_timeout_ms)) {
        return Status::Error(ErrorKind::kIoError,
                             "NBD destination " + o_.uri + ": no answer for " +
                                 std::to_string(o_.io_timeout_ms / 1000) + " s",
                             ETIMEDOUT);
      }
    }
    return Status::Ok();
  }

  Status Await(uint64_t cookie) {
    int done = 0;
    DAXSTORE_RETURN_IF_ERROR(PollUntil([&] {
      done = nbd_aio_command_completed(h_, cookie);
      return done != 0;
    }));
    if (done == -1) return Failed("a request failed");
    return Status::Ok();
  }

  Status Retire() {
    Status st = Await(queued_.front().cookie);
    queued_.pop_front();
    return st;
  }

  Status Room() {
    while (queued_.size() >= kMaxInFlight) DAXSTORE_RETURN_IF_ERROR(Retire());
    return Status::Ok();
  }

  nbd_handle* h_;
  NbdTargetOptions o_;
  uint64_t size_ = 0;
  std::deque<Queued> queued_;
  std::atomic<bool> aborted_{false};
};

}  // namespace

Result<std::unique_ptr<Target>> ConnectNbd(const NbdTargetOptions& o) {
  nbd_handle* h = nbd_create();
  if (!h) {
    return Internal(std::string("libnbd: ") +
                    (nbd_get_error() ? nbd_get_error() : "nbd_create failed"));
  }
  auto t = std::make_unique<NbdTarget>(h, o);
  DAXSTORE_RETURN_IF_ERROR(t->Connect());
  return std::unique_ptr<Target>(std::move(t));
}

}  // namespace daxstore::mirror
