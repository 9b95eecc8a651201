// make_image PATH SIZE_MIB: creates a daxstore image for the end-to-end
// tests (the `daxstore image` verbs live on another branch).
#include <cstdio>
#include <cstdlib>

#include "daxstore/image.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: make_image PATH SIZE_MIB\n");
    return 2;
  }
  daxstore::ImageOptions options;
  options.virtual_size = std::strtoull(argv[2], nullptr, 10) << 20;
  auto image = daxstore::Image::Create(argv[1], options);
  if (!image.ok()) {
    std::fprintf(stderr, "make_image: %s\n", image.status().message().c_str());
    return 1;
  }
  return 0;
}
