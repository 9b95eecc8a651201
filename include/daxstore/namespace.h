// The namespace manager: a typed model of an NVDIMM bus (bus -> region ->
// namespace -> dax device, plus the DIMMs behind each region) and the
// operations ndctl/daxctl offer on it, behind one interface with two
// backends: the real kernel (libndctl + libdaxctl) and an emulated bus kept
// in a directory (see daxstore/emulated_bus.h).
//
// The model is plain values: List() returns a snapshot; change it through
// the backend, then List() again. Sizes are bytes.
//
// Thread safety: a backend object may be used from one thread at a time.
// Many processes may share one emulated bus (it locks its directory).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daxstore/mapping.h"
#include "daxstore/platform.h"
#include "daxstore/status.h"

namespace daxstore {

enum class NamespaceMode { kFsdax, kDevdax, kSector, kRaw };
// Where fsdax/devdax keep their per-page metadata (struct page).
enum class MapLocation { kMem, kDev };
// What a device-DAX device is bound to (daxctl's "mode").
enum class DaxMode { kDevdax, kSystemRam };

// Names as ndctl prints them ("fsdax", "dev", "system-ram").
std::string_view NamespaceModeName(NamespaceMode m);
std::string_view MapLocationName(MapLocation m);
std::string_view DaxModeName(DaxMode m);
// Accepts ndctl's names and the kernel's old ones ("memory", "dax", "safe").
Result<NamespaceMode> ParseNamespaceMode(std::string_view s);
Result<MapLocation> ParseMapLocation(std::string_view s);
Result<DaxMode> ParseDaxMode(std::string_view s);

struct DaxDevice {
  std::string chardev;  // "dax0.0"
  uint64_t size = 0;
  uint64_t align = 0;
  DaxMode mode = DaxMode::kDevdax;
  int target_node = 0;
};

struct DaxRegion {
  int id = 0;
  uint64_t size = 0;
  uint64_t align = 0;
  std::vector<DaxDevice> devices;
};

struct Namespace {
  std::string dev;     // "namespace0.0"
  std::string region;  // "region0"
  NamespaceMode mode = NamespaceMode::kRaw;
  std::optional<MapLocation> map;  // fsdax and devdax only
  uint64_t size = 0;         // usable bytes (what the block/char device offers)
  uint64_t raw_size = 0;     // bytes taken from the region
  std::string uuid;          // empty for label-less namespaces
  std::string name;          // "" when unnamed
  uint32_t sector_size = 0;  // 0 for devdax
  uint64_t align = 0;        // fsdax/devdax page-map alignment, else 0
  std::string blockdev;      // "pmem0", "pmem0s"; empty for devdax
  std::optional<DaxRegion> dax_region;  // devdax only
  bool enabled = true;
  int numa_node = 0;
  std::string mounted_at;  // where its block device is mounted, if anywhere
};

// A DIMM's share of a region (ndctl's "mappings").
struct DimmMapping {
  std::string dimm;  // "nmem0"
  uint64_t offset = 0;
  uint64_t length = 0;
  int position = 0;
};

// What a region can create, per mode (ndctl list -C).
struct Capability {
  NamespaceMode mode = NamespaceMode::kRaw;
  std::vector<uint64_t> alignments;    // fsdax, devdax
  std::vector<uint32_t> sector_sizes;  // sector
};

struct Region {
  std::string dev;  // "region0"
  std::string bus;  // "ndbus0"
  uint64_t size = 0;
  uint64_t available_size = 0;
  uint64_t max_available_extent = 0;
  uint64_t align = 0;
  std::string type = "pmem";
  uint64_t iset_id = 0;
  int numa_node = 0;
  std::vector<DimmMapping> mappings;
  std::vector<Capability> capabilities;
  std::optional<PersistenceDomain> persistence_domain;
  bool enabled = true;
  // No label area (memmap=, e820, or a DIMM without labels): its one
  // namespace spans the region and can only be reconfigured in place.
  bool label_less = false;
  // Label area present but not initialised (init-labels needed).
  bool labels_uninitialized = false;
  std::vector<ByteRange> badblocks;
  std::vector<Namespace> namespaces;
  int interleave_ways() const {
    return mappings.empty() ? 1 : static_cast<int>(mappings.size());
  }
};

struct Dimm {
  std::string dev;  // "nmem0"
  std::string id;   // vendor-serial, e.g. "8680-56341200"
  uint32_t handle = 0;
  uint32_t phys_id = 0;
  uint64_t size = 0;
  bool enabled = true;
  bool label_area = true;  // has a label storage area
};

struct Bus {
  std::string dev;       // "ndbus0"
  std::string provider;  // "ACPI.NFIT", "e820", "daxstore.emulated"
  std::vector<Region> regions;
  std::vector<Dimm> dimms;
};

// Empty strings match everything. region/ns accept "region0" or "0",
// "namespace0.0" or "0.0"; "all" matches everything too.
struct ListFilter {
  std::string bus = {};
  std::string region = {};
  std::string ns = {};
  std::optional<NamespaceMode> mode = {};
  bool include_idle = false;  // also disabled regions and namespaces
};

// A requested size: everything available, a byte count, or a percentage
// of the region's available size.
struct SizeRequest {
  enum class Kind { kAll, kBytes, kPercent };
  Kind kind = Kind::kAll;
  uint64_t value = 0;  // bytes, or percent (1..100)
};
// "" -> all, "50%", or anything ParseSize takes ("4G", "1536M").
Result<SizeRequest> ParseSizeRequest(std::string_view text);

struct CreateRequest {
  std::string region;  // "" picks the first region with room
  NamespaceMode mode = NamespaceMode::kFsdax;
  SizeRequest size;
  uint64_t align = 0;              // 0: the mode's default
  std::optional<MapLocation> map;  // default dev
  uint32_t sector_size = 0;        // 0: the mode's default
  std::string name;                // at most 63 bytes
  std::string uuid;                // "" generates one
  std::string reconfigure;         // -e: namespace to change in place
  bool force = false;              // reconfigure an active namespace
};

// What to hand to Mapping::Open for a namespace's DAX device.
struct MapTarget {
  std::string path;
  MapOptions options;  // emulate set for the emulated bus
};

class NamespaceBackend {
 public:
  virtual ~NamespaceBackend() = default;

  // "kernel" or "emulated".
  virtual std::string_view name() const = 0;

  // The buses with their regions, DIMMs and namespaces, filtered. Regions
  // and namespaces that do not match are left out; buses stay.
  virtual Result<std::vector<Bus>> List(const ListFilter& filter) = 0;

  // Creates (or with request.reconfigure, reconfigures) a namespace and
  // returns it as List would. On failure the bus is unchanged.
  // Reconfiguring needs force for an enabled namespace, is refused for a
  // busy one (as Destroy), and clears the old personality's info block.
  virtual Result<Namespace> Create(const CreateRequest& request) = 0;

  // Destroys a namespace. An enabled one needs force. A busy one is
  // refused even then, as ndctl does: its block device mounted (kernel) or
  // held open exclusively, its dax device online as system-ram, or its
  // device held by an open image or mapping (a flock on the emulated
  // bus's device file or on /dev/daxX.Y). Before the label goes, the first
  // 8 KiB (where a pfn, dax or btt info block lives) are zeroed, so no
  // later namespace over the same bytes finds a stale one.
  virtual Status Destroy(const std::string& ns, bool force) = 0;

  virtual Status EnableNamespace(const std::string& ns) = 0;
  virtual Status DisableNamespace(const std::string& ns) = 0;
  virtual Status EnableRegion(const std::string& region) = 0;
  virtual Status DisableRegion(const std::string& region) = 0;

  // Initialises the label areas of the region's DIMMs ("all" for every
  // region). The region must be disabled, or force given. Returns how many
  // DIMMs were initialised.
  virtual Result<int> InitLabels(const std::string& region, bool force) = 0;

  // Moves a dax device ("dax0.0") between devdax and system-ram.
  virtual Result<DaxDevice> ReconfigureDevice(const std::string& chardev,
                                              DaxMode mode, bool force) = 0;

  // How to map a fsdax/devdax namespace's device with the mapping layer.
  virtual Result<MapTarget> MapTargetOf(const std::string& ns) = 0;
};

// The real kernel through libndctl/libdaxctl. Fails with kUnsupported and a
// message naming the module to load when there is no NVDIMM bus.
Result<std::unique_ptr<NamespaceBackend>> OpenKernelBackend(
    std::shared_ptr<Platform> platform = nullptr);

// True when the kernel shows at least one NVDIMM bus (/sys/bus/nd).
bool KernelBusPresent(Platform& platform);

}  // namespace daxstore
