// Detecting the kernel's NVDIMM bus through the Platform seam.
#pragma once

#include "daxstore/namespace.h"
#include "daxstore/platform.h"

namespace daxstore::ns {

// Ok when /sys/bus/nd shows a bus; otherwise kUnsupported naming the
// module to load.
Status CheckKernelBus(Platform& platform);

}  // namespace daxstore::ns
