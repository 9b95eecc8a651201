// mirror::Job (job.h): one thread per job copies the volume, then the
// blocks its tracker marks, to the target.
#include "mirror/job.h"

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

namespace daxstore::mirror {
namespace {

constexpr uint64_t kChunkBytes = uint64_t{1} << 20;  // one read, at most
constexpr uint64_t kZeroChunk = uint64_t{1} << 30;   // one write-zeroes

bool AllZero(const uint8_t* p, size_t n) {
  return n == 0 || (p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0);
}

}  // namespace

const char* StateName(State s) {
  switch (s) {
    case State::kRunning:
      return "running";
    case State::kReady:
      return "ready";
    case State::kCompleted:
      return "completed";
    case State::kCancelled:
      return "cancelled";
    case State::kFailed:
      return "failed";
  }
  return "unknown";
}

struct Job::Impl {
  Image vol;
  std::unique_ptr<Target> target;
  JobOptions o;
  std::shared_ptr<DirtyBlocks> dirty;
  uint64_t bs = 0;
  uint64_t size = 0;
  bool zero_holes = false;  // the target may hold data where we have holes

  mutable std::mutex mu;  // guards the fields below
  std::condition_variable cv;
  State state = State::kRunning;
  bool ready = false;
  bool complete_asked = false;
  bool cancel_asked = false;
  bool fenced = false;
  uint64_t bytes_total = 0, bytes_done = 0, zero_bytes = 0, passes = 0;
  std::string error;
  std::mutex join_mu;  // one joiner at a time
  std::thread thread;

  void Join() {
    std::lock_guard lock(join_mu);
    if (thread.joinable()) thread.join();
  }

  explicit Impl(Image v) : vol(std::move(v)) {}

  bool Cancelled() {
    std::lock_guard lock(mu);
    return cancel_asked;
  }

  void Count(uint64_t bytes, bool zero) {
    std::lock_guard lock(mu);
    bytes_done += bytes;
    if (zero) zero_bytes += bytes;
  }

  // Sends blocks [first, first + count) (count * bs <= kChunkBytes): runs
  // of zero blocks as write-zeroes, the rest as writes.
  Status SendBlocks(uint64_t first, uint64_t count, std::vector<uint8_t>& buf) {
    buf.resize(count * bs);
    DAXSTORE_RETURN_IF_ERROR(
        vol.Read(first * bs, buf.data(), buf.size())
            .WithContext("reading volume '" + o.volume + "'"));
    uint64_t i = 0;
    while (i < count) {
      const bool zero = AllZero(buf.data() + i * bs, bs);
      uint64_t j = i + 1;
      while (j < count && AllZero(buf.data() + j * bs, bs) == zero) j++;
      const uint64_t off = (first + i) * bs, len = (j - i) * bs;
      if (zero) {
        DAXSTORE_RETURN_IF_ERROR(target->Zero(off, len));
      } else {
        DAXSTORE_RETURN_IF_ERROR(
            target->Write(off, {buf.data() + i * bs, len}));
      }
      Count(len, zero);
      i = j;
    }
    return Status::Ok();
  }

  // Sends the marked blocks `lbas` (ascending), adjacent ones together.
  Status SendMarked(const std::vector<uint64_t>& lbas) {
    std::vector<uint8_t> buf;
    const uint64_t most = std::max<uint64_t>(1, kChunkBytes / bs);
    for (size_t i = 0; i < lbas.size();) {
      if (Cancelled()) return Status::Ok();
      size_t j = i + 1;
      while (j < lbas.size() && lbas[j] == lbas[j - 1] + 1 && j - i < most) {
        j++;
      }
      DAXSTORE_RETURN_IF_ERROR(SendBlocks(lbas[i], j - i, buf));
      i = j;
    }
    return target->Drain();
  }

  Status Bulk(const std::vector<Extent>& extents) {
    std::vector<uint8_t> buf;
    const uint64_t most = std::max<uint64_t>(1, kChunkBytes / bs);
    for (const Extent& e : extents) {
      if (e.hole) {
        if (!zero_holes) continue;
        for (uint64_t off = e.offset; off < e.offset + e.length;) {
          if (Cancelled()) return Status::Ok();
          uint64_t len = std::min(kZeroChunk, e.offset + e.length - off);
          DAXSTORE_RETURN_IF_ERROR(target->Zero(off, len));
          Count(len, true);
          off += len;
        }
        continue;
      }
      // Extents are block-aligned: the volume maps whole blocks.
      uint64_t lba = e.offset / bs;
      const uint64_t end = (e.offset + e.length + bs - 1) / bs;
      while (lba < end) {
        if (Cancelled()) return Status::Ok();
        uint64_t n = std::min(most, end - lba);
        DAXSTORE_RETURN_IF_ERROR(SendBlocks(lba, n, buf));
        lba += n;
      }
    }
    return target->Drain();
  }

  // Step 4: fence, last marks, flush.
  Status Finish() {
    vol.Fence("volume '" + o.volume + "' was handed over to " + o.target +
              " (mirror completed); writes go to the destination now");
    {
      std::lock_guard lock(mu);
      fenced = true;
    }
    // Every write acknowledged before the fence has marked its blocks.
    std::vector<uint64_t> last = dirty->Take();
    {
      std::lock_guard lock(mu);
      bytes_total += last.size() * bs;
    }
    DAXSTORE_RETURN_IF_ERROR(SendMarked(last));
    // The target has every block durable before the job says completed.
    return target->Flush();
  }

  void Run(std::vector<Extent> extents) {
    Status st = Bulk(extents);
    bool finished = false;
    while (st.ok()) {
      {
        std::lock_guard lock(mu);
        if (cancel_asked) break;
        if (complete_asked) {
          finished = true;
        }
      }
      if (finished) {
        st = Finish();
        break;
      }
      std::vector<uint64_t> lbas = dirty->Take();
      {
        std::lock_guard lock(mu);
        bytes_total += lbas.size() * bs;
      }
      st = SendMarked(lbas);
      if (!st.ok()) break;
      std::unique_lock lock(mu);
      passes++;
      if (lbas.size() <= o.ready_blocks && !cancel_asked) {
        ready = true;
        if (state == State::kRunning) state = State::kReady;
      }
      if (lbas.empty()) {
        cv.wait_for(lock, std::chrono::milliseconds(20),
                    [&] { return complete_asked || cancel_asked; });
      }
    }
    vol.StopTrackingWrites();
    target->Close();  // a finished job holds no connection
    std::lock_guard lock(mu);
    if (cancel_asked) {
      if (fenced) vol.Unfence();
      fenced = false;
      state = State::kCancelled;
    } else if (!st.ok()) {
      // The source goes on: no fence, no tracker.
      if (fenced) vol.Unfence();
      fenced = false;
      state = State::kFailed;
      error = st.message();
    } else {
      state = State::kCompleted;
    }
    cv.notify_all();
  }
};

Job::Job(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Job>> Job::Start(Image volume,
                                        std::unique_ptr<Target> target,
                                        const JobOptions& o) {
  auto impl = std::make_unique<Impl>(std::move(volume));
  Impl& m = *impl;
  m.o = o;
  m.bs = m.vol.block_size();
  m.size = m.vol.virtual_size();
  if (target->size() != m.size) {
    return InvalidArgument("the destination " + o.target + " is " +
                           std::to_string(target->size()) +
                           " bytes and volume '" + o.volume + "' is " +
                           std::to_string(m.size) +
                           "; make the destination image exactly as large "
                           "('daxstore image create DEST --size " +
                           std::to_string(m.size) + "')");
  }
  if (target->HasBlockStatus()) {
    DAXSTORE_ASSIGN_OR_RETURN(bool zero, target->KnownZero());
    if (!zero) {
      return InvalidArgument(
          "the destination " + o.target +
          " holds data (its block status shows allocated blocks); a mirror "
          "writes only the source's allocated blocks, so it needs a new, "
          "empty image ('daxstore image create DEST --size " +
          std::to_string(m.size) + "')");
    }
  } else {
    m.zero_holes = true;  // cannot tell: write the holes as zeros too
  }
  m.target = std::move(target);
  m.dirty = std::make_shared<DirtyBlocks>(m.size / m.bs);
  // Tracking starts before the extents are read: a block written after
  // the bulk pass read it is marked.
  DAXSTORE_RETURN_IF_ERROR(m.vol.TrackWrites(m.dirty));
  auto extents = m.vol.Extents(0, m.size, std::numeric_limits<size_t>::max());
  if (!extents.ok()) {
    m.vol.StopTrackingWrites();
    return extents.status();
  }
  for (const Extent& e : *extents) {
    if (!e.hole || m.zero_holes) m.bytes_total += e.length;
  }
  m.thread = std::thread([p = &m, ex = std::move(extents).value()]() mutable {
    p->Run(std::move(ex));
  });
  return std::unique_ptr<Job>(new Job(std::move(impl)));
}

Job::~Job() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->cancel_asked = true;
    impl_->cv.notify_all();
  }
  impl_->target->Abort();
  impl_->Join();
}

JobStatus Job::Query() const {
  const Impl& m = *impl_;
  JobStatus s;
  s.volume = m.o.volume;
  s.target = m.o.target;
  s.dirty_blocks = m.dirty->Count();
  std::lock_guard lock(m.mu);
  s.state = m.state;
  s.ready =
      m.ready && (m.state == State::kReady || m.state == State::kCompleted);
  s.bytes_total = m.bytes_total;
  s.bytes_done = m.bytes_done;
  s.zero_bytes = m.zero_bytes;
  s.passes = m.passes;
  s.error = m.error;
  return s;
}

Status Job::Complete() {
  Impl& m = *impl_;
  std::unique_lock lock(m.mu);
  if (m.state == State::kCompleted) return Status::Ok();
  if (m.state != State::kReady) {
    std::string why = m.state == State::kFailed
                          ? "failed: " + m.error
                          : std::string(StateName(m.state));
    return Busy("the mirror of volume '" + m.o.volume + "' is " + why +
                (m.state == State::kRunning
                     ? "; complete it once mirror-status says ready"
                     : ""));
  }
  m.complete_asked = true;
  m.cv.notify_all();
  m.cv.wait(lock, [&] {
    return m.state == State::kCompleted || m.state == State::kFailed ||
           m.state == State::kCancelled;
  });
  if (m.state == State::kCompleted) return Status::Ok();
  if (m.state == State::kCancelled) {
    return Busy("the mirror of volume '" + m.o.volume +
                "' was cancelled before it completed");
  }
  return Status::Error(ErrorKind::kIoError,
                       "the mirror of volume '" + m.o.volume + "' failed: " +
                           m.error + "; the source volume goes on serving",
                       EIO);
}

Status Job::Cancel() {
  Impl& m = *impl_;
  {
    std::lock_guard lock(m.mu);
    if (m.state == State::kFailed || m.state == State::kCancelled) {
      return InvalidArgument("the mirror of volume '" + m.o.volume +
                             "' has ended (" + StateName(m.state) + ")");
    }
    if (m.state == State::kCompleted) {
      // The source takes writes again; the destination is stale from now.
      if (m.fenced) m.vol.Unfence();
      m.fenced = false;
      m.state = State::kCancelled;
      return Status::Ok();
    }
    m.cancel_asked = true;
    m.cv.notify_all();
  }
  m.target->Abort();
  m.Join();
  return Status::Ok();
}

}  // namespace daxstore::mirror
