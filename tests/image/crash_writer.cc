// Leaves the image at PATH as a writer that died mid-stream leaves it: it
// writes block 0 twice (the second write frees the first's data block, so
// the lane keeps its redo record valid) and exits without closing the
// image. For image/safety_cli_test.sh.   crash_writer PATH
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "daxstore/image.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: crash_writer PATH\n");
    return 2;
  }
  auto img = daxstore::Image::Open(argv[1]);
  if (!img.ok()) {
    std::fprintf(stderr, "%s\n", img.status().ToString().c_str());
    return 1;
  }
  const uint32_t bs = img->block_size();
  for (int fill : {0xa1, 0xb2}) {
    std::vector<uint8_t> block(bs, static_cast<uint8_t>(fill));
    daxstore::Status st = img->Write(0, block.data(), bs);
    if (!st.ok()) {
      std::fprintf(stderr, "%s\n", st.ToString().c_str());
      return 1;
    }
  }
  std::_Exit(0);  // no destructor: the record stays as a crash leaves it
}
