// Write tracking and fences for a mirror (Image::TrackWrites, Image::Fence).
// Each change holds every lane, so no write is in flight across it: a
// write sees the tracker and fence of its volume under its lane (io.cc).
#include "image/engine.h"

namespace daxstore {

Status Image::TrackWrites(std::shared_ptr<DirtyBlocks> dirty) {
  State& s = *s_;
  if (!dirty || dirty->blocks() != s.sb.virtual_blocks) {
    return InvalidArgument("a write tracker needs one bit per virtual block (" +
                           std::to_string(s.sb.virtual_blocks) + ")");
  }
  std::shared_lock vlock(s.vol_mu);
  auto lanes = s.LockAllLanes();  // no write in flight
  image::Tracking& t = s.tracking[vol_];
  if (t.owner) {
    return Busy("volume '" + s.vols[vol_].name +
                "' already has a write tracker (a mirror runs)");
  }
  t.owner = std::move(dirty);
  t.dirty.store(t.owner.get(), std::memory_order_relaxed);
  return Status::Ok();
}

void Image::StopTrackingWrites() {
  State& s = *s_;
  std::shared_lock vlock(s.vol_mu);
  auto lanes = s.LockAllLanes();  // no write in flight
  image::Tracking& t = s.tracking[vol_];
  t.dirty.store(nullptr, std::memory_order_relaxed);
  t.owner.reset();
}

void Image::Fence(const std::string& why) {
  State& s = *s_;
  std::shared_lock vlock(s.vol_mu);
  auto lanes = s.LockAllLanes();  // no write in flight
  image::Tracking& t = s.tracking[vol_];
  t.fence_why = why;
  t.fenced.store(true, std::memory_order_relaxed);
}

void Image::Unfence() {
  State& s = *s_;
  std::shared_lock vlock(s.vol_mu);
  auto lanes = s.LockAllLanes();  // no write in flight
  s.tracking[vol_].fenced.store(false, std::memory_order_relaxed);
}

}  // namespace daxstore
