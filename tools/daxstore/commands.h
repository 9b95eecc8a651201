// The CLI is a table of nouns; each noun's file registers its verbs.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "daxstore/mapping.h"
#include "daxstore/platform.h"
#include "daxstore/status.h"

namespace daxstore::cli {

// Thrown by a verb to end the program with one line on stderr and exit
// with exit_code (1 unless a verb documents others, as `image check` does).
struct Failure {
  Status status;
  int exit_code = 1;
};

// Turns a failed Status into a Failure; returns the value otherwise.
template <typename T>
T Must(Result<T> r) {
  if (!r.ok()) throw Failure{r.status()};
  return std::move(r).value();
}
inline void Must(Status s) {
  if (!s.ok()) throw Failure{std::move(s)};
}
// A Failure for a bad argument: `throw Fail("--tcp wants ADDR:PORT")`.
inline Failure Fail(std::string message) {
  return Failure{InvalidArgument(std::move(message))};
}

// A descriptor from Platform::Open, closed through the same platform on
// scope exit.
class OpenFile {
 public:
  OpenFile(Platform& os, int fd) : os_(os), fd_(fd) {}
  ~OpenFile() { os_.Close(fd_); }
  OpenFile(const OpenFile&) = delete;
  OpenFile& operator=(const OpenFile&) = delete;
  int fd() const { return fd_; }

 private:
  Platform& os_;
  int fd_;
};

// Prints JSON the way ndctl does (two-space indent); for the verbs with
// --output or -q (output.h), the human view or nothing.
void PrintJson(const nlohmann::json& j);
nlohmann::json MappingJson(const MappingInfo& info);

void AddMapCommands(CLI::App& app);
void AddBenchCommands(CLI::App& app);
void AddListCommands(CLI::App& app);
void AddNamespaceCommands(CLI::App& app);
void AddRegionCommands(CLI::App& app);
void AddEmulateCommands(CLI::App& app);
// Verbs under `daxstore image`: snapshot, clone, delete, list.
void AddImageVolumeCommands(CLI::App& image);
void AddServeVhostCommands(CLI::App& app);
void AddImageCommands(CLI::App& app);
// Adds import and export under the `image` noun.
void AddImageCopyCommands(CLI::App& image);
// Adds export-diff and import-diff (RBD diff v1) under the `image` noun.
void AddImageDiffCommands(CLI::App& image);
// Adds sharing (the content-sharing report) and dedup under the `image`
// noun.
void AddImageSharingCommands(CLI::App& image);
// Adds mirror, mirror-status, mirror-complete and mirror-cancel under the
// `image` noun.
void AddImageMirrorCommands(CLI::App& image);
// Adds check under the `image` noun.
void AddImageCheckCommand(CLI::App& image);
void AddServeCommands(CLI::App& app);
void AddVmArgsCommands(CLI::App& app);

}  // namespace daxstore::cli
