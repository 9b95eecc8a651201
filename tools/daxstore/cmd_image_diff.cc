// daxstore image export-diff|import-diff: RBD diff v1 streams (what `rbd
// export-diff` writes and `rbd import-diff` reads) out of and into an
// image, for incremental backups to and from Ceph RBD.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <memory>
#include <vector>

#include "commands.h"
#include "daxstore/image.h"
#include "daxstore/rbd_diff.h"
#include "identity.h"
#include "image_target.h"
#include "output.h"

namespace daxstore::cli {
namespace {

struct DiffArgs {
  std::string image, file = "-", from, to, volume, emulate, control;
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

// Through ImageRequest: answered by the image itself, or by the control
// socket of the server that has it open (snapshots do not change while it
// is served). The stream goes to a file the answering process creates.
void ExportDiff(const CLI::App* cmd, const DiffArgs& a) {
  Platform& os = *DefaultPlatform();
  const bool to_stdout = a.file == "-";
  std::string path;
  if (to_stdout) {
    path =
        SocketDir(true) + "/export-diff-" + std::to_string(getpid()) + ".rbd";
    (void)os.Remove(path);  // a leftover of an earlier run of this pid
  }
  std::string dest;  // FILE: the stream goes to `path` beside it first
  if (!to_stdout) {
    RefuseHeld(a.file, a.file);
    dest = Must(os.AbsolutePath(a.file));
    if (os.Exists(dest) && !a.force) {
      throw Failure{Busy(a.file + " exists; write to a new path, or pass " +
                         "--force to replace it (" + WhatIsLost(a.file) + ")")};
    }
    // An existing FILE is replaced only once the whole stream is written:
    // a failed export leaves it as it was.
    path = dest + ".partial-" + std::to_string(getpid());
    (void)os.Remove(path);
  }
  nlohmann::json args = {{"to-snap", a.to}, {"path", path}};
  if (!a.from.empty()) args["from-snap"] = a.from;
  nlohmann::json r;
  try {
    r = ImageRequest(cmd, a.image, a.emulate, a.control,
                     {{"execute", "export-diff"}, {"arguments", args}}, false);
  } catch (...) {
    if (!to_stdout) (void)os.Remove(path);
    throw;
  }
  if (!to_stdout) {
    // The stream is durable (its writer synced it) before the rename
    // publishes it under FILE.
    Status moved = os.Rename(path, dest);
    if (!moved.ok()) {
      (void)os.Remove(path);
      throw Failure{moved.WithContext("export-diff")};
    }
    PrintJson({{"image", a.image},
               {"from_snap", a.from},
               {"to_snap", a.to},
               {"destination", a.file},
               {"data_bytes", r.value("data_bytes", 0)},
               {"zero_bytes", r.value("zero_bytes", 0)},
               {"records", r.value("records", 0)}});
    return;
  }
  // Copy the stream to standard output, then remove it.
  std::FILE* in = std::fopen(path.c_str(), "rb");
  if (!in) throw Failure{FromErrno(errno, "opening " + path)};
  (void)os.Remove(path);  // the open stream keeps it readable
  std::vector<char> buf(1u << 20);
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), in)) > 0) {
    if (std::fwrite(buf.data(), 1, n, stdout) != n) {
      std::fclose(in);
      throw Failure{FromErrno(errno, "writing standard output")};
    }
  }
  std::fclose(in);
  if (std::fflush(stdout) != 0) {
    throw Failure{FromErrno(errno, "writing standard output")};
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
  AddImageRequestOptions(exp, &a->emulate, &a->control);
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
