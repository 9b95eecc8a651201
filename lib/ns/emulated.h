// The emulated backend: every operation locks the bus directory, reads
// bus.json, checks, changes device files and publishes the new bus.json
// in the order emulated_store.h describes.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "daxstore/emulated_bus.h"
#include "ns/emulated_store.h"

namespace daxstore::ns {

class EmulatedBackend : public NamespaceBackend {
 public:
  // crash_point, if set, is called at named points inside mutating
  // operations ("create:device-file", "create:before-publish", ...) with
  // the lock held: the crash tests kill the process there.
  explicit EmulatedBackend(
      EmulatedOptions options,
      std::function<void(std::string_view point)> crash_point = {})
      : options_(std::move(options)), crash_point_(std::move(crash_point)) {}

  std::string_view name() const override { return "emulated"; }
  Result<std::vector<Bus>> List(const ListFilter& filter) override;
  Result<Namespace> Create(const CreateRequest& request) override;
  Status Destroy(const std::string& ns, bool force) override;
  Status EnableNamespace(const std::string& ns) override;
  Status DisableNamespace(const std::string& ns) override;
  Status EnableRegion(const std::string& region) override;
  Status DisableRegion(const std::string& region) override;
  Result<int> InitLabels(const std::string& region, bool force) override;
  Result<DaxDevice> ReconfigureDevice(const std::string& chardev, DaxMode mode,
                                      bool force) override;
  Result<MapTarget> MapTargetOf(const std::string& ns) override;

 private:
  Result<std::unique_ptr<LockedBus>> Lock();
  Result<Namespace> Reconfigure(LockedBus& bus, const CreateRequest& r);
  Result<Namespace> CreateIn(LockedBus& bus, RegionRecord& region,
                             const CreateRequest& r);

  EmulatedOptions options_;
  std::function<void(std::string_view point)> crash_point_;
};

// Lookups that explain what is missing.
Result<RegionRecord*> LookupRegion(BusState& s, const std::string& name);
Result<std::pair<RegionRecord*, NsRecord*>> LookupNamespace(
    BusState& s, const std::string& name);
// Busy if the namespace's dax device is online as system-ram.
Status CheckNotSystemRam(const RegionRecord& r, const NsRecord& n,
                         const std::string& action);
// Busy if another open holds a lock on the namespace's device file: an
// image (daxstore image, serve, the C ABI) or a Mapping opened with
// MapOptions::lock. The emulated bus's "mounted": -f does not override it.
Status CheckNotInUse(LockedBus& bus, const RegionRecord& r, const NsRecord& n,
                     const std::string& action);
// Both of the above.
Status CheckIdle(LockedBus& bus, const RegionRecord& r, const NsRecord& n,
                 const std::string& action);

}  // namespace daxstore::ns
