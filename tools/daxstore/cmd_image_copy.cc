// daxstore image import|export: raw disk files in and out of an image.
// Import skips zero blocks (holes stay holes); export writes a sparse file.
#include <fcntl.h>  // O_* flags for Platform::Open

#include <algorithm>
#include <cerrno>
#include <memory>
#include <vector>

#include "commands.h"
#include "daxstore/image.h"
#include "daxstore/size.h"
#include "identity.h"
#include "image_target.h"
#include "output.h"

namespace daxstore::cli {
namespace {

constexpr size_t kChunk = 4u << 20;  // large sequential I/O

struct CopyArgs {
  std::string src, dst, size, emulate, volume;
  uint32_t max_volumes = ImageOptions().max_volumes;
  bool force = false;
  bool overcommit = false;
};

bool Zero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != 0) return false;
  }
  return true;
}

void ReadFull(Platform& os, int fd, uint8_t* buf, size_t n, uint64_t off,
              const std::string& path) {
  size_t done = 0;
  while (done < n) {
    auto r = os.PRead(fd, buf + done, n - done, off + done);
    if (!r.ok()) throw Failure{r.status().WithContext("reading " + path)};
    if (*r == 0) {
      std::fill(buf + done, buf + n, 0);  // past the end reads as zeros
      return;
    }
    done += *r;
  }
}

void WriteFull(Platform& os, int fd, const uint8_t* buf, size_t n, uint64_t off,
               const std::string& path) {
  size_t done = 0;
  while (done < n) {
    auto w = os.PWrite(fd, buf + done, n - done, off + done);
    if (!w.ok()) throw Failure{w.status().WithContext("writing " + path)};
    done += *w;
  }
}

// The image to import into: the one at t, or a new one sized to the
// source (or -s) where formatting loses nothing (no file, an empty one, or
// one storing only zeros, as a new namespace is). Anything else fails with
// the reason the open gave.
Image OpenOrCreate(const ImageTarget& t, const CopyArgs& a, uint64_t src_size) {
  auto opened = Image::Open(t.path, t.options);
  if (!opened.ok()) {
    const Status& why = opened.status();
    if (PermissionDenied(why)) throw Explain(why, a.dst, t.path);
    // Only a target that holds no image (kNotFound) may be formatted; a
    // damaged or crashed image is never suggested for formatting.
    if (why.kind() != ErrorKind::kNotFound) {
      throw Failure{Status::Error(
          why.kind(), "cannot import into " + a.dst + ": " + why.message())};
    }
    if (!FormatLosesNothing(t)) {
      throw Failure{Status::Error(
          why.kind(), "cannot import into " + a.dst + ": " + why.message() +
                          "; import into a new path, or format it with "
                          "'daxstore image create " +
                          a.dst + " -s SIZE --force' (" + WhatIsLost(t.path) +
                          ")")};
    }
    ImageOptions o;
    o.virtual_size = a.size.empty() ? src_size : Must(ParseSize(a.size));
    o.virtual_size = (o.virtual_size + 511) / 512 * 512;
    o.max_volumes = a.max_volumes;
    o.allow_overcommit = a.overcommit;
    return CreateImage(t, o);
  }
  Image img = std::move(opened).value();
  const uint64_t held = Must(img.Info()).allocated_bytes;
  if (!a.force && held > 0) {
    throw Failure{Busy(
        a.dst + " already holds " + FormatSizeHuman(held) +
        " of guest data; import into a new path, or pass --force to replace "
        "its first " +
        std::to_string(src_size) + " bytes with " + a.src +
        " (what the image holds there is lost; bytes past that are kept)")};
  }
  return img;
}

void Import(const CLI::App* cmd, const CopyArgs& a) {
  Platform& os = *DefaultPlatform();
  OpenFile in(os, Must(os.Open(a.src, O_RDONLY)));
  auto src = os.Stat(in.fd());
  if (!src.ok()) throw Failure{src.status().WithContext(a.src)};
  const uint64_t src_size = src->size;
  ImageTarget t = ResolveImageTarget(cmd, a.dst, a.emulate);
  RefuseSameTarget("import", a.src, a.src, a.dst, t.path);
  RefuseHeld(a.dst, t.path);
  Image img = OpenOrCreate(t, a, src_size);
  if (src_size > img.virtual_size()) {
    throw Failure{NoSpace(a.src + " (" + std::to_string(src_size) +
                          " bytes) does not fit in " + a.dst + " (" +
                          std::to_string(img.virtual_size()) +
                          " bytes); create a bigger image")};
  }
  const size_t bs = img.block_size();
  std::vector<uint8_t> buf(kChunk);
  Progress bar("import", src_size);
  uint64_t written = 0;
  for (uint64_t off = 0; off < src_size; off += kChunk) {
    const size_t n =
        static_cast<size_t>(std::min<uint64_t>(kChunk, src_size - off));
    ReadFull(os, in.fd(), buf.data(), n, off, a.src);
    // Write each run of non-zero blocks with one call; zero runs become
    // holes (an existing image under --force gets them discarded).
    size_t i = 0;
    while (i < n) {
      const size_t len = std::min(bs, n - i);
      const bool zero = Zero(buf.data() + i, len);
      size_t j = i + len;
      while (j < n) {
        const size_t l2 = std::min(bs, n - j);
        if (Zero(buf.data() + j, l2) != zero) break;
        j += l2;
      }
      if (!zero) {
        Must(img.Write(off + i, buf.data() + i, j - i));
        written += j - i;
      } else if (a.force) {
        Must(img.WriteZeroes(off + i, j - i));
      }
      i = j;
    }
    bar.Update(off + n);
  }
  PrintJson({{"source", a.src},
             {"image", a.dst},
             {"bytes", src_size},
             {"data_bytes_written", written},
             {"allocated_bytes", Must(img.Info()).allocated_bytes}});
}

void Export(const CLI::App* cmd, const CopyArgs& a) {
  ImageTarget t = ResolveImageTarget(cmd, a.src, a.emulate);
  // Before the image is opened: our own lock on it would look like
  // another process's.
  RefuseSameTarget("export", a.src, t.path, a.dst, a.dst);
  RefuseHeld(a.dst, a.dst);
  DiskSpec spec = SpecFor(cmd, a.src, a.emulate);
  spec.volume = a.volume;
  spec.access = Access::kReadOnly;
  auto opened_image = OpenDisk(spec);
  if (!opened_image.ok() && opened_image.status().kind() == ErrorKind::kBusy) {
    // A server owns the image: its NBD exports serve every volume.
    const std::string vol = a.volume.empty() ? "base" : a.volume;
    throw Failure{Busy(opened_image.status().message() +
                       "; while it is served, copy the volume from its NBD "
                       "export: nbdcopy 'nbd+unix:///" +
                       vol + "?socket=SOCKET' " + a.dst)};
  }
  Image img = Must(std::move(opened_image));
  Platform& os = *DefaultPlatform();
  const int flags = O_WRONLY | O_CREAT | (a.force ? 0 : O_EXCL);
  auto opened = os.Open(a.dst, flags, 0644);
  if (!opened.ok() && opened.status().sys_errno() == EEXIST) {
    throw Failure{Busy(a.dst + " exists; export to a new path, or pass " +
                       "--force to replace it (" + WhatIsLost(a.dst) + ")")};
  }
  if (!opened.ok()) throw Explain(opened.status(), a.dst, a.dst);
  OpenFile out(os, *opened);
  const uint64_t size = img.virtual_size();
  // Truncating to 0 first turns every old byte into a hole.
  Status sized = os.Truncate(out.fd(), 0);
  if (sized.ok()) sized = os.Truncate(out.fd(), size);
  if (!sized.ok()) throw Failure{sized.WithContext("sizing " + a.dst)};
  auto extents = Must(img.Extents(0, size));
  std::vector<uint8_t> buf(kChunk);
  Progress bar("export", size);
  uint64_t copied = 0;
  for (const Extent& e : extents) {
    if (e.hole) continue;
    for (uint64_t off = e.offset; off < e.offset + e.length; off += kChunk) {
      const size_t n = static_cast<size_t>(
          std::min<uint64_t>(kChunk, e.offset + e.length - off));
      Must(img.Read(off, buf.data(), n));
      WriteFull(os, out.fd(), buf.data(), n, off, a.dst);
      copied += n;
      bar.Update(off + n);
    }
  }
  Status synced = os.SyncFile(out.fd());
  if (!synced.ok()) throw Failure{synced.WithContext("syncing " + a.dst)};
  bar.Update(size);
  PrintJson({{"image", a.src},
             {"destination", a.dst},
             {"bytes", size},
             {"data_bytes_copied", copied}});
}

}  // namespace

void AddImageCopyCommands(CLI::App& image) {
  auto a = std::make_shared<CopyArgs>();
  auto* imp = image.add_subcommand(
      "import", "copy a raw disk file into an image (created if missing)");
  imp->add_option("source", a->src, "raw disk file")->required();
  imp->add_option("image", a->dst, "image path or namespace")->required();
  imp->add_option("-s,--size", a->size,
                  "virtual size of a new image (default: the source's)");
  imp->add_flag("--force", a->force, "import into an image that holds data");
  imp->add_option("--max-volumes", a->max_volumes,
                  "volume slots of a new image: the disk, its snapshots "
                  "and clones (1 to 64)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  imp->add_flag("--overcommit", a->overcommit,
                "on a namespace or device, allow a new image a virtual size "
                "beyond what the medium holds");
  imp->add_option("--emulate", a->emulate,
                  "declare a plain file pmem: cpu_cache or memory_controller");
  AddOutputOption(imp);
  AddProgressOptions(imp);
  imp->callback([imp, a] { Import(imp, *a); });

  auto* exp = image.add_subcommand(
      "export", "write an image out as a sparse raw disk file");
  exp->add_option("image", a->src, "image path or namespace")->required();
  exp->add_option("destination", a->dst, "raw file to create")->required();
  exp->add_flag("--force", a->force, "overwrite an existing destination");
  exp->add_option("--volume", a->volume,
                  "the volume to export: a snapshot or clone (default: the "
                  "image's own disk)");
  exp->add_option("--emulate", a->emulate,
                  "declare a plain file pmem: cpu_cache or memory_controller");
  AddOutputOption(exp);
  AddProgressOptions(exp);
  exp->callback([exp, a] { Export(exp, *a); });
}

}  // namespace daxstore::cli
