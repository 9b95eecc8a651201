// How a verb prints: its result as JSON (the default) or as a human view of
// the same data (--output=human, as qemu-img's --output); and, for long
// operations, a progress bar (-p; drawn by default on a terminal), nothing
// but errors (-q), and one progress line on SIGUSR1.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace daxstore::cli {

enum class OutputFormat { kJson, kHuman };

struct OutputOptions {
  OutputFormat format = OutputFormat::kJson;
  bool progress = false;  // -p
  bool quiet = false;     // -q
};

// The running verb's options (one verb runs per process).
OutputOptions& Output();

// Adds --output=json|human to a verb.
void AddOutputOption(CLI::App* verb);
// Adds -q to a verb.
void AddQuietOption(CLI::App* verb);
// Adds -p and -q to a verb that takes long.
void AddProgressOptions(CLI::App* verb);

// The human view: one "key: value" line per field, nested fields
// indented, sizes as "16.00 MiB (16777216 bytes)".
std::string HumanView(const nlohmann::json& j);

// Draws "\rVERB  42% [#####.....]" on stderr: with -p, or by default while
// stderr is a terminal; never with -q. SIGUSR1 prints one line
// "VERB: DONE of TOTAL bytes (42%)" whatever the mode. The bar's line is
// ended before anything else is printed (PrintJson, an error).
class Progress {
 public:
  Progress(std::string verb, uint64_t total);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  void Update(uint64_t done);
  // Ends the bar's line if one is drawn.
  void EndLine();

 private:
  std::string verb_;
  uint64_t total_;
  bool draw_;
  bool drawn_ = false;
  int last_ = -1;
};

// Makes SIGUSR1 a request for one progress line (instead of the end of the
// process) from the start, so a signal sent before a copy begins is
// harmless. main() calls it first.
void AcceptProgressSignal();

// Ends the line of the progress bar on screen, if any.
void EndProgressLine();

}  // namespace daxstore::cli
