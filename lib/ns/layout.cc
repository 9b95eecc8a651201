#include "ns/layout.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <random>

#include "daxstore/size.h"

namespace daxstore {

Result<SizeRequest> ParseSizeRequest(std::string_view text) {
  SizeRequest r;
  if (text.empty()) return r;
  if (text.back() == '%') {
    std::string_view num = text.substr(0, text.size() - 1);
    uint64_t v = 0;
    bool ok = !num.empty() && num.size() <= 3;
    for (char c : num) {
      ok = ok && std::isdigit(static_cast<unsigned char>(c));
      if (ok) v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    if (!ok || v == 0 || v > 100) {
      return InvalidArgument("invalid size '" + std::string(text) +
                             "': a percentage must be a whole number from 1% "
                             "to 100% of the region's available size");
    }
    r.kind = SizeRequest::Kind::kPercent;
    r.value = v;
    return r;
  }
  DAXSTORE_ASSIGN_OR_RETURN(r.value, ParseSize(text));
  if (r.value == 0) {
    return InvalidArgument("invalid size '" + std::string(text) +
                           "': must be more than 0 (omit --size to use all "
                           "available space)");
  }
  r.kind = SizeRequest::Kind::kBytes;
  return r;
}

namespace ns {

uint64_t DefaultAlign(NamespaceMode mode) {
  return mode == NamespaceMode::kFsdax || mode == NamespaceMode::kDevdax
             ? 2 * kMiB
             : 0;
}

uint32_t DefaultSectorSize(NamespaceMode mode) {
  switch (mode) {
    case NamespaceMode::kSector:
      return 4096;
    case NamespaceMode::kDevdax:
      return 0;
    default:
      return 512;
  }
}

std::vector<uint64_t> SupportedAlignments() {
  return {4 * kKiB, 2 * kMiB, kGiB};
}

std::vector<uint32_t> SupportedSectorSizes(NamespaceMode mode) {
  if (mode == NamespaceMode::kSector) {
    return {512, 520, 528, 4096, 4104, 4160, 4224};
  }
  if (mode == NamespaceMode::kDevdax) return {};
  return {512, 4096};
}

std::vector<Capability> Capabilities() {
  std::vector<Capability> caps;
  caps.push_back({NamespaceMode::kSector,
                  {},
                  SupportedSectorSizes(NamespaceMode::kSector)});
  caps.push_back({NamespaceMode::kFsdax, SupportedAlignments(), {}});
  caps.push_back({NamespaceMode::kDevdax, SupportedAlignments(), {}});
  caps.push_back({NamespaceMode::kRaw, {}, {}});
  return caps;
}

namespace {
constexpr uint64_t RoundUp(uint64_t v, uint64_t a) {
  return a ? (v + a - 1) / a * a : v;
}
uint64_t RoundDown(uint64_t v, uint64_t a) { return a ? v / a * a : v; }
}  // namespace

uint64_t BttUsableSize(uint64_t raw, uint32_t sector_size) {
  constexpr uint64_t kPre = 4 * kKiB, kInfo = 4 * kKiB, kLanes = 256;
  constexpr uint64_t kMaxArena = 512 * kGiB, kMinArena = 16 * kMiB;
  constexpr uint64_t kFlog = RoundUp(kLanes * 64, 4 * kKiB);
  uint64_t internal = RoundUp(sector_size, 64);
  if (raw <= kPre) return 0;
  uint64_t left = raw - kPre, usable = 0;
  while (left >= kMinArena) {
    uint64_t arena = std::min(left, kMaxArena);
    left -= arena;
    uint64_t avail = arena - 2 * kInfo - kFlog;
    // As the kernel's nd_btt splits an arena: one page is held back for
    // the map's rounding, then blocks and their 4-byte map entries share
    // the rest (measured in the guest: 256M -> 267091968 bytes at 4K).
    if (avail <= 4 * kKiB) continue;
    uint64_t nlba = (avail - 4 * kKiB) / (internal + 4);
    if (nlba <= kLanes) continue;
    usable += (nlba - kLanes) * sector_size;
  }
  return usable;
}

uint64_t UsableSize(NamespaceMode mode, MapLocation map, uint64_t raw,
                    uint64_t align, uint32_t sector_size) {
  switch (mode) {
    case NamespaceMode::kRaw:
      return raw;
    case NamespaceMode::kSector:
      return BttUsableSize(raw, sector_size);
    case NamespaceMode::kFsdax:
    case NamespaceMode::kDevdax: {
      uint64_t meta = 8 * kKiB;
      if (map == MapLocation::kDev) meta += raw / (4 * kKiB) * 64;
      // The kernel pads the reserve to at least 2 MiB (a memory-hotplug
      // subsection), whatever the page size: measured, 256M devdax at 4K
      // align -> 250M.
      uint64_t reserve = RoundUp(meta, std::max(align, 2 * kMiB));
      return raw > reserve ? RoundDown(raw - reserve, align) : 0;
    }
  }
  return 0;
}

std::string SizeArg(uint64_t b) {
  if (b != 0 && b % kGiB == 0) return std::to_string(b / kGiB) + "G";
  if (b != 0 && b % kMiB == 0) return std::to_string(b / kMiB) + "M";
  if (b != 0 && b % kKiB == 0) return std::to_string(b / kKiB) + "K";
  return std::to_string(b);
}

std::string NewUuid() {
  std::random_device rd;
  std::mt19937_64 gen((static_cast<uint64_t>(rd()) << 32) ^ rd());
  uint64_t hi = gen(), lo = gen();
  hi = (hi & ~0xf000ull) | 0x4000ull;                         // version 4
  lo = (lo & 0x3fffffffffffffffull) | 0x8000000000000000ull;  // variant
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08llx-%04llx-%04llx-%04llx-%012llx",
                static_cast<unsigned long long>(hi >> 32),
                static_cast<unsigned long long>((hi >> 16) & 0xffff),
                static_cast<unsigned long long>(hi & 0xffff),
                static_cast<unsigned long long>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xffffffffffffull));
  return buf;
}

bool ValidUuid(const std::string& u) {
  if (u.size() != 36) return false;
  for (size_t i = 0; i < u.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash != (u[i] == '-')) return false;
    if (!dash && !std::isxdigit(static_cast<unsigned char>(u[i]))) return false;
  }
  return true;
}

Status NormalizeRequest(CreateRequest& r) {
  bool dax =
      r.mode == NamespaceMode::kFsdax || r.mode == NamespaceMode::kDevdax;
  std::string mode(NamespaceModeName(r.mode));
  if (r.align != 0 && !dax) {
    return InvalidArgument("--align is for fsdax and devdax, not " + mode);
  }
  if (r.map && !dax) {
    return InvalidArgument("--map is for fsdax and devdax, not " + mode);
  }
  if (r.align == 0) r.align = DefaultAlign(r.mode);
  if (dax) {
    auto ok = SupportedAlignments();
    if (std::find(ok.begin(), ok.end(), r.align) == ok.end()) {
      return InvalidArgument("align " + SizeArg(r.align) + " is not supported" +
                             " for " + mode + ": use 4K, 2M or 1G");
    }
    if (!r.map) r.map = MapLocation::kDev;
  }
  if (r.mode == NamespaceMode::kDevdax && r.sector_size != 0) {
    return InvalidArgument("--sector-size does not apply to devdax");
  }
  if (r.sector_size == 0) r.sector_size = DefaultSectorSize(r.mode);
  auto sizes = SupportedSectorSizes(r.mode);
  if (r.mode != NamespaceMode::kDevdax &&
      std::find(sizes.begin(), sizes.end(), r.sector_size) == sizes.end()) {
    std::string list;
    for (uint32_t s : sizes)
      list += (list.empty() ? "" : ", ") + std::to_string(s);
    return InvalidArgument("sector size " + std::to_string(r.sector_size) +
                           " is not supported for " + mode + ": use " + list);
  }
  if (r.name.size() > kMaxNameBytes) {
    return InvalidArgument("name is " + std::to_string(r.name.size()) +
                           " bytes; a namespace name holds at most " +
                           std::to_string(kMaxNameBytes) + " bytes");
  }
  for (char c : r.name) {
    if (c == '\n' || c == '\0') {
      return InvalidArgument("a namespace name cannot contain a newline");
    }
  }
  if (!r.uuid.empty() && !ValidUuid(r.uuid)) {
    return InvalidArgument(
        "invalid uuid '" + r.uuid +
        "': use the form 01234567-89ab-cdef-0123-456789abcdef");
  }
  return Status::Ok();
}

uint64_t SizeGranule(const Region& region, uint64_t align) {
  uint64_t unit = std::max<uint64_t>({align, region.align, 4 * kKiB});
  return unit * static_cast<uint64_t>(region.interleave_ways());
}

std::vector<ByteRange> FreeExtents(uint64_t size, std::vector<ByteRange> used) {
  std::sort(used.begin(), used.end(),
            [](const ByteRange& a, const ByteRange& b) {
              return a.offset < b.offset;
            });
  std::vector<ByteRange> out;
  uint64_t at = 0;
  for (const auto& u : used) {
    if (u.offset > at) out.push_back({at, u.offset - at});
    at = std::max(at, u.offset + u.length);
  }
  if (size > at) out.push_back({at, size - at});
  return out;
}

Result<uint64_t> ResolveSize(const Region& region, const SizeRequest& size,
                             uint64_t granule) {
  const std::string& r = region.dev;
  std::string unit = SizeArg(granule / region.interleave_ways()) + " x " +
                     std::to_string(region.interleave_ways()) +
                     " interleave way" +
                     (region.interleave_ways() > 1 ? "s" : "");
  uint64_t want = 0;
  switch (size.kind) {
    case SizeRequest::Kind::kAll:
      want = RoundDown(region.max_available_extent, granule);
      break;
    case SizeRequest::Kind::kPercent:
      want = RoundDown(region.available_size * size.value / 100, granule);
      if (want == 0) {
        return NoSpace(std::to_string(size.value) + "% of " + r + "'s " +
                       SizeArg(region.available_size) +
                       " available is less than one " + SizeArg(granule) +
                       " unit (" + unit + ")");
      }
      break;
    case SizeRequest::Kind::kBytes:
      want = size.value;
      if (want % granule != 0) {
        uint64_t lo = RoundDown(want, granule), hi = lo + granule;
        std::string tries = lo ? "--size " + SizeArg(lo) + " or " : "";
        return InvalidArgument("size " + SizeArg(want) +
                               " is not a multiple of " + SizeArg(granule) +
                               " (" + unit + ") in " + r + ": try " + tries +
                               "--size " + SizeArg(hi));
      }
      break;
  }
  if (want == 0 || region.available_size < granule) {
    return NoSpace(r + " has no space left (" + SizeArg(region.available_size) +
                   " available): destroy a namespace or pick another region");
  }
  if (want > region.available_size) {
    return NoSpace(r + " has " + SizeArg(region.available_size) +
                   " available, less than the " + SizeArg(want) +
                   " asked for: try --size " +
                   SizeArg(RoundDown(region.max_available_extent, granule)));
  }
  if (want > region.max_available_extent) {
    return NoSpace(r + " has " + SizeArg(region.available_size) +
                   " free in total but its largest free extent is " +
                   SizeArg(region.max_available_extent) +
                   "; a namespace must be contiguous: try --size " +
                   SizeArg(RoundDown(region.max_available_extent, granule)));
  }
  return want;
}

}  // namespace ns
}  // namespace daxstore
