// daxstore image create|info|check: make, describe and verify VM disk images.
// import/export live in cmd_image_copy.cc.
#include <cstdio>
#include <memory>

#include "commands.h"
#include "daxstore/image.h"
#include "daxstore/size.h"
#include "image_target.h"

namespace daxstore::cli {
namespace {

struct ImageArgs {
  std::string target, size, block_size, emulate, volume, control;
  uint32_t logical_block_size = 512;
  uint32_t max_volumes = ImageOptions().max_volumes;
  bool repair = false;
  bool force = false;
  bool overcommit = false;
};

// The parts of `image info` that only this process can add to what the
// image (or its server) reports: a readable size and the mapping.
void AddLocalInfo(nlohmann::json& j, const ImageTarget& t) {
  j["virtual_size_human"] = FormatSizeHuman(j.value("virtual_size", 0ull));
  j["overcommitted"] =
      j.value("data_blocks", 0ull) < j.value("virtual_blocks", 0ull);
  MapOptions ro = t.options;
  ro.access = Access::kReadOnly;
  auto m = Mapping::Open(t.path, ro);
  if (m.ok()) j["mapping"] = MappingJson(m->info());
}

nlohmann::json InfoJson(const Image& img, const ImageTarget& t) {
  ImageInfo i = Must(img.Info());
  nlohmann::json j;
  j["path"] = i.path;
  j["virtual_size"] = i.virtual_size;
  j["allocated_bytes"] = i.allocated_bytes;
  j["logical_block_size"] = i.logical_block_size;
  j["block_size"] = i.block_size;
  j["virtual_blocks"] = i.virtual_blocks;
  j["data_blocks"] = i.data_blocks;
  j["allocated_blocks"] = i.allocated_blocks;
  j["free_blocks"] = i.free_blocks();
  j["metadata_bytes"] = i.metadata_bytes;
  j["lanes"] = i.lanes;
  j["recovered_records"] = i.recovered_records;
  j["max_volumes"] = i.max_volumes;
  j["volumes"] = i.volumes;
  AddLocalInfo(j, t);
  return j;
}

void Create(const CLI::App* cmd, const ImageArgs& a) {
  ImageOptions o;
  o.virtual_size = Must(ParseSize(a.size));
  o.logical_block_size = a.logical_block_size;
  o.max_volumes = a.max_volumes;
  o.allow_overcommit = a.overcommit;
  if (!a.block_size.empty()) {
    o.block_size = static_cast<uint32_t>(Must(ParseSize(a.block_size)));
  }
  ImageTarget t = ResolveImageTarget(cmd, a.target, a.emulate);
  // (An existing image is refused below, --force or not.)
  auto at = DefaultPlatform()->StatPath(t.path);
  if (!a.force && at.ok() && !FormatLosesNothing(t) &&
      !Image::Open(t.path, t.options).ok()) {
    if (at->type != FileInfo::Type::kRegular) {
      throw Failure{Busy(
          t.path +
          " holds data that is not a daxstore image (non-zero bytes in its "
          "first 4 MiB or last 1 MiB, where partition tables, file systems "
          "and pools start); pass --force to format it (its data is lost)")};
    }
    throw Failure{Busy(t.path +
                       " exists and holds data that is not a daxstore "
                       "image; pick a new path or pass --force to format it "
                       "(its data is lost)")};
  }
  Image img = CreateImage(t, o);
  nlohmann::json j = InfoJson(img, t);
  if (j.value("overcommitted", false)) {
    std::fprintf(stderr,
                 "daxstore: %s promises %s but its data blocks hold %s: "
                 "writes that need a new block fail with ENOSPC once they "
                 "run out ('daxstore image info' shows free_blocks)\n",
                 a.target.c_str(), FormatSizeHuman(o.virtual_size).c_str(),
                 FormatSizeHuman(j.value("data_blocks", 0ull) *
                                 j.value("block_size", 0ull))
                     .c_str());
  }
  PrintJson(j);
}

void Info(const CLI::App* cmd, const ImageArgs& a) {
  ImageTarget t = ResolveImageTarget(cmd, a.target, a.emulate);
  nlohmann::json j = ImageRequest(cmd, a.target, a.emulate, a.control,
                                  {{"execute", "query-image"}}, false);
  AddLocalInfo(j, t);
  if (!a.volume.empty()) {
    nlohmann::json vols = ImageRequest(cmd, a.target, a.emulate, a.control,
                                       {{"execute", "query-volumes"}}, false);
    for (const auto& v : vols) {
      if (v.value("name", "") == a.volume) j["volume"] = v;
    }
    if (!j.contains("volume")) {
      throw Failure{NotFound("image " + a.target + " has no volume '" +
                             a.volume + "'; 'daxstore image list " + a.target +
                             "' shows them")};
    }
  }
  PrintJson(j);
}

void Check(const CLI::App* cmd, const ImageArgs& a) {
  ImageTarget t = ResolveImageTarget(cmd, a.target, a.emulate);
  MapOptions mo = t.options;
  if (!a.repair) mo.access = Access::kReadOnly;
  Image img = Must(Image::Open(t.path, mo));
  CheckReport r;
  {
    // Drawn only while stderr is a terminal (Progress).
    std::unique_ptr<Progress> bar;
    r = Must(img.Check(a.repair, [&bar](uint64_t done, uint64_t total) {
      if (!bar) bar = std::make_unique<Progress>("check", total);
      bar->Update(done);
    }));
  }
  PrintJson({{"path", t.path},
             {"clean", r.clean()},
             {"repaired", r.repaired},
             {"findings", r.findings},
             {"mapped_blocks", r.mapped_blocks},
             {"leaked_blocks", r.leaked_blocks},
             {"overcommitted_blocks", r.overcommitted_blocks},
             {"bad_entries", r.bad_entries}});
  if (!r.clean() && !r.repaired) {
    throw Failure{Corruption(t.path + ": " + std::to_string(r.findings.size()) +
                             " problem(s) found; run daxstore image check "
                             "--repair " +
                             a.target + " to fix them")};
  }
}

void AddTarget(CLI::App* c, ImageArgs& a, const char* what) {
  c->add_option("target", a.target, what)->required();
  c->add_option("--emulate", a.emulate,
                "declare a plain file pmem: cpu_cache or memory_controller");
}

}  // namespace

void AddImageCommands(CLI::App& app) {
  auto* noun = app.add_subcommand("image", "pmem-native VM disk images")
                   ->require_subcommand(1);
  auto a = std::make_shared<ImageArgs>();
  auto* create = noun->add_subcommand(
      "create", "create an image on a file, /dev/daxX.Y or a namespace");
  AddTarget(create, *a, "file path, daxX.Y or namespaceX.Y");
  create->add_option("-s,--size", a->size, "virtual disk size (e.g. 10G)")
      ->required();
  create
      ->add_option("--logical-block-size", a->logical_block_size,
                   "512 or 4096 (sector size the guest sees)")
      ->check(CLI::IsMember({512, 4096}));
  create->add_option("--block-size", a->block_size,
                     "allocation block, 4K to 2M (default 4K)");
  create->add_flag("--force", a->force,
                   "format an existing non-empty file that is not an image");
  create
      ->add_option("--max-volumes", a->max_volumes,
                   "volume slots: the disk, its snapshots and clones (1 to "
                   "64); each costs a block map of 0.2% of the size")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  create->add_flag("--overcommit", a->overcommit,
                   "on a namespace or device, allow a virtual size beyond "
                   "what the medium holds (writes fail with ENOSPC when it "
                   "is full)");
  create->callback([create, a] { Create(create, *a); });

  auto* info = noun->add_subcommand("info", "describe an image as JSON");
  AddTarget(info, *a, "image path or namespace");
  info->add_option("--volume", a->volume, "also describe this volume");
  info->add_option("--control", a->control,
                   "the control socket of the server that has the image "
                   "open (default: the one 'daxstore serve' makes)");
  info->callback([info, a] { Info(info, *a); });

  auto* check = noun->add_subcommand(
      "check", "verify an image's metadata; exit 1 unless clean or repaired");
  AddTarget(check, *a, "image path or namespace");
  check->add_flag("--repair", a->repair, "fix what is found");
  check->callback([check, a] { Check(check, *a); });

  AddImageCopyCommands(*noun);
  AddImageVolumeCommands(*noun);
}

}  // namespace daxstore::cli
