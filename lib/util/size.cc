#include "daxstore/size.h"

#include <cctype>
#include <cmath>
#include <cstdio>

namespace daxstore {

namespace {
Status BadSize(std::string_view text, std::string_view why) {
  return InvalidArgument("invalid size '" + std::string(text) +
                         "': " + std::string(why) +
                         "; use a number of bytes with an optional k/m/g/t "
                         "suffix, e.g. 4096, 512m or 1.5g");
}
}  // namespace

Result<uint64_t> ParseSize(std::string_view text) {
  if (text.empty()) return BadSize(text, "empty");
  size_t i = 0;
  uint64_t whole = 0;
  bool digits = false;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    uint64_t d = static_cast<uint64_t>(text[i] - '0');
    if (whole > (UINT64_MAX - d) / 10) return BadSize(text, "too large");
    whole = whole * 10 + d;
    digits = true;
    ++i;
  }
  // Fraction kept as numerator/denominator to stay exact.
  uint64_t frac_num = 0, frac_den = 1;
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() &&
           std::isdigit(static_cast<unsigned char>(text[i]))) {
      if (frac_den > UINT64_MAX / 100) return BadSize(text, "too many digits");
      frac_num = frac_num * 10 + static_cast<uint64_t>(text[i] - '0');
      frac_den *= 10;
      digits = true;
      ++i;
    }
  }
  if (!digits) {
    if (!text.empty() && text[0] == '-') return BadSize(text, "negative");
    return BadSize(text, "no number");
  }
  std::string suffix;
  for (; i < text.size(); ++i) {
    suffix.push_back(
        static_cast<char>(std::tolower(static_cast<unsigned char>(text[i]))));
  }
  unsigned shift = 0;
  if (!suffix.empty()) {
    static constexpr std::string_view kUnits = "kmgtpe";
    size_t u = kUnits.find(suffix[0]);
    std::string_view rest = std::string_view(suffix).substr(1);
    if (suffix == "b") {
      rest = "";
      u = std::string_view::npos;
    } else if (u == std::string_view::npos ||
               !(rest.empty() || rest == "b" || rest == "ib")) {
      return BadSize(text, "unknown suffix '" + suffix + "'");
    }
    if (u != std::string_view::npos) shift = 10 * static_cast<unsigned>(u + 1);
  }
  uint64_t mult = uint64_t{1} << shift;
  if (whole > UINT64_MAX / mult) return BadSize(text, "too large");
  uint64_t bytes = whole * mult;
  if (frac_num != 0) {
    // frac_num/frac_den * mult must be a whole number of bytes.
    unsigned __int128 f = static_cast<unsigned __int128>(frac_num) * mult;
    if (f % frac_den != 0) return BadSize(text, "not a whole number of bytes");
    uint64_t add = static_cast<uint64_t>(f / frac_den);
    if (bytes > UINT64_MAX - add) return BadSize(text, "too large");
    bytes += add;
  }
  return bytes;
}

std::string FormatSizeHuman(uint64_t bytes) {
  static const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double v = static_cast<double>(bytes);
  int u = -1;
  while (v >= 1024.0 && u < 5) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f %s", v, kUnits[u]);
  return buf;
}

}  // namespace daxstore
