// The data path: reads, out-of-place writes, zeroing.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <shared_mutex>

#include "image/engine.h"

namespace daxstore {

using image::EntryPba;
using image::EntryPresent;
using image::Lane;

namespace {

// Walks an iovec array as one byte stream.
class Cursor {
 public:
  explicit Cursor(std::span<const iovec> iov) : iov_(iov) {}
  // When the next n bytes are contiguous, a pointer to them; else null.
  uint8_t* Contiguous(size_t n) {
    Settle();
    if (i_ < iov_.size() && iov_[i_].iov_len - off_ >= n) {
      return static_cast<uint8_t*>(iov_[i_].iov_base) + off_;
    }
    return nullptr;
  }
  // Copies the next n bytes to dst (from==true) or src into them.
  void Out(void* dst, size_t n) {
    Walk(n, [&](uint8_t* p, size_t k) {
      std::memcpy(dst, p, k);
      dst = static_cast<uint8_t*>(dst) + k;
    });
  }
  // Copies n bytes from src into the next n bytes with copy(dst, src, k),
  // which returns false on a fault; false if any piece faulted.
  template <typename Copy>
  bool In(const uint8_t* src, size_t n, Copy copy) {
    bool ok = true;
    Walk(n, [&](uint8_t* p, size_t k) {
      ok = ok && copy(p, src, k);
      src += k;
    });
    return ok;
  }
  void Zero(size_t n) {
    Walk(n, [](uint8_t* p, size_t k) { std::memset(p, 0, k); });
  }
  void Skip(size_t n) {
    Walk(n, [](uint8_t*, size_t) {});
  }

 private:
  void Settle() {
    while (i_ < iov_.size() && off_ == iov_[i_].iov_len) {
      i_++;
      off_ = 0;
    }
  }
  template <typename F>
  void Walk(size_t n, F f) {
    while (n) {
      Settle();
      size_t k = std::min(n, iov_[i_].iov_len - off_);
      f(static_cast<uint8_t*>(iov_[i_].iov_base) + off_, k);
      off_ += k;
      n -= k;
    }
  }
  std::span<const iovec> iov_;
  size_t i_ = 0, off_ = 0;
};

// Detect-zeroes: OR 256-byte chunks with independent accumulators (the
// compiler can keep them in vector registers) and stop at the first chunk
// that is not zero, which for most data is the first.
bool AllZero(const uint8_t* p, size_t n) {
  size_t i = 0;
  for (; i + 256 <= n; i += 256) {
    uint64_t acc[4] = {0, 0, 0, 0};
    for (size_t j = 0; j < 256; j += 32) {
      for (size_t k = 0; k < 4; k++) {
        uint64_t w;
        std::memcpy(&w, p + i + j + 8 * k, 8);
        acc[k] |= w;
      }
    }
    if (acc[0] | acc[1] | acc[2] | acc[3]) return false;
  }
  for (; i < n; i++) {
    if (p[i]) return false;
  }
  return true;
}

// Bytes of a block checked for zeros before it is copied.
constexpr size_t kZeroProbe = 256;

// Copies a block's data into unpublished block pba without a fence: the
// copy's drain and the redo record's flush then share Commit's fence.
void StoreBlock(const Image::State& s, uint64_t pba, const uint8_t* data) {
  s.m.MemcpyPersist(s.Block(pba), data, s.bs(),
                    kCopyNonTemporal | kCopyNoDrain);
}

// Gives back a block StoreBlock may have written but that is not published.
void UnstoreBlock(Image::State& s, Lane& lane, uint64_t pba) {
  // Our copy has landed before another lane may allocate and write the
  // block, so a late store of ours cannot overwrite its data.
  s.m.Drain();
  s.GiveBack(lane, pba);
}

// The block a whole-block write of `data` goes to (Allocate), or kNoBlock
// when the data is all zeros and no block is free. *check: the data's
// first kZeroProbe bytes are zero, so the rest must be checked (Fill).
Result<uint64_t> TakeBlock(Image::State& s, Lane& lane, const uint8_t* data,
                           bool* check) {
  *check = s.detect_zeroes.load(std::memory_order_relaxed) &&
           AllZero(data, kZeroProbe);
  Result<uint64_t> pba = s.Allocate(lane);
  if (!pba.ok() && pba.status().kind() == ErrorKind::kNoSpace && *check &&
      AllZero(data, s.bs())) {
    return image::kNoBlock;  // a full image still takes zero writes
  }
  return pba;
}

size_t Total(std::span<const iovec> iov) {
  size_t n = 0;
  for (const iovec& v : iov) n += v.iov_len;
  return n;
}

bool InRange(const Image::State& s, uint64_t offset, uint64_t n) {
  return offset <= s.sb.virtual_size && n <= s.sb.virtual_size - offset;
}

Status RangeError(const Image::State& s, uint64_t offset, uint64_t n) {
  return InvalidArgument("I/O at " + std::to_string(offset) + "+" +
                         std::to_string(n) + " is beyond the " +
                         std::to_string(s.sb.virtual_size) +
                         "-byte virtual size of " + s.m.info().path);
}

Status CheckRange(const Image::State& s, uint64_t offset, uint64_t n) {
  if (!InRange(s, offset, n)) return RangeError(s, offset, n);
  return Status::Ok();
}

// Hands [in, in+len) of virtual block lba of volume `vol` to
// emit(src, len), src null for a hole; emit returns false when its copy
// faulted (State::CopyOut). First without the stripe lock, keeping the
// copy only if no writer took the lock meanwhile (the block may have been
// freed and reused under it); else again holding the lock shared, so the
// block cannot be replaced. emit must tolerate a second call that
// overwrites the first's output. A bad block fails the read (media.h).
template <typename Emit>
Status ReadBlock(const Image::State& s, uint32_t vol, uint64_t lba, size_t in,
                 size_t len, Emit emit) {
  auto copy = [&](uint64_t e) {
    if (!EntryPresent(e)) return emit(nullptr, len);
    const uint64_t pba = EntryPba(e);
    // One predictable branch on healthy media.
    if (s.bad.any() && s.bad.Contains(pba)) [[unlikely]]
      return false;
    return emit(s.Block(pba) + in, len);
  };
  image::Stripe& stripe = s.StripeOf(vol, lba);
  if (const uint64_t seq = stripe.Begin(); seq != image::Stripe::kBusy) {
    const uint64_t e = s.LoadEntry(vol, lba);
    if (s.EntryOk(e) && copy(e) && stripe.Valid(seq)) return Status::Ok();
  }
  std::shared_lock lock(stripe.mu);
  const uint64_t e = s.LoadEntry(vol, lba);
  if (!s.EntryOk(e)) return s.EntryError(lba, e);
  if (!copy(e)) return s.ReadError(vol, lba, EntryPba(e));
  return Status::Ok();
}

// Writes [in, in+len) of block lba from `src` (null: zeros). Caller holds
// the lane.
Status WriteBlock(Image::State& s, Lane& lane, uint32_t slot, uint64_t lba,
                  size_t in, size_t len, Cursor* src) {
  const size_t bs = s.bs();
  if (lane.scratch.size() != bs) lane.scratch.resize(bs);
  uint8_t* buf = lane.scratch.data();
  const bool whole = in == 0 && len == bs;
  uint64_t pba = image::kNoBlock;
  image::Stripe::Writer lock(s.StripeOf(slot, lba));

  const uint8_t* data = nullptr;
  bool check = false;  // the rest of a whole block may be zeros
  if (whole) {
    if (src) {
      data = src->Contiguous(bs);
      if (data) {
        src->Skip(bs);
      } else {
        src->Out(buf, bs);
        data = buf;
      }
    }
    // The stripe lock is taken before the copy: a locked instruction after
    // it waits for the non-temporal stores to drain on their own (as
    // Commit's ref lock does, taken only for a shared old block).
    lock.lock();
    if (data) {
      DAXSTORE_ASSIGN_OR_RETURN(pba, TakeBlock(s, lane, data, &check));
    }
  } else {
    // Read-modify-write under the lock, so concurrent partial writes to
    // one block do not lose each other's bytes.
    lock.lock();
    uint64_t old = s.LoadEntry(slot, lba);
    if (!s.EntryOk(old)) return s.MarkCorrupt(s.EntryError(lba, old));
    if (EntryPresent(old)) {
      // The rest of a bad block is unknown: refuse rather than guess it.
      if (!s.ReadData(buf, EntryPba(old), 0, bs)) {
        return s.PartialWriteError(slot, lba);
      }
    } else {
      std::memset(buf, 0, bs);
    }
    if (src) {
      src->Out(buf + in, len);
    } else {
      std::memset(buf + in, 0, len);
    }
    if (!s.detect_zeroes.load(std::memory_order_relaxed) || !AllZero(buf, bs)) {
      DAXSTORE_ASSIGN_OR_RETURN(pba, s.Allocate(lane));
      data = buf;
    }
  }
  // The copy goes out first: its stores drain while the map entry (whose
  // line WriteRange prefetched) and the old block's refcount arrive and
  // the CRC is computed; the record's fence in Commit covers it. A flush
  // evicts the lines it writes on some CPUs, so both refcounts may miss:
  // the new block's is stored after the fence, and a store that misses
  // holds up the next locked instruction.
  if (pba != image::kNoBlock) {
    s.PrefetchRef(pba);
    StoreBlock(s, pba, data);
  }
  uint64_t old = s.LoadEntry(slot, lba);
  Status st =
      s.EntryOk(old) ? Status::Ok() : s.MarkCorrupt(s.EntryError(lba, old));
  bool used = false;
  if (st.ok()) {
    if (EntryPresent(old)) s.PrefetchRef(EntryPba(old));
    // Data that is zero after its probe is checked while the copy drains,
    // so the check costs non-zero writes (almost) nothing; a zero write
    // pays for a copy it throws away. The CRC is computed from the
    // caller's buffer, also while the non-temporal stores drain.
    bool zero = false;
    uint32_t data_crc = 0;
    if (pba != image::kNoBlock) {
      zero = check && AllZero(data + kZeroProbe, bs - kZeroProbe);
      if (!zero) data_crc = image::DataCrc(data, bs);
    }
    // All zeros: the entry becomes a hole and the copy is given back.
    st = s.Commit(lane, slot, lba, old, zero ? image::kNoBlock : pba, data_crc,
                  &used);
  }
  if (pba != image::kNoBlock && !used) UnstoreBlock(s, lane, pba);
  return st;
}

Status WriteRange(Image::State& s, uint32_t slot, uint64_t offset, uint64_t n,
                  Cursor* src) {
  if (!s.writable) {
    return Status::Error(ErrorKind::kInvalidArgument,
                         s.m.info().path + " is open read-only", EROFS);
  }
  if (s.vols[slot].snapshot) {
    return Status::Error(ErrorKind::kInvalidArgument,
                         "volume '" + s.vols[slot].name + "' of " +
                             s.m.info().path +
                             " is a read-only snapshot; clone it to write",
                         EROFS);
  }
  if (s.corrupt.load(std::memory_order_acquire)) return s.CorruptError();
  DAXSTORE_RETURN_IF_ERROR(CheckRange(s, offset, n));
  if (!s.refs_verified.load(std::memory_order_acquire)) [[unlikely]] {
    // Once per open, with no write in flight (every lane held).
    auto lanes = s.LockAllLanes();
    DAXSTORE_RETURN_IF_ERROR(s.VerifyRefs());
  }
  // Held for the whole write: volume operations take every lane, so they
  // see no write in flight.
  if (n) {
    // The first block's map entry and stripe are on their way while the
    // lane is taken.
    const uint64_t lba = offset / s.bs();
    __builtin_prefetch(&s.MapOf(slot)[lba]);
    __builtin_prefetch(&s.StripeOf(slot, lba), 1);
  }
  Lane& lane = s.MyLane();
  std::lock_guard lane_lock(lane.mu);
  image::Tracking& t = s.tracking[slot];
  // Under the lane: Fence holds every lane while it sets the flag.
  if (t.fenced.load(std::memory_order_relaxed)) [[unlikely]] {
    return Status::Error(ErrorKind::kInvalidArgument, t.fence_why, EROFS);
  }
  const uint64_t bs = s.bs();
  // Marked after the blocks are written, still under the lane, whether or
  // not the write succeeded (a failed one may have written some blocks): a
  // mirror that takes the mark reads the new data, and one that holds
  // every lane finds every acknowledged write marked.
  struct MarkOnExit {
    DirtyBlocks* d;
    uint64_t first, last;
    ~MarkOnExit() {
      if (d) [[unlikely]]
        d->Mark(first, last);
    }
  } mark{t.dirty.load(std::memory_order_relaxed), offset / bs,
         n ? (offset + n - 1) / bs + 1 : offset / bs};
  while (n) {
    uint64_t lba = offset / bs;
    size_t in = offset % bs;
    size_t len = std::min<uint64_t>(n, bs - in);
    if (n > len) __builtin_prefetch(&s.MapOf(slot)[lba + 1]);
    DAXSTORE_RETURN_IF_ERROR(WriteBlock(s, lane, slot, lba, in, len, src));
    offset += len;
    n -= len;
  }
  return Status::Ok();
}

}  // namespace

Status Image::Readv(uint64_t offset, std::span<const iovec> iov) const {
  const State& s = *s_;
  uint64_t n = Total(iov);
  if (!InRange(s, offset, n)) return RangeError(s, offset, n);
  if (n == 0) return Status::Ok();
  const uint64_t mask = s.bs() - 1;
  if (iov.size() == 1 && (offset & mask) + n <= s.bs()) {
    // One buffer inside one block (most reads): no cursor, no loop.
    auto* dst = static_cast<uint8_t*>(iov[0].iov_base);
    return ReadBlock(s, vol_, offset >> s.block_shift, offset & mask, n,
                     [&s, dst](const uint8_t* src, size_t k) {
                       if (src) return s.CopyOut(dst, src, k);
                       std::memset(dst, 0, k);
                       return true;
                     });
  }
  Cursor dst(iov);
  Cursor next = dst;
  // A second call restarts from where the first began.
  auto emit = [&s, &dst, &next](const uint8_t* src, size_t k) {
    next = dst;
    if (!src) {
      next.Zero(k);
      return true;
    }
    return next.In(src, k, [&s](uint8_t* to, const uint8_t* from, size_t m) {
      return s.CopyOut(to, from, m);
    });
  };
  while (n) {
    size_t in = offset & mask;
    size_t len = std::min<uint64_t>(n, s.bs() - in);
    DAXSTORE_RETURN_IF_ERROR(
        ReadBlock(s, vol_, offset >> s.block_shift, in, len, emit));
    dst = next;
    offset += len;
    n -= len;
  }
  return Status::Ok();
}

Status Image::Read(uint64_t offset, void* buf, size_t n) const {
  iovec v{buf, n};
  return Readv(offset, {&v, 1});
}

Status Image::Writev(uint64_t offset, std::span<const iovec> iov) {
  Cursor src(iov);
  return WriteRange(*s_, vol_, offset, Total(iov), &src);
}

Status Image::Write(uint64_t offset, const void* buf, size_t n) {
  iovec v{const_cast<void*>(buf), n};
  return Writev(offset, {&v, 1});
}

Status Image::WriteZeroes(uint64_t offset, uint64_t n) {
  return WriteRange(*s_, vol_, offset, n, nullptr);
}

Status Image::Discard(uint64_t offset, uint64_t n) {
  return WriteZeroes(offset, n);
}

void Image::set_detect_zeroes(bool on) {
  s_->detect_zeroes.store(on, std::memory_order_relaxed);
}

Status Image::Flush() {
  // Every write is durable when it returns (its data and redo record; a
  // deferred map update is redone by recovery); the fence orders the rest.
  s_->m.Drain();
  return Status::Ok();
}

}  // namespace daxstore
