// daxstore image snapshot|clone|delete|list: the volumes of a VM disk image.
#include <string>

#include "commands.h"
#include "daxstore/image.h"

namespace daxstore::cli {
namespace {

struct VolumeArgs {
  std::string image;
  std::string volume;  // snapshot: the volume to snapshot ("" = base)
  std::string snapshot;
  std::string name;
  std::string emulate;
};

Image OpenImage(const VolumeArgs& a, const std::string& volume = "") {
  MapOptions o;
  if (!a.emulate.empty()) o.emulate = Must(ParsePersistenceDomain(a.emulate));
  return Must(Image::Open(a.image, volume, o));
}

nlohmann::json VolumeJson(const VolumeInfo& v, uint64_t block_size) {
  return {{"name", v.name},
          {"snapshot", v.snapshot},
          {"parent", v.parent},
          {"created_unix_ns", v.created_unix_ns},
          {"mapped_blocks", v.mapped_blocks},
          {"unique_blocks", v.unique_blocks},
          {"mapped_bytes", v.mapped_blocks * block_size},
          {"unique_bytes", v.unique_blocks * block_size}};
}

// Prints the volume `name` of img.
void PrintVolume(const Image& img, const std::string& name) {
  for (const VolumeInfo& v : Must(img.Volumes())) {
    if (v.name == name) return PrintJson(VolumeJson(v, img.block_size()));
  }
  throw Failure{Internal("volume " + name + " vanished")};
}

void List(const VolumeArgs& a) {
  Image img = OpenImage(a);
  nlohmann::json j = nlohmann::json::array();
  for (const VolumeInfo& v : Must(img.Volumes())) {
    j.push_back(VolumeJson(v, img.block_size()));
  }
  PrintJson(j);
}

CLI::App* Verb(CLI::App& image, const char* name, const char* help,
               VolumeArgs& a) {
  auto* c = image.add_subcommand(name, help);
  c->add_option("image", a.image, "the image file or /dev/daxX.Y")->required();
  c->add_option("--emulate", a.emulate,
                "declare the file pmem: cpu_cache or memory_controller");
  return c;
}

}  // namespace

void AddImageVolumeCommands(CLI::App& image) {
  auto a = std::make_shared<VolumeArgs>();
  auto* snap =
      Verb(image, "snapshot", "take a read-only snapshot NAME of a volume", *a);
  snap->add_option("name", a->name, "the snapshot's name")->required();
  snap->add_option("--volume", a->volume,
                   "the volume to snapshot (default: base)");
  snap->callback([a] {
    Image img = OpenImage(*a, a->volume);
    Must(img.Snapshot(a->name));
    PrintVolume(img, a->name);
  });

  auto* clone =
      Verb(image, "clone", "make a writable clone NAME of SNAPSHOT", *a);
  clone->add_option("snapshot", a->snapshot, "the snapshot to clone")
      ->required();
  clone->add_option("name", a->name, "the clone's name")->required();
  clone->callback([a] {
    Image img = OpenImage(*a);
    Must(img.Clone(a->snapshot, a->name));
    PrintVolume(img, a->name);
  });

  auto* del =
      Verb(image, "delete",
           "delete a snapshot or clone, freeing blocks only it used", *a);
  del->add_option("name", a->name, "the volume to delete")->required();
  del->callback([a] {
    Image img = OpenImage(*a);
    Must(img.DeleteVolume(a->name));
    PrintJson({{"deleted", a->name},
               {"allocated_bytes", Must(img.Info()).allocated_bytes}});
  });

  auto* list = Verb(image, "list", "list the volumes as a JSON array", *a);
  list->callback([a] { List(*a); });
}

}  // namespace daxstore::cli
