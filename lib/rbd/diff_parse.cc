// The strict RBD diff v1 parser (include/daxstore/rbd_diff.h).
#include <algorithm>
#include <cstring>
#include <vector>

#include "daxstore/rbd_diff.h"

namespace daxstore::rbd {
namespace {

constexpr size_t kChunk = 1u << 20;  // data handed to the visitor at once

// Reads exact byte counts from the source, counting the stream offset.
class Reader {
 public:
  explicit Reader(const DiffSource& in) : in_(in) {}
  uint64_t pos() const { return pos_; }

  // Fills buf whole; kCorruption naming `what` if the stream ends first.
  Status Exact(std::span<uint8_t> buf, const char* what) {
    size_t done = 0;
    while (done < buf.size()) {
      auto r = in_(buf.subspan(done));
      if (!r.ok()) return r.status();
      if (*r == 0) {
        return Corruption("rbd diff: the stream ends at byte " +
                          std::to_string(pos_ + done) + " inside " + what +
                          " (truncated)");
      }
      done += *r;
    }
    pos_ += done;
    return Status::Ok();
  }
  Result<uint64_t> Le(int bytes, const char* what) {
    uint8_t b[8];
    DAXSTORE_RETURN_IF_ERROR(Exact({b, static_cast<size_t>(bytes)}, what));
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = v << 8 | b[i];
    return v;
  }
  // True at the end of the source (one byte is read otherwise).
  Result<bool> AtEnd() {
    uint8_t b;
    auto r = in_({&b, 1});
    if (!r.ok()) return r.status();
    return *r == 0;
  }

 private:
  const DiffSource& in_;
  uint64_t pos_ = 0;
};

Status Bad(uint64_t at, const std::string& what) {
  return Corruption("rbd diff: byte " + std::to_string(at) + ": " + what);
}

}  // namespace

Status ParseDiff(const DiffSource& in, DiffVisitor& visitor) {
  Reader r(in);
  const std::string magic = "rbd diff v1\n";
  uint8_t head[12];
  DAXSTORE_RETURN_IF_ERROR(r.Exact(head, "the header"));
  if (std::memcmp(head, magic.data(), magic.size()) != 0) {
    return Bad(0,
               "not an RBD diff v1 stream (the header is not \"rbd diff "
               "v1\\n\"; v2 streams are not read)");
  }
  DiffHeader h;
  bool have_size = false, have_from = false, have_to = false;
  bool data = false;  // a data record was seen: no more metadata
  std::vector<uint8_t> buf;
  for (;;) {
    const uint64_t at = r.pos();
    uint8_t tag;
    DAXSTORE_RETURN_IF_ERROR(r.Exact({&tag, 1}, "a record tag (no end mark)"));
    switch (tag) {
      case 'f':
      case 't': {
        if (data) return Bad(at, "a snapshot name after a data record");
        bool& seen = tag == 'f' ? have_from : have_to;
        if (seen)
          return Bad(at, std::string("a second '") + static_cast<char>(tag) +
                             "' record");
        seen = true;
        DAXSTORE_ASSIGN_OR_RETURN(uint64_t len, r.Le(4, "a snapshot name"));
        if (len == 0 || len > kMaxSnapName) {
          return Bad(at, "a snapshot name of " + std::to_string(len) +
                             " bytes (1 to " + std::to_string(kMaxSnapName) +
                             " allowed)");
        }
        std::string name(len, '\0');
        DAXSTORE_RETURN_IF_ERROR(
            r.Exact({reinterpret_cast<uint8_t*>(name.data()), name.size()},
                    "a snapshot name"));
        (tag == 'f' ? h.from_snap : h.to_snap) = std::move(name);
        break;
      }
      case 's': {
        if (data) return Bad(at, "a size record after a data record");
        if (have_size) return Bad(at, "a second size record");
        have_size = true;
        DAXSTORE_ASSIGN_OR_RETURN(h.size, r.Le(8, "the size record"));
        break;
      }
      case 'w':
      case 'z': {
        if (!data) {
          if (!have_size) return Bad(at, "a data record before the size");
          DAXSTORE_RETURN_IF_ERROR(visitor.Header(h));
          data = true;
        }
        DAXSTORE_ASSIGN_OR_RETURN(uint64_t off, r.Le(8, "a data record"));
        DAXSTORE_ASSIGN_OR_RETURN(uint64_t len, r.Le(8, "a data record"));
        if (off > h.size || len > h.size - off) {
          return Bad(at, std::string("a '") + static_cast<char>(tag) +
                             "' record for " + std::to_string(off) + "+" +
                             std::to_string(len) + " past the " +
                             std::to_string(h.size) + "-byte image");
        }
        if (tag == 'z') {
          DAXSTORE_RETURN_IF_ERROR(visitor.Zero(off, len));
          break;
        }
        for (uint64_t done = 0; done < len;) {
          const size_t n =
              static_cast<size_t>(std::min<uint64_t>(kChunk, len - done));
          buf.resize(n);
          DAXSTORE_RETURN_IF_ERROR(r.Exact(buf, "the data of a 'w' record"));
          DAXSTORE_RETURN_IF_ERROR(visitor.Data(off + done, buf));
          done += n;
        }
        break;
      }
      case 'e': {
        if (!have_size) return Bad(at, "the end mark before the size");
        if (!data) DAXSTORE_RETURN_IF_ERROR(visitor.Header(h));
        DAXSTORE_ASSIGN_OR_RETURN(bool end, r.AtEnd());
        if (!end) return Bad(at + 1, "bytes after the end mark");
        return Status::Ok();
      }
      default:
        return Bad(
            at, "unknown record tag 0x" + [&] {
              const char* hex = "0123456789abcdef";
              return std::string{hex[tag >> 4], hex[tag & 15]};
            }());
    }
  }
}

}  // namespace daxstore::rbd
