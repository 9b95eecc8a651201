// A Platform with a fake sysfs tree in a temp directory and, optionally,
// ordinary files that pose as device-DAX character devices. Everything else
// is the real OS.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "platform/os_platform.h"
#include "testing/temp_dir.h"

namespace daxstore::testing {

// Holds the tree's directory; a base so that it exists before OsPlatform.
struct FakeSysfsDir {
  TempDir dir_;
};

class FakeSysfs : private FakeSysfsDir, public OsPlatform {
 public:
  FakeSysfs();

  const std::string& root() const { return dir_.path(); }

  // Adds bus/nd/devices/regionN with the given persistence_domain ("" for
  // none), and a deep_flush attribute.
  void AddRegion(int n, const std::string& domain);

  // Makes `backing` (an ordinary file) look like /dev/daxR.0 of regionR:
  // a char device MAJ:MIN whose sysfs node reports size and align.
  void AddDeviceDax(const std::string& backing, int region, uint32_t major,
                    uint32_t minor, uint64_t size, uint64_t align);

  // What the last WriteSysfs wrote to rel, or "" if nothing.
  std::string Written(const std::string& rel);

  Result<int> Open(const std::string& path, int flags, mode_t mode) override;
  Result<FileInfo> Stat(int fd) override;
  Status WriteSysfs(const std::string& rel, const std::string& value) override;

 private:
  std::mutex mu_;
  std::map<std::string, FileInfo> devices_;  // backing path -> fake stat
  std::map<int, FileInfo> fd_devices_;
  std::map<std::string, std::string> written_;
};

}  // namespace daxstore::testing
