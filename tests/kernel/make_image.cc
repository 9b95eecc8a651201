// daxstore_make_image PATH SIZE_MIB: creates an empty daxstore image (for
// the vhost-user-blk guest test and benchmark).
#include <cstdio>
#include <cstdlib>

#include "daxstore/image.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: daxstore_make_image PATH SIZE_MIB\n");
    return 2;
  }
  daxstore::ImageOptions o;
  o.virtual_size = std::strtoull(argv[2], nullptr, 10) << 20;
  auto img = daxstore::Image::Create(argv[1], o);
  if (!img.ok()) {
    std::fprintf(stderr, "daxstore_make_image: %s\n",
                 img.status().message().c_str());
    return 1;
  }
  return 0;
}
