// The RBD incremental-backup stream, version 1 ("rbd diff v1\n", Ceph's
// doc/dev/rbd-diff.rst): what `rbd export-diff` writes and `rbd
// import-diff` reads. Layout: the header, metadata records ('f' from-snap
// name, 't' to-snap name, each le32 length + bytes; 's' le64 image size),
// then data records ('w' le64 offset, le64 length, the bytes; 'z' le64
// offset, le64 length: the range reads as zeros), then 'e'.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "daxstore/image.h"
#include "daxstore/status.h"

namespace daxstore::rbd {

// Where a stream goes: called with consecutive pieces of it.
using DiffSink = std::function<Status(std::span<const uint8_t>)>;
// Where a stream comes from: fills up to buf.size() bytes, returns how
// many (0 only at the end of the stream).
using DiffSource = std::function<Result<size_t>(std::span<uint8_t>)>;

// Longest snapshot name a stream may carry (daxstore names: 63 bytes).
inline constexpr uint32_t kMaxSnapName = 4096;

struct DiffStats {
  uint64_t data_bytes = 0;  // in 'w' records
  uint64_t zero_bytes = 0;  // in 'z' records
  uint64_t records = 0;     // 'w' and 'z' records
};

// Writes the diff from snapshot `from` ("" for none: every mapped block is
// sent as data) to volume `to` of `image`. The changed blocks come from
// the two block maps (Image::Changes): blocks whose entries are equal are
// not read; a block mapped in `from` and a hole in `to` is a 'z' record;
// holes in both are not sent. The size record is the virtual size.
[[nodiscard]] Result<DiffStats> WriteDiff(const Image& image,
                                          const std::string& from,
                                          const std::string& to,
                                          const DiffSink& out);

struct DiffHeader {
  std::string from_snap;  // "" when the stream has no 'f' record
  std::string to_snap;    // "" when the stream has no 't' record
  uint64_t size = 0;      // the 's' record (required)
};

// What a parsed stream is handed to, in stream order.
class DiffVisitor {
 public:
  virtual ~DiffVisitor() = default;
  // Once, after the metadata, before any data record.
  virtual Status Header(const DiffHeader& h) = 0;
  // Part of a 'w' record: `data` belongs at `offset` (a record longer
  // than the parser's buffer arrives in several calls).
  virtual Status Data(uint64_t offset, std::span<const uint8_t> data) = 0;
  virtual Status Zero(uint64_t offset, uint64_t length) = 0;
};

// Reads one whole stream strictly, up to and including 'e' and the end of
// the source. Fails with kCorruption, naming the byte offset, on a bad
// header, an unknown tag, a metadata record after data, a missing or
// repeated size record, a name longer than kMaxSnapName, a record past the
// size, a truncated record, a missing end mark or bytes after it; the
// visitor's own failures are returned as they are. A failure may come
// after the visitor has seen part of the stream: stage what it applies.
[[nodiscard]] Status ParseDiff(const DiffSource& in, DiffVisitor& visitor);

// Volumes ImportDiff stages a stream in; a leftover one (a crash during an
// import) is deleted with `daxstore image delete`.
inline constexpr const char* kStageVolume = "rbd-import.stage";
inline constexpr const char* kStageSnapshot = "rbd-import.base";

// Applies a stream to volume `volume` ("" the default) of `image`, then
// takes the stream's to-snapshot of it, as `rbd import-diff` does. Checks
// first that the from-snapshot exists, that the to-snapshot does not and
// that the size equals the virtual size (kUnsupported otherwise: images
// are not resized). Crash safety: the whole stream goes into a staging
// clone (of the from-snapshot, or of a staging snapshot of the volume);
// only after the end mark are the staged ranges copied into the volume and
// the snapshot taken, so a bad or truncated stream leaves the image as it
// was (the staging volumes are deleted). Needs two free volume slots (three
// without a from-snapshot) besides the to-snapshot's.
[[nodiscard]] Result<DiffStats> ImportDiff(const Image& image,
                                           const std::string& volume,
                                           const DiffSource& in);

}  // namespace daxstore::rbd
