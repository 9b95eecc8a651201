// The kernel backend: libndctl for buses, regions, namespaces and their
// pfn/dax/btt personalities; libdaxctl for devdax <-> system-ram. Every
// sysfs write is libndctl's; this file decides what to ask for.
#pragma once

#include <ndctl/libndctl.h>

#include <memory>
#include <string>
#include <vector>

#include "daxstore/namespace.h"

struct daxctl_ctx;
struct daxctl_dev;

namespace daxstore::ns {

// Device types from the kernel's uapi ndctl.h (whose header cannot be
// included on its own): a pmem region, and the namespace type of a
// label-less (legacy, e820/memmap=) region.
constexpr unsigned kNdDeviceRegionPmem = 2;
constexpr unsigned kNdDeviceNamespaceIo = 4;

class KernelBackend : public NamespaceBackend {
 public:
  KernelBackend(std::shared_ptr<Platform> platform, ndctl_ctx* ctx,
                daxctl_ctx* dax)
      : platform_(std::move(platform)), ctx_(ctx), dax_(dax) {}
  ~KernelBackend() override;

  std::string_view name() const override { return "kernel"; }
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
  Result<ndctl_region*> FindRegion(const std::string& name);
  Result<ndctl_namespace*> FindNamespace(const std::string& name);
  daxctl_dev* FindDaxDev(const std::string& name);
  // Whether the dax device is bound to kmem (online as system-ram).
  bool SystemRam(const std::string& chardev);
  Namespace Describe(ndctl_namespace* ndns);
  Region Describe(ndctl_region* region);
  // Busy if its block device is mounted or held open exclusively, or its
  // dax device is system-ram or locked by an image or mapping. -f does not
  // override any of these (as ndctl's exclusive open).
  Status CheckIdle(ndctl_namespace* ndns, const std::string& action);
  // What ndctl does before reconfiguring or destroying: enables the
  // (disabled) namespace raw and zeroes its first 8 KiB, where a pfn, dax
  // or btt info block lives, so none is detected again; leaves it
  // disabled.
  Status ClearInfoBlock(ndctl_namespace* ndns);
  // Gives a seed namespace its size, identity and personality.
  Status Configure(ndctl_region* region, ndctl_namespace* ndns,
                   const CreateRequest& r, uint64_t raw, bool label_less);
  Status Personalize(ndctl_region* region, ndctl_namespace* ndns,
                     const CreateRequest& r, unsigned char uu[16],
                     bool label_less);
  Result<Namespace> Reconfigure(const CreateRequest& r);
  bool ModuleLoaded(const std::string& module);
  // `failed`, naming the first of `modules` that is not loaded, if any.
  Status NameMissingModule(Status failed,
                           const std::vector<std::string>& modules);

  std::shared_ptr<Platform> platform_;
  ndctl_ctx* ctx_;
  daxctl_ctx* dax_;
};

}  // namespace daxstore::ns
