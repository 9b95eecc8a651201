// The kernel backend (libndctl + libdaxctl).
#include "ns/kernel_probe.h"

namespace daxstore {

Result<std::unique_ptr<NamespaceBackend>> OpenKernelBackend(
    std::shared_ptr<Platform> platform) {
  if (!platform) platform = DefaultPlatform();
  DAXSTORE_RETURN_IF_ERROR(ns::CheckKernelBus(*platform));
  return Unsupported("the kernel backend is not implemented yet");
}

}  // namespace daxstore
