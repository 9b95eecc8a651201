// TARGET resolution and the progress bar for `daxstore image`.
#include "image_target.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <regex>

#include "bus_select.h"
#include "commands.h"

namespace daxstore::cli {

ImageTarget ResolveImageTarget(const CLI::App* cmd, const std::string& target,
                               const std::string& emulate) {
  ImageTarget t;
  if (!emulate.empty())
    t.options.emulate = Must(ParsePersistenceDomain(emulate));
  struct stat st;
  static const std::regex kNs("^(dax|namespace)[0-9]+\\.[0-9]+$");
  const bool exists = ::stat(target.c_str(), &st) == 0;
  if (target.find('/') != std::string::npos || exists ||
      !std::regex_match(target, kNs)) {
    t.path = target;
    return t;
  }
  // A kernel devdax device by its character-device name.
  const std::string dev = "/dev/" + target;
  if (target.rfind("dax", 0) == 0 && ::stat(dev.c_str(), &st) == 0) {
    t.path = dev;
    return t;
  }
  auto backend = OpenBackend(ReadBusChoice(cmd));
  MapTarget m = Must(backend->MapTargetOf(target));
  t.path = m.path;
  MapOptions o = m.options;
  if (t.options.emulate) o.emulate = t.options.emulate;
  t.options = o;
  return t;
}

Progress::Progress(std::string verb, uint64_t total)
    : verb_(std::move(verb)), total_(total), tty_(::isatty(2) == 1) {}

Progress::~Progress() {
  if (tty_ && last_ >= 0) std::fputs("\n", stderr);
}

void Progress::Update(uint64_t done) {
  if (!tty_ || total_ == 0) return;
  const int pct = static_cast<int>(done * 100 / total_);
  if (pct == last_) return;
  last_ = pct;
  char bar[41];
  const int fill = pct * 40 / 100;
  for (int i = 0; i < 40; ++i) bar[i] = i < fill ? '#' : '.';
  bar[40] = '\0';
  std::fprintf(stderr, "\r%s %3d%% [%s]", verb_.c_str(), pct, bar);
  std::fflush(stderr);
}

}  // namespace daxstore::cli
