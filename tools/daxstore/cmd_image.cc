// daxstore image create|info: make and describe VM disk images. check
// lives in cmd_image_check.cc, import/export in cmd_image_copy.cc.
#include <cstdio>
#include <memory>
#include <optional>

#include "commands.h"
#include "daxstore/image.h"
#include "daxstore/size.h"
#include "identity.h"
#include "image_target.h"
#include "output.h"

namespace daxstore::cli {
namespace {

struct ImageArgs {
  std::string target, size, block_size, emulate, volume, control;
  uint32_t logical_block_size = 512;
  uint32_t max_volumes = ImageOptions().max_volumes;
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
  j["retired_blocks"] = i.retired_blocks;
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
  RefuseHeld(a.target, t.path);
  // (An existing image is refused below, --force or not.)
  if (DefaultPlatform()->StatPath(t.path).ok() && !FormatLosesNothing(t)) {
    RefuseToFormat(t, a.target, a.force);
  }
  std::optional<Image> img;
  try {
    img.emplace(CreateImage(t, o));
  } catch (const Failure& f) {
    if (PermissionDenied(f.status)) throw Explain(f.status, a.target, t.path);
    throw;
  }
  nlohmann::json j = InfoJson(*img, t);
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
  AddOutputOption(create);
  create->callback([create, a] { Create(create, *a); });

  auto* info = noun->add_subcommand(
      "info", "describe an image (JSON, or --output=human)");
  AddTarget(info, *a, "image path or namespace");
  info->add_option("--volume", a->volume, "also describe this volume");
  info->add_option("--control", a->control,
                   "the control socket of the server that has the image "
                   "open (default: the one 'daxstore serve' makes)");
  AddOutputOption(info);
  info->callback([info, a] { Info(info, *a); });

  AddImageCheckCommand(*noun);

  AddImageCopyCommands(*noun);
  AddImageDiffCommands(*noun);
  AddImageSharingCommands(*noun);
  AddImageMirrorCommands(*noun);
  AddImageVolumeCommands(*noun);
}

}  // namespace daxstore::cli
