// The RBD diff v1 writer (include/daxstore/rbd_diff.h).
#include <algorithm>
#include <vector>

#include "daxstore/rbd_diff.h"

namespace daxstore::rbd {
namespace {

constexpr size_t kChunk = 4u << 20;  // data read per Image::Read

void PutLe(std::vector<uint8_t>& b, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++)
    b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void PutName(std::vector<uint8_t>& b, char tag, const std::string& name) {
  b.push_back(static_cast<uint8_t>(tag));
  PutLe(b, name.size(), 4);
  b.insert(b.end(), name.begin(), name.end());
}

void PutRange(std::vector<uint8_t>& b, char tag, uint64_t off, uint64_t len) {
  b.push_back(static_cast<uint8_t>(tag));
  PutLe(b, off, 8);
  PutLe(b, len, 8);
}

}  // namespace

Result<DiffStats> WriteDiff(const Image& image, const std::string& from,
                            const std::string& to, const DiffSink& out) {
  auto opened = image.OpenVolume(to);
  if (!opened.ok()) return opened.status();
  const Image& img = *opened;
  std::vector<Extent> changes;
  if (from.empty()) {
    auto all = img.Extents(0, img.virtual_size());
    if (!all.ok()) return all.status();
    for (const Extent& e : *all) {
      if (!e.hole) changes.push_back(e);
    }
  } else {
    auto c = img.Changes(from);
    if (!c.ok()) return c.status();
    changes = std::move(*c);
  }
  std::vector<uint8_t> b;
  const std::string magic = "rbd diff v1\n";
  b.insert(b.end(), magic.begin(), magic.end());
  if (!from.empty()) PutName(b, 'f', from);
  PutName(b, 't', to);
  b.push_back('s');
  PutLe(b, img.virtual_size(), 8);
  DiffStats st;
  std::vector<uint8_t> buf;
  for (const Extent& e : changes) {
    st.records++;
    if (e.hole) {
      PutRange(b, 'z', e.offset, e.length);
      st.zero_bytes += e.length;
      continue;
    }
    PutRange(b, 'w', e.offset, e.length);
    DAXSTORE_RETURN_IF_ERROR(out(b));
    b.clear();
    for (uint64_t off = e.offset; off < e.offset + e.length; off += kChunk) {
      const size_t n = static_cast<size_t>(
          std::min<uint64_t>(kChunk, e.offset + e.length - off));
      buf.resize(n);
      DAXSTORE_RETURN_IF_ERROR(img.Read(off, buf.data(), n));
      DAXSTORE_RETURN_IF_ERROR(out(buf));
    }
    st.data_bytes += e.length;
  }
  b.push_back('e');
  DAXSTORE_RETURN_IF_ERROR(out(b));
  return st;
}

}  // namespace daxstore::rbd
