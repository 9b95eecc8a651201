// Whether the kernel has an NVDIMM bus, and what to load when it has not.
#include "ns/kernel_probe.h"

namespace daxstore {

bool KernelBusPresent(Platform& platform) {
  auto entries = platform.ListSysfs("bus/nd/devices");
  if (!entries.ok()) return false;
  for (const auto& e : *entries) {
    if (e.rfind("ndbus", 0) == 0) return true;
  }
  return false;
}

namespace ns {

Status CheckKernelBus(Platform& platform) {
  if (KernelBusPresent(platform)) return Status::Ok();
  if (!platform.ListSysfs("bus/nd").ok()) {
    return Unsupported(
        "no NVDIMM bus: the libnvdimm module is not loaded; load nfit (ACPI "
        "NVDIMMs) or nd_e820 (memmap= pmem), or use --bus emulated");
  }
  return Unsupported(
      "no NVDIMM bus: is the nfit or nd_e820 module loaded? (or use --bus "
      "emulated)");
}

}  // namespace ns
}  // namespace daxstore
