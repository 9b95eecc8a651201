// fuzz_seeds image|vhost|rbd_diff DIR [COUNT]: writes COUNT (default 200)
// inputs of the GoogleTest driver's generator into DIR as a libFuzzer seed
// corpus.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "fuzz/seeds.h"

int main(int argc, char** argv) {
  const std::string kind = argc < 3 ? "" : argv[1];
  if (kind != "image" && kind != "vhost" && kind != "rbd_diff") {
    std::fprintf(stderr,
                 "usage: fuzz_seeds image|vhost|rbd_diff DIR [COUNT]\n");
    return 2;
  }
  const bool image = kind == "image";
  const int count = argc > 3 ? std::atoi(argv[3]) : 200;
  // The drivers' own seeds, so the corpus starts where the tests do.
  std::mt19937_64 rng(image ? 12345 : kind == "vhost" ? 777 : 4242);
  for (int i = 0; i < count; ++i) {
    auto input = image             ? daxstore::fuzz::ImageSeed(rng, i)
                 : kind == "vhost" ? daxstore::fuzz::VhostSeed(rng, i)
                                   : daxstore::fuzz::RbdDiffSeed(rng, i);
    std::string path = std::string(argv[2]) + "/seed-" + std::to_string(i);
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(input.data()),
              static_cast<std::streamsize>(input.size()));
    if (!out) {
      std::fprintf(stderr, "fuzz_seeds: cannot write %s: does DIR exist?\n",
                   path.c_str());
      return 1;
    }
  }
  return 0;
}
