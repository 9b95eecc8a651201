// daxstore image export-diff|import-diff: RBD diff v1 streams (what `rbd
// export-diff` writes and `rbd import-diff` reads) out of and into an
// image, for incremental backups to and from Ceph RBD.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <memory>

#include "commands.h"
#include "daxstore/image.h"
#include "daxstore/rbd_diff.h"
#include "identity.h"
#include "image_target.h"
#include "output.h"

namespace daxstore::cli {
namespace {

struct DiffArgs {
  std::string image, file = "-", from, to, volume, emulate;
  bool force = false;
};

// A stdio stream closed on scope exit (stdin and stdout stay open).
struct Stream {
  std::FILE* f = nullptr;
  bool owned = false;
  ~Stream() {
    if (owned && f) std::fclose(f);
  }
};

Image OpenOffline(const CLI::App* cmd, const DiffArgs& a, bool write,
                  const char* verb) {
  DiskSpec spec = SpecFor(cmd, a.image, a.emulate);
  spec.access = write ? Access::kReadWrite : Access::kReadOnly;
  auto opened = OpenDisk(spec);
  if (!opened.ok() && opened.status().kind() == ErrorKind::kBusy) {
    throw Failure{Busy(opened.status().message() + "; " + verb +
                       " needs the image to itself: stop its server, run " +
                       "'daxstore image " + verb + "', then serve it again")};
  }
  return Must(std::move(opened));
}

void ExportDiff(const CLI::App* cmd, const DiffArgs& a) {
  Image img = OpenOffline(cmd, a, false, "export-diff");
  Stream out;
  if (a.file == "-") {
    out.f = stdout;
  } else {
    RefuseHeld(a.file, a.file);
    out.f = std::fopen(a.file.c_str(), a.force ? "wb" : "wbx");
    out.owned = true;
    if (!out.f && errno == EEXIST) {
      throw Failure{Busy(a.file + " exists; write to a new path, or pass " +
                         "--force to replace it (" + WhatIsLost(a.file) + ")")};
    }
    if (!out.f) throw Failure{FromErrno(errno, "creating " + a.file)};
  }
  const std::string where = a.file == "-" ? "standard output" : a.file;
  auto stats = Must(rbd::WriteDiff(
      img, a.from, a.to, [&](std::span<const uint8_t> b) -> Status {
        if (std::fwrite(b.data(), 1, b.size(), out.f) != b.size()) {
          return FromErrno(errno, "writing " + where);
        }
        return Status::Ok();
      }));
  if (std::fflush(out.f) != 0) {
    throw Failure{FromErrno(errno, "writing " + where)};
  }
  if (out.owned && fsync(fileno(out.f)) != 0) {
    throw Failure{FromErrno(errno, "syncing " + where)};
  }
  if (a.file != "-") {
    PrintJson({{"image", a.image},
               {"from_snap", a.from},
               {"to_snap", a.to},
               {"destination", a.file},
               {"data_bytes", stats.data_bytes},
               {"zero_bytes", stats.zero_bytes},
               {"records", stats.records}});
  }
}

void ImportDiff(const CLI::App* cmd, const DiffArgs& a) {
  Stream in;
  if (a.file == "-") {
    in.f = stdin;
  } else {
    in.f = std::fopen(a.file.c_str(), "rb");
    in.owned = true;
    if (!in.f) throw Failure{FromErrno(errno, "opening " + a.file)};
  }
  Image img = OpenOffline(cmd, a, true, "import-diff");
  const std::string where = a.file == "-" ? "standard input" : a.file;
  auto stats = Must(rbd::ImportDiff(
      img, a.volume, [&](std::span<uint8_t> b) -> Result<size_t> {
        size_t n = std::fread(b.data(), 1, b.size(), in.f);
        if (n == 0 && std::ferror(in.f)) {
          return FromErrno(errno, "reading " + where);
        }
        return n;
      }));
  PrintJson({{"image", a.image},
             {"volume", a.volume.empty() ? "base" : a.volume},
             {"source", a.file},
             {"data_bytes", stats.data_bytes},
             {"zero_bytes", stats.zero_bytes},
             {"records", stats.records}});
}

}  // namespace

void AddImageDiffCommands(CLI::App& image) {
  auto a = std::make_shared<DiffArgs>();
  auto* exp = image.add_subcommand(
      "export-diff",
      "write the changes between two snapshots as an RBD diff v1 stream "
      "(rbd import-diff reads it)");
  exp->add_option("image", a->image, "image path or namespace")->required();
  exp->add_option("file", a->file, "where to write the stream (- stdout)")
      ->capture_default_str();
  exp->add_option("--to-snap", a->to, "the snapshot the diff leads to")
      ->required();
  exp->add_option("--from-snap", a->from,
                  "the snapshot the diff starts from (default: none, a "
                  "full diff of every mapped block)");
  exp->add_flag("--force", a->force, "overwrite an existing file");
  exp->add_option("--emulate", a->emulate,
                  "declare a plain file pmem: cpu_cache or memory_controller");
  AddOutputOption(exp);
  exp->callback([exp, a] { ExportDiff(exp, *a); });

  auto* imp = image.add_subcommand(
      "import-diff",
      "apply an RBD diff v1 stream (rbd export-diff writes it) to a volume "
      "and take its to-snapshot");
  imp->add_option("file", a->file, "the stream (- stdin)")->required();
  imp->add_option("image", a->image, "image path or namespace")->required();
  imp->add_option("--volume", a->volume,
                  "the writable volume to apply it to (default: base)");
  imp->add_option("--emulate", a->emulate,
                  "declare a plain file pmem: cpu_cache or memory_controller");
  AddOutputOption(imp);
  imp->callback([imp, a] { ImportDiff(imp, *a); });
}

}  // namespace daxstore::cli
