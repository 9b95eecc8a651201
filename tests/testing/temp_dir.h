// A directory that lives as long as the test; removed with its content.
#pragma once

#include <string>

namespace daxstore::testing {

class TempDir {
 public:
  // Under $TMPDIR (default /tmp) unless `parent` is given.
  explicit TempDir(const std::string& parent = "");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const {
    return path_ + "/" + name;
  }

 private:
  std::string path_;
};

// Writes text to path, creating parent directories.
void WriteText(const std::string& path, const std::string& text);

}  // namespace daxstore::testing
