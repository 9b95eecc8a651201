// Shared pieces of the `daxstore image` verbs: turning a TARGET (a path or a
// namespace name) into what Mapping::Open needs, and a stderr progress bar.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "daxstore/mapping.h"

namespace daxstore::cli {

struct ImageTarget {
  std::string path;
  MapOptions options;
};

// A TARGET with a '/' or naming an existing file is a path; "daxX.Y" or
// "namespaceX.Y" is a namespace on the bus --bus picks (its device or
// backing file). `emulate` ("" or a persistence domain) declares a plain
// file pmem. Throws Failure with an actionable line.
ImageTarget ResolveImageTarget(const CLI::App* cmd, const std::string& target,
                               const std::string& emulate);

// Draws "\rVERB  42% [#####.....]" on stderr while stderr is a terminal;
// does nothing otherwise.
class Progress {
 public:
  Progress(std::string verb, uint64_t total);
  ~Progress();  // ends the line if one was drawn
  void Update(uint64_t done);

 private:
  std::string verb_;
  uint64_t total_;
  bool tty_;
  int last_ = -1;
};

}  // namespace daxstore::cli
