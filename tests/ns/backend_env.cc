#include "ns/backend_env.h"

#include <cstdlib>
#include <string_view>

namespace daxstore::testing {

Result<std::unique_ptr<NamespaceBackend>> EmulatedEnv::Open(
    const EmulatedBusConfig& layout, Ways) {
  EmulatedOptions o;
  o.dir = dir_.path() + "/bus";
  DAXSTORE_RETURN_IF_ERROR(CreateEmulatedBus(o, layout));
  return OpenEmulatedBackend(o);
}

namespace {
class KernelEnv : public BackendEnv {
 public:
  Result<std::unique_ptr<NamespaceBackend>> Open(
      const EmulatedBusConfig& layout, Ways ways) override {
    DAXSTORE_ASSIGN_OR_RETURN(auto b, OpenKernelBackend());
    DAXSTORE_RETURN_IF_ERROR(Reset(*b));
    DAXSTORE_ASSIGN_OR_RETURN(auto buses, b->List({.include_idle = true}));
    for (const auto& bus : buses) {
      for (const auto& r : bus.regions) {
        if (r.label_less == layout.label_less &&
            (ways == Ways::kAny ||
             r.interleave_ways() == layout.dimms_per_region)) {
          return b;
        }
      }
    }
    return Unsupported("the kernel bus has no region of this layout");
  }

 private:
  // The guest's bus is shared by every test: each starts from labelled
  // regions that are enabled and empty (label-less ones cannot be emptied).
  static Status Reset(NamespaceBackend& b) {
    DAXSTORE_ASSIGN_OR_RETURN(auto buses, b.List({.include_idle = true}));
    for (const auto& bus : buses) {
      for (const auto& r : bus.regions) {
        if (!r.enabled) DAXSTORE_RETURN_IF_ERROR(b.EnableRegion(r.dev));
        if (r.label_less) continue;
        for (const auto& n : r.namespaces) {
          if (n.dax_region) {
            for (const auto& d : n.dax_region->devices) {
              if (d.mode != DaxMode::kSystemRam) continue;
              DAXSTORE_RETURN_IF_ERROR(
                  b.ReconfigureDevice(d.chardev, DaxMode::kDevdax, true)
                      .status());
            }
          }
          DAXSTORE_RETURN_IF_ERROR(b.Destroy(n.dev, true));
        }
      }
    }
    return Status::Ok();
  }
};
}  // namespace

std::vector<BackendParam> BackendsUnderTest() {
  std::vector<BackendParam> out;
  out.push_back({"emulated",
                 [] { return std::shared_ptr<BackendEnv>(new EmulatedEnv); }});
  // Only inside the kernel tier's throw-away guest: the suite destroys
  // namespaces.
  const char* k = std::getenv("DAXSTORE_TEST_KERNEL_BUS");
  if (k != nullptr && std::string_view(k) == "1") {
    out.push_back(
        {"kernel", [] { return std::shared_ptr<BackendEnv>(new KernelEnv); }});
  }
  return out;
}

}  // namespace daxstore::testing
