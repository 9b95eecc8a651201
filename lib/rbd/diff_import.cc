// Applying an RBD diff v1 stream to an image through a staging clone
// (include/daxstore/rbd_diff.h).
#include <algorithm>
#include <optional>
#include <vector>

#include "daxstore/rbd_diff.h"

namespace daxstore::rbd {
namespace {

constexpr size_t kChunk = 4u << 20;

bool Exists(const Image& image, const std::string& name) {
  return image.OpenVolume(name).ok();
}

class Stager : public DiffVisitor {
 public:
  Stager(const Image& image, Image& target) : image_(image), target_(target) {}

  Status Header(const DiffHeader& h) override {
    h_ = h;
    if (!h.from_snap.empty() && !Exists(image_, h.from_snap)) {
      return NotFound("the diff starts from snapshot '" + h.from_snap +
                      "', which the image does not have; import the diff "
                      "that creates it first");
    }
    if (!h.to_snap.empty() && Exists(image_, h.to_snap)) {
      return Busy("the image already has a volume '" + h.to_snap +
                  "', the diff's to-snapshot; delete it to import again");
    }
    if (h.size != target_.virtual_size()) {
      return Unsupported("the diff is of a " + std::to_string(h.size) +
                         "-byte image, this one has " +
                         std::to_string(target_.virtual_size()) +
                         " bytes; daxstore images are not resized: import "
                         "into an image of the diff's size");
    }
    if (Exists(image_, kStageVolume) || Exists(image_, kStageSnapshot)) {
      return Busy(std::string("the image holds a staging volume of an "
                              "interrupted import (") +
                  kStageVolume + " or " + kStageSnapshot +
                  "); delete it with 'daxstore image delete' and import the "
                  "same diff again");
    }
    // Every slot the import takes is free before anything changes: the
    // staging clone, a staging snapshot without a from-snapshot, and the
    // to-snapshot, taken while the staging volumes still hold theirs.
    auto info = image_.Info();
    if (!info.ok()) return info.status();
    auto vols = image_.Volumes();
    if (!vols.ok()) return vols.status();
    const size_t need =
        1 + (h.from_snap.empty() ? 1 : 0) + (h.to_snap.empty() ? 0 : 1);
    const size_t free = info->max_volumes - vols->size();
    if (free < need) {
      return NoSpace("importing this diff takes " + std::to_string(need) +
                     " free volume slots (staging" +
                     (h.to_snap.empty() ? "" : " and the to-snapshot") +
                     "), the image has " + std::to_string(free) + " of " +
                     std::to_string(info->max_volumes) +
                     "; delete a snapshot or clone, or import into an image "
                     "with more --max-volumes");
    }
    std::string parent = h.from_snap;
    if (parent.empty()) {
      DAXSTORE_RETURN_IF_ERROR(target_.Snapshot(kStageSnapshot));
      made_snap_ = true;
      parent = kStageSnapshot;
    }
    DAXSTORE_RETURN_IF_ERROR(target_.Clone(parent, kStageVolume));
    made_stage_ = true;
    auto st = image_.OpenVolume(kStageVolume);
    if (!st.ok()) return st.status();
    stage_.emplace(std::move(*st));
    return Status::Ok();
  }
  Status Data(uint64_t offset, std::span<const uint8_t> data) override {
    Note(offset, data.size());
    stats_.data_bytes += data.size();
    return stage_->Write(offset, data.data(), data.size());
  }
  Status Zero(uint64_t offset, uint64_t length) override {
    Note(offset, length);
    stats_.zero_bytes += length;
    return stage_->WriteZeroes(offset, length);
  }

  // After the end mark: the staged ranges into the target, then the
  // to-snapshot.
  Status Commit() {
    if (!stage_) return Status::Ok();  // an empty stream: nothing staged
    std::sort(ranges_.begin(), ranges_.end());
    std::vector<uint8_t> buf;
    for (auto [off, len] : ranges_) {
      auto ext = stage_->Extents(off, len);
      if (!ext.ok()) return ext.status();
      for (const Extent& e : *ext) {
        if (e.hole) {
          DAXSTORE_RETURN_IF_ERROR(target_.WriteZeroes(e.offset, e.length));
          continue;
        }
        for (uint64_t o = e.offset; o < e.offset + e.length; o += kChunk) {
          const size_t n = static_cast<size_t>(
              std::min<uint64_t>(kChunk, e.offset + e.length - o));
          buf.resize(n);
          DAXSTORE_RETURN_IF_ERROR(stage_->Read(o, buf.data(), n));
          DAXSTORE_RETURN_IF_ERROR(target_.Write(o, buf.data(), n));
        }
      }
    }
    // Every staged range is durable in the target (each write is durable
    // on return) before the to-snapshot freezes it.
    if (!h_.to_snap.empty()) {
      DAXSTORE_RETURN_IF_ERROR(target_.Snapshot(h_.to_snap));
    }
    return Status::Ok();
  }
  // Deletes the staging volumes this import made.
  Status Cleanup() {
    stage_.reset();  // DeleteVolume refuses a volume with an open handle
    Status st = Status::Ok();
    if (made_stage_) st = target_.DeleteVolume(kStageVolume);
    if (made_snap_) {
      Status s2 = target_.DeleteVolume(kStageSnapshot);
      if (st.ok()) st = s2;
    }
    made_stage_ = made_snap_ = false;
    return st;
  }
  const DiffStats& stats() const { return stats_; }

 private:
  void Note(uint64_t offset, uint64_t length) {
    if (length == 0) return;
    if (!ranges_.empty() &&
        ranges_.back().first + ranges_.back().second == offset) {
      ranges_.back().second += length;  // a 'w' record in several pieces
    } else {
      ranges_.push_back({offset, length});
      stats_.records++;
    }
  }
  const Image& image_;
  Image& target_;
  DiffHeader h_;
  std::optional<Image> stage_;
  bool made_stage_ = false, made_snap_ = false;
  std::vector<std::pair<uint64_t, uint64_t>> ranges_;
  DiffStats stats_;
};

}  // namespace

Result<DiffStats> ImportDiff(const Image& image, const std::string& volume,
                             const DiffSource& in) {
  auto opened = image.OpenVolume(volume);
  if (!opened.ok()) return opened.status();
  Image target = std::move(*opened);
  if (target.read_only()) {
    return InvalidArgument("volume '" + target.volume() +
                           "' is read-only (a snapshot, or the image is open "
                           "read-only); import into a writable volume");
  }
  Stager stager(image, target);
  // The whole stream is durable in the staging clone before any byte of
  // the target changes.
  Status st = ParseDiff(in, stager);
  if (st.ok()) st = stager.Commit();
  Status cleaned = stager.Cleanup();
  if (!st.ok()) return st;
  if (!cleaned.ok()) return cleaned;
  return stager.stats();
}

}  // namespace daxstore::rbd
