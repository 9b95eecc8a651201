// Where the kernel tier's guest script put things: devices and mount points
// arrive in environment variables (tests may read the environment; the
// library may not).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

namespace daxstore::kernel {

// True inside a kernel-tier guest (its init sets the topology).
inline bool InGuest() { return std::getenv("DAXSTORE_GUEST_TOPOLOGY"); }

// The value of `name`, or "" when unset.
inline std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// Reads a sysfs attribute as a number; 0 if it cannot.
inline uint64_t SysfsNumber(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  if (!(in >> s)) return 0;
  return std::stoull(s, nullptr, 0);
}

}  // namespace daxstore::kernel

// Binds `var` to the environment variable `name`. Outside the guest a missing
// variable skips the test with the reason; inside it, the guest script failed
// to set the device up, and that is a failure.
#define DAXSTORE_GUEST_PATH(var, name)                                   \
  std::string var = ::daxstore::kernel::Env(name);                       \
  if (var.empty()) {                                                     \
    if (::daxstore::kernel::InGuest()) {                                 \
      FAIL() << name " is not set: the guest script did not prepare it"; \
    }                                                                    \
    GTEST_SKIP() << name                                                 \
        " is not set: this test runs in the kernel tier "                \
        "(emulation/kernel/run-in-guest)";                               \
  }
