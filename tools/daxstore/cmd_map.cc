// daxstore map info|badblocks: what a mapping of a file or device gives.
#include <iostream>
#include <memory>

#include "commands.h"
#include "daxstore/size.h"

namespace daxstore::cli {
namespace {

struct MapArgs {
  std::string path;
  std::string size;     // create/grow to this size
  std::string emulate;  // cpu_cache | memory_controller
  std::string require;  // byte | cache-line | page
  bool read_only = false;
  bool clear = false;
};

MapOptions ToOptions(const MapArgs& a) {
  MapOptions o;
  o.access = a.read_only ? Access::kReadOnly : Access::kReadWrite;
  if (!a.size.empty()) o.create_size = Must(ParseSize(a.size));
  if (!a.emulate.empty()) o.emulate = Must(ParsePersistenceDomain(a.emulate));
  if (!a.require.empty()) o.require = Must(ParseGranularity(a.require));
  return o;
}

void AddCommon(CLI::App* c, MapArgs& a) {
  c->add_option("path", a.path, "file, DAX file or /dev/daxX.Y")->required();
  c->add_option("-s,--size", a.size, "create or grow the file to SIZE");
  c->add_option("--emulate", a.emulate,
                "declare the file pmem: cpu_cache or memory_controller");
  c->add_option("--require", a.require,
                "fail unless granularity is byte, cache-line or page");
  c->add_flag("--read-only", a.read_only, "map read-only");
}

void Info(const MapArgs& a) {
  Mapping m = Must(Mapping::Open(a.path, ToOptions(a)));
  PrintJson(MappingJson(m.info()));
}

void BadBlocks(const MapArgs& a) {
  Mapping m = Must(Mapping::Open(a.path, ToOptions(a)));
  auto bad = Must(m.BadBlocks());
  nlohmann::json j = nlohmann::json::array();
  for (const auto& r : bad) {
    if (a.clear) Must(m.ClearBadBlock(r));
    j.push_back(
        {{"offset", r.offset}, {"length", r.length}, {"cleared", a.clear}});
  }
  PrintJson(
      {{"path", a.path}, {"badblock_count", bad.size()}, {"badblocks", j}});
}

}  // namespace

void AddMapCommands(CLI::App& app) {
  auto* noun =
      app.add_subcommand("map", "map files and devices")->require_subcommand(1);
  auto args = std::make_shared<MapArgs>();
  auto* info = noun->add_subcommand(
      "info", "map PATH and print its kind and persistence granularity");
  AddCommon(info, *args);
  info->callback([args] { Info(*args); });
  auto* bb = noun->add_subcommand(
      "badblocks", "list (and with --clear, clear) bad blocks of PATH");
  AddCommon(bb, *args);
  bb->add_flag("--clear", args->clear, "clear every bad range found");
  bb->callback([args] { BadBlocks(*args); });
}

}  // namespace daxstore::cli
