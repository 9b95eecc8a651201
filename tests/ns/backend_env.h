// The backends the namespace suite runs on. The emulated one builds a bus
// of the layout a test asks for; the kernel one (enabled inside the kernel
// tier with DAXSTORE_TEST_KERNEL_BUS=1) runs on whatever bus the guest has
// and skips tests whose layout it does not match.
#pragma once

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "daxstore/emulated_bus.h"
#include "daxstore/namespace.h"
#include "testing/temp_dir.h"

namespace daxstore::testing {

// Whether a test needs the layout's interleave ways exactly, or derives
// what it expects from the region's actual ways.
enum class Ways { kExact, kAny };

class BackendEnv {
 public:
  virtual ~BackendEnv() = default;
  // Opens a backend on a bus with the layout; kUnsupported means "skip".
  virtual Result<std::unique_ptr<NamespaceBackend>> Open(
      const EmulatedBusConfig& layout, Ways ways) = 0;
};

struct BackendParam {
  std::string name;
  std::shared_ptr<BackendEnv> (*make)();
};

inline void PrintTo(const BackendParam& p, std::ostream* os) { *os << p.name; }

std::vector<BackendParam> BackendsUnderTest();

class EmulatedEnv : public BackendEnv {
 public:
  Result<std::unique_ptr<NamespaceBackend>> Open(
      const EmulatedBusConfig& layout, Ways ways) override;
  const std::string& dir() const { return dir_.path(); }

 private:
  TempDir dir_;
};

}  // namespace daxstore::testing
