#include "fuzz/rbd_diff_fuzz.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "daxstore/rbd_diff.h"

namespace daxstore::fuzz {
namespace {

class Checker : public rbd::DiffVisitor {
 public:
  Status Header(const rbd::DiffHeader& h) override {
    if (seen_) std::abort();  // the header comes once
    seen_ = true;
    size_ = h.size;
    return Status::Ok();
  }
  Status Data(uint64_t offset, std::span<const uint8_t> data) override {
    Within(offset, data.size());
    return Status::Ok();
  }
  Status Zero(uint64_t offset, uint64_t length) override {
    Within(offset, length);
    return Status::Ok();
  }

 private:
  void Within(uint64_t offset, uint64_t length) const {
    if (!seen_ || offset > size_ || length > size_ - offset) std::abort();
  }
  bool seen_ = false;
  uint64_t size_ = 0;
};

}  // namespace

int RbdDiffParse(const uint8_t* data, size_t size) {
  size_t pos = 0;
  rbd::DiffSource in = [&](std::span<uint8_t> buf) -> Result<size_t> {
    // Short reads of varying length, as a pipe gives.
    size_t n = std::min({buf.size(), size - pos, size_t{1} + pos % 7});
    if (n > 0) std::memcpy(buf.data(), data + pos, n);
    pos += n;
    return n;
  };
  Checker c;
  (void)rbd::ParseDiff(in, c);
  return 0;
}

}  // namespace daxstore::fuzz
