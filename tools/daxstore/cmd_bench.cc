// daxstore bench persist: a quick look at durable-write cost on one target,
// against pwrite + fdatasync on a page-cache file beside it. The full,
// side-by-side suite is bench/ (Google Benchmark); this is the one-minute
// answer an admin wants from the CLI.
#include <fcntl.h>  // O_* flags for Platform::Open

#include <chrono>
#include <cstring>
#include <iostream>
#include <memory>
#include <vector>

#include "commands.h"
#include "daxstore/size.h"

namespace daxstore::cli {
namespace {

struct BenchArgs {
  std::string path;
  std::string size = "64M";
  std::string emulate;
  std::string compare_file;  // page-cache file for pwrite + fdatasync
  double seconds = 0.2;      // per measurement
};

using Clock = std::chrono::steady_clock;

// Runs op until `seconds` pass; returns operations per second.
template <typename Op>
double Rate(double seconds, Op op) {
  auto start = Clock::now();
  uint64_t n = 0;
  double elapsed = 0;
  do {
    for (int i = 0; i < 16; ++i) op(n++);
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed < seconds);
  return static_cast<double>(n) / elapsed;
}

void Persist(const BenchArgs& a) {
  MapOptions o;
  o.create_size = Must(ParseSize(a.size));
  if (!a.emulate.empty()) o.emulate = Must(ParsePersistenceDomain(a.emulate));
  Mapping m = Must(Mapping::Open(a.path, o));
  std::string cmp =
      a.compare_file.empty() ? a.path + ".pagecache" : a.compare_file;
  Platform& os = *DefaultPlatform();
  OpenFile file(os, Must(os.Open(cmp, O_RDWR | O_CREAT, 0644)));
  std::vector<char> buf(1 << 20, 'x');
  nlohmann::json rows = nlohmann::json::array();
  for (size_t sz : {64ul, 256ul, 4096ul, 65536ul, 1ul << 20}) {
    size_t slots = m.size() / sz;
    if (slots == 0) continue;
    double map_rate = Rate(a.seconds, [&](uint64_t i) {
      m.MemcpyPersist(m.bytes() + (i % slots) * sz, buf.data(), sz);
    });
    // The page-cache baseline: pwrite, then fdatasync, per write.
    double sync_rate = Rate(a.seconds, [&](uint64_t i) {
      auto wrote = os.PWrite(file.fd(), buf.data(), sz, (i % 64) * sz);
      if (!wrote.ok()) throw Failure{wrote.status().WithContext(cmp)};
      Status synced = os.SyncData(file.fd());
      if (!synced.ok()) throw Failure{synced.WithContext(cmp)};
    });
    rows.push_back(
        {{"size", sz},
         {"mapping_ops_per_sec", static_cast<uint64_t>(map_rate)},
         {"pwrite_fdatasync_ops_per_sec", static_cast<uint64_t>(sync_rate)},
         {"speedup", map_rate / sync_rate}});
  }
  Must(os.Remove(cmp));
  PrintJson({{"mapping", MappingJson(m.info())},
             {"durable_writes", rows},
             {"note",
              "sequential durable writes; the mapping persists with its "
              "granularity's functions, the other file with pwrite + "
              "fdatasync"}});
}

}  // namespace

void AddBenchCommands(CLI::App& app) {
  auto* noun =
      app.add_subcommand("bench", "quick measurements")->require_subcommand(1);
  auto args = std::make_shared<BenchArgs>();
  auto* p = noun->add_subcommand(
      "persist", "durable-write rate through a mapping vs pwrite+fdatasync");
  p->add_option("path", args->path, "file or device to map")->required();
  p->add_option("-s,--size", args->size, "file size when creating");
  p->add_option("--emulate", args->emulate,
                "declare the file pmem: cpu_cache or memory_controller");
  p->add_option("--compare-file", args->compare_file,
                "page-cache file for the pwrite + fdatasync side");
  p->add_option("--seconds", args->seconds, "time per measurement");
  p->callback([args] { Persist(*args); });
}

}  // namespace daxstore::cli
