// What the image crash tests check a recovered image against: every
// volume's content after each acknowledged step of a run recorded on the
// power-failure simulator, and the block-by-block "old or new" check.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "daxstore/image.h"
#include "testing/image_model.h"

namespace daxstore::testing {

// Every volume's content, by name.
using VolumeStates = std::map<std::string, DiskModel>;

struct CrashTrace {
  std::vector<VolumeStates> states;  // states[0]: before the first step
  std::vector<uint64_t> acked_at;    // fences done when step i returned

  // Steps acknowledged once `fence` fences are done.
  size_t Done(uint64_t fence) const {
    size_t done = 0;
    while (done < acked_at.size() && acked_at[done] <= fence) done++;
    return done;
  }
  // The content acknowledged at `fence`, and the content after the step
  // then in flight.
  const VolumeStates& Acked(uint64_t fence) const {
    return states[Done(fence)];
  }
  const VolumeStates& Next(uint64_t fence) const {
    return states[std::min(Done(fence) + 1, states.size() - 1)];
  }
};

// Reads every volume of `img` (`size` bytes each).
inline Result<VolumeStates> ReadVolumes(const Image& img, uint64_t size) {
  VolumeStates out;
  DAXSTORE_ASSIGN_OR_RETURN(std::vector<VolumeInfo> vols, img.Volumes());
  std::vector<uint8_t> d(size);
  for (const VolumeInfo& v : vols) {
    DAXSTORE_ASSIGN_OR_RETURN(Image h, img.OpenVolume(v.name));
    DAXSTORE_RETURN_IF_ERROR(h.Read(0, d.data(), d.size()));
    DiskModel m(size);
    m.Write(0, d.data(), d.size());
    out.emplace(v.name, std::move(m));
  }
  return out;
}

// Every `bs`-byte block of every volume of `img` reads as in `acked` or as
// in `next` (a volume only one of them has is compared with that one):
// with one step in flight, each block is old or new, whole. `when` names
// the point in failures.
inline Status BlocksOldOrNew(const Image& img, const VolumeStates& acked,
                             const VolumeStates& next, uint64_t bs,
                             const std::string& when) {
  DAXSTORE_ASSIGN_OR_RETURN(std::vector<VolumeInfo> vols, img.Volumes());
  std::vector<uint8_t> buf(bs);
  for (const VolumeInfo& v : vols) {
    DAXSTORE_ASSIGN_OR_RETURN(Image h, img.OpenVolume(v.name));
    auto a = acked.find(v.name), n = next.find(v.name);
    const uint64_t size = a != acked.end()
                              ? a->second.size()
                              : (n != next.end() ? n->second.size() : 0);
    for (uint64_t off = 0; off < size; off += bs) {
      DAXSTORE_RETURN_IF_ERROR(h.Read(off, buf.data(), bs));
      const bool ok = (a != acked.end() &&
                       std::memcmp(buf.data(), a->second.at(off), bs) == 0) ||
                      (n != next.end() &&
                       std::memcmp(buf.data(), n->second.at(off), bs) == 0);
      if (!ok) {
        return Corruption("volume " + v.name + " block " +
                          std::to_string(off / bs) + " " + when +
                          " is neither old nor new");
      }
    }
  }
  return Status::Ok();
}

}  // namespace daxstore::testing
