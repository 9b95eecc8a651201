#include "testing/fake_sysfs.h"

#include <filesystem>

namespace daxstore::testing {

namespace fs = std::filesystem;

FakeSysfs::FakeSysfs() : OsPlatform(dir_.path()) {
  fs::create_directories(dir_.path() + "/bus/nd/devices");
  fs::create_directories(dir_.path() + "/dev/char");
}

void FakeSysfs::AddRegion(int n, const std::string& domain) {
  std::string region = "region" + std::to_string(n);
  std::string real = root() + "/devices/platform/ndbus0/" + region;
  fs::create_directories(real);
  if (!domain.empty()) WriteText(real + "/persistence_domain", domain + "\n");
  WriteText(real + "/deep_flush", "1\n");
  fs::create_symlink("../../../devices/platform/ndbus0/" + region,
                     root() + "/bus/nd/devices/" + region);
}

void FakeSysfs::AddDeviceDax(const std::string& backing, int region,
                             uint32_t major, uint32_t minor, uint64_t size,
                             uint64_t align) {
  std::string name = "dax" + std::to_string(region) + ".0";
  std::string dev = root() + "/devices/platform/ndbus0/region" +
                    std::to_string(region) + "/" + name + "/dax/" + name;
  fs::create_directories(dev);
  WriteText(dev + "/size", std::to_string(size) + "\n");
  WriteText(dev + "/align", std::to_string(align) + "\n");
  std::string node = std::to_string(major) + ":" + std::to_string(minor);
  fs::create_symlink("../../devices/platform/ndbus0/region" +
                         std::to_string(region) + "/" + name + "/dax/" + name,
                     root() + "/dev/char/" + node);
  FileInfo info;
  info.type = FileInfo::Type::kCharDevice;
  info.dev_major = major;
  info.dev_minor = minor;
  std::lock_guard<std::mutex> lock(mu_);
  devices_[backing] = info;
}

std::string FakeSysfs::Written(const std::string& rel) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = written_.find(rel);
  return it == written_.end() ? "" : it->second;
}

Result<int> FakeSysfs::Open(const std::string& path, int flags, mode_t mode) {
  auto fd = OsPlatform::Open(path, flags, mode);
  if (fd.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = devices_.find(path);
    if (it != devices_.end()) {
      fd_devices_[*fd] = it->second;
    } else {
      fd_devices_.erase(*fd);
    }
  }
  return fd;
}

Result<FileInfo> FakeSysfs::Stat(int fd) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = fd_devices_.find(fd);
    if (it != fd_devices_.end()) return it->second;
  }
  return OsPlatform::Stat(fd);
}

Status FakeSysfs::WriteSysfs(const std::string& rel, const std::string& value) {
  Status s = OsPlatform::WriteSysfs(rel, value);
  if (s.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    written_[rel] = value;
  }
  return s;
}

}  // namespace daxstore::testing
