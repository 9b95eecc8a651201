// The simulator's buffers, its persist functions and the table that binds a
// simulator to plain function pointers (a Mapping's data path takes no
// context argument, so each live simulator owns one slot of generated
// functions).
#include "powerfail/simulator.h"

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <utility>

namespace daxstore::powerfail {
namespace {

std::array<std::atomic<Simulator*>, Simulator::kMaxLive> g_slots{};

template <int S>
struct SlotFns {
  static Simulator* Sim() { return g_slots[S].load(std::memory_order_acquire); }
  static void Persist(const void* p, size_t n) { Sim()->Persist(p, n); }
  static void Flush(const void* p, size_t n) { Sim()->Flush(p, n); }
  static void Drain() { Sim()->Drain(); }
  static void* Copy(void* d, const void* s, size_t n, unsigned f) {
    return Sim()->Copy(d, s, n, f);
  }
  static void* Set(void* d, int c, size_t n, unsigned f) {
    return Sim()->Set(d, c, n, f);
  }
  static constexpr PersistOps kOps{&Persist, &Flush, &Drain,
                                   &Copy,    &Copy,  &Set};
};

template <int... S>
constexpr std::array<PersistOps, sizeof...(S)> MakeTable(
    std::integer_sequence<int, S...>) {
  return {SlotFns<S>::kOps...};
}
constexpr auto kTable =
    MakeTable(std::make_integer_sequence<int, Simulator::kMaxLive>{});

uint64_t ThisThread() {
  return std::hash<std::thread::id>{}(std::this_thread::get_id());
}

}  // namespace

Simulator::Simulator(size_t size) : size_(size), media_(size, 0) {}

Simulator::~Simulator() {
  if (slot_ >= 0) g_slots[slot_].store(nullptr, std::memory_order_release);
  std::free(working_);
}

Result<std::shared_ptr<Simulator>> Simulator::Create(size_t size) {
  if (size == 0) return InvalidArgument("a simulator needs a size");
  size = (size + kLine - 1) / kLine * kLine;
  std::shared_ptr<Simulator> sim(new Simulator(size));
  // aligned_alloc wants a multiple of the alignment; the tail is unused.
  const size_t alloc = (size + 4095) / 4096 * 4096;
  sim->working_ = static_cast<uint8_t*>(std::aligned_alloc(4096, alloc));
  if (!sim->working_) {
    return NoSpace("cannot allocate " + std::to_string(size) +
                   " bytes of simulated pmem");
  }
  std::memset(sim->working_, 0, size);
  for (int i = 0; i < kMaxLive; ++i) {
    Simulator* expect = nullptr;
    if (g_slots[i].compare_exchange_strong(expect, sim.get())) {
      sim->slot_ = i;
      return sim;
    }
  }
  return Busy("more than " + std::to_string(kMaxLive) +
              " power-failure simulators alive at once");
}

Result<std::shared_ptr<Simulator>> Simulator::FromImage(
    std::span<const uint8_t> image) {
  DAXSTORE_ASSIGN_OR_RETURN(auto sim, Create(image.size()));
  std::memcpy(sim->working_, image.data(), image.size());
  std::memcpy(sim->media_.data(), image.data(), image.size());
  return sim;
}

Result<Mapping> Simulator::Map() {
  return Mapping::FromMemory(working_, size_, Granularity::kCacheLine,
                             kTable[slot_], shared_from_this(),
                             "simulated-pmem-" + std::to_string(slot_));
}

std::vector<uint8_t> Simulator::Media() const {
  std::lock_guard<std::mutex> lock(mu_);
  return media_;
}

std::vector<size_t> Simulator::DirtyLines() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<size_t> out;
  for (size_t l = 0; l < size_ / kLine; ++l) {
    if (std::memcmp(working_ + l * kLine, media_.data() + l * kLine, kLine)) {
      out.push_back(l);
    }
  }
  return out;
}

uint64_t Simulator::fences() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fences_;
}

void Simulator::SetBeforeFence(std::function<void(uint64_t)> hook) {
  std::lock_guard<std::mutex> lock(mu_);
  before_fence_ = std::move(hook);
}

CrashPoint Simulator::Capture() const {
  std::lock_guard<std::mutex> lock(mu_);
  CrashPoint pt;
  pt.fence = fences_;
  pt.media = media_;
  for (size_t l = 0; l < size_ / kLine; ++l) {
    const uint8_t* w = working_ + l * kLine;
    if (std::memcmp(w, media_.data() + l * kLine, kLine)) {
      pt.dirty.push_back(l);
      pt.dirty_data.insert(pt.dirty_data.end(), w, w + kLine);
    }
  }
  return pt;
}

std::vector<uint8_t> Materialize(const CrashPoint& pt,
                                 const std::function<Fate(size_t)>& pick,
                                 std::mt19937_64& rng) {
  std::vector<uint8_t> img = pt.media;
  for (size_t i = 0; i < pt.dirty.size(); ++i) {
    uint8_t* m = img.data() + pt.dirty[i] * kLine;
    const uint8_t* w = pt.dirty_data.data() + i * kLine;
    switch (pick(i)) {
      case Fate::kLost:
        break;
      case Fate::kKept:
        std::memcpy(m, w, kLine);
        break;
      case Fate::kPartial: {
        uint64_t mask = rng();
        for (size_t k = 0; k < kLine / kWord; ++k) {
          if (mask >> k & 1) std::memcpy(m + k * kWord, w + k * kWord, kWord);
        }
        break;
      }
    }
  }
  return img;
}

void Simulator::CheckRange(const void* p, size_t n, const char* what) const {
  auto* b = static_cast<const uint8_t*>(p);
  if (b < working_ || n > size_ || b + n > working_ + size_) {
    std::fprintf(stderr,
                 "powerfail: %s of %zu bytes at %p outside [%p, +%zu)\n", what,
                 n, p, static_cast<void*>(working_), size_);
    std::abort();  // a bug in the caller: libpmem2 would corrupt memory
  }
}

void Simulator::Flush(const void* p, size_t n) {
  CheckRange(p, n, "flush");
  if (n == 0) return;
  size_t off = static_cast<const uint8_t*>(p) - working_;
  size_t first = off / kLine, last = (off + n - 1) / kLine;
  uint64_t me = ThisThread();
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t l = first; l <= last; ++l) {
    Pending e{l, me, {}};
    std::memcpy(e.data, working_ + l * kLine, kLine);
    pending_.push_back(e);
  }
}

void Simulator::Drain() {
  std::function<void(uint64_t)> hook;
  uint64_t before = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    hook = before_fence_;
    before = fences_;
  }
  if (hook) hook(before);
  uint64_t me = ThisThread();
  std::lock_guard<std::mutex> lock(mu_);
  size_t keep = 0;
  for (size_t i = 0; i < pending_.size(); ++i) {
    if (pending_[i].thread == me) {
      std::memcpy(media_.data() + pending_[i].line * kLine, pending_[i].data,
                  kLine);
    } else {
      pending_[keep++] = pending_[i];
    }
  }
  pending_.resize(keep);
  ++fences_;
}

void Simulator::Persist(const void* p, size_t n) {
  Flush(p, n);
  Drain();
}

void Simulator::Finish(void* dst, size_t n, unsigned flags) {
  if (flags & kCopyNoFlush) return;
  Flush(dst, n);
  if (!(flags & kCopyNoDrain)) Drain();
}

void* Simulator::Copy(void* dst, const void* src, size_t n, unsigned flags) {
  CheckRange(dst, n, "copy");
  std::memmove(dst, src, n);
  Finish(dst, n, flags);
  return dst;
}

void* Simulator::Set(void* dst, int c, size_t n, unsigned flags) {
  CheckRange(dst, n, "set");
  std::memset(dst, c, n);
  Finish(dst, n, flags);
  return dst;
}

}  // namespace daxstore::powerfail
