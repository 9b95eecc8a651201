// daxstore image create|info|check: make, describe and verify VM disk images.
// import/export live in cmd_image_copy.cc.
#include <cerrno>
#include <memory>

#include "commands.h"
#include "daxstore/image.h"
#include "daxstore/size.h"
#include "image_target.h"

namespace daxstore::cli {
namespace {

struct ImageArgs {
  std::string target, size, block_size, emulate;
  uint32_t logical_block_size = 512;
  bool repair = false;
  bool force = false;
};

nlohmann::json InfoJson(const Image& img, const ImageTarget& t) {
  ImageInfo i = Must(img.Info());
  nlohmann::json j;
  j["path"] = i.path;
  j["virtual_size"] = i.virtual_size;
  j["virtual_size_human"] = FormatSizeHuman(i.virtual_size);
  j["allocated_bytes"] = i.allocated_bytes;
  j["logical_block_size"] = i.logical_block_size;
  j["block_size"] = i.block_size;
  j["virtual_blocks"] = i.virtual_blocks;
  j["data_blocks"] = i.data_blocks;
  j["allocated_blocks"] = i.allocated_blocks;
  j["retired_blocks"] = i.retired_blocks;
  j["metadata_bytes"] = i.metadata_bytes;
  j["lanes"] = i.lanes;
  j["recovered_records"] = i.recovered_records;
  MapOptions ro = t.options;
  ro.access = Access::kReadOnly;
  auto m = Mapping::Open(t.path, ro);
  if (m.ok()) j["mapping"] = MappingJson(m->info());
  return j;
}

void Create(const CLI::App* cmd, const ImageArgs& a) {
  ImageOptions o;
  o.virtual_size = Must(ParseSize(a.size));
  o.logical_block_size = a.logical_block_size;
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
  PrintJson(InfoJson(img, t));
}

void Info(const CLI::App* cmd, const ImageArgs& a) {
  ImageTarget t = ResolveImageTarget(cmd, a.target, a.emulate);
  MapOptions ro = t.options;
  ro.access = Access::kReadOnly;
  Image img = Must(Image::Open(t.path, ro));
  PrintJson(InfoJson(img, t));
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
  nlohmann::json lost = nlohmann::json::array();
  for (const BadRange& b : r.media_errors) {
    lost.push_back(
        {{"volume", b.volume}, {"offset", b.offset}, {"length", b.length}});
  }
  PrintJson({{"path", t.path},
             {"clean", r.clean()},
             {"repaired", r.repaired},
             {"findings", r.findings},
             {"media_errors", lost},
             {"mapped_blocks", r.mapped_blocks},
             {"leaked_blocks", r.leaked_blocks},
             {"overcommitted_blocks", r.overcommitted_blocks},
             {"bad_entries", r.bad_entries}});
  if (!r.media_errors.empty()) {
    throw Failure{IoError(t.path + ": " +
                              std::to_string(r.media_errors.size()) +
                              " guest range(s) lie on bad blocks of the media "
                              "(media_errors); rewrite them or restore them "
                              "from a backup",
                          EIO)};
  }
  if (!r.findings.empty() && !r.repaired) {
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
  create->callback([create, a] { Create(create, *a); });

  auto* info = noun->add_subcommand("info", "describe an image as JSON");
  AddTarget(info, *a, "image path or namespace");
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
