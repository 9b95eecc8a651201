// A program outside the tree, built against the installed daxstore.
#include <daxstore/mapping.h>

#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  daxstore::MapOptions o;
  o.create_size = 1 << 16;
  o.emulate = daxstore::PersistenceDomain::kMemoryController;
  auto m = daxstore::Mapping::Open(argv[1], o);
  if (!m.ok()) {
    std::fprintf(stderr, "%s\n", m.status().message().c_str());
    return 1;
  }
  m->MemcpyPersist(m->data(), "consumer", 9);
  std::printf("%s %s\n", static_cast<const char*>(m->data()),
              std::string(daxstore::GranularityName(m->granularity())).c_str());
  return std::strcmp(static_cast<const char*>(m->data()), "consumer") == 0 &&
                 m->granularity() == daxstore::Granularity::kCacheLine
             ? 0
             : 1;
}
