// daxstore image snapshot|clone|delete|list: the volumes of a VM disk image,
// offline or while a server has it (through its control socket).
#include <string>

#include "commands.h"
#include "image_target.h"
#include "output.h"

namespace daxstore::cli {
namespace {

struct VolumeArgs {
  std::string image;
  std::string volume;  // snapshot: the volume to snapshot ("" = base)
  std::string snapshot;
  std::string name;
  std::string group;      // clone, set-group: the sharing group
  bool no_group = false;  // set-group --none
  std::string emulate;
  std::string control;
};

nlohmann::json Request(const CLI::App* cmd, const VolumeArgs& a,
                       const std::string& execute, nlohmann::json args,
                       bool write) {
  nlohmann::json req = {{"execute", execute}};
  if (!args.is_null()) req["arguments"] = std::move(args);
  return ImageRequest(cmd, a.image, a.emulate, a.control, req, write);
}

// The volume `name` as query-volumes reports it.
nlohmann::json VolumeNamed(const CLI::App* cmd, const VolumeArgs& a,
                           const std::string& name) {
  for (const auto& v : Request(cmd, a, "query-volumes", nullptr, false)) {
    if (v.value("name", "") == name) return v;
  }
  throw Failure{NotFound("no volume '" + name + "' in " + a.image)};
}

CLI::App* Verb(CLI::App& image, const char* name, const char* help,
               VolumeArgs& a) {
  auto* c = image.add_subcommand(name, help);
  c->add_option("image", a.image,
                "the image: a file, /dev/daxX.Y or a namespace")
      ->required();
  AddImageRequestOptions(c, &a.emulate, &a.control);
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
  snap->callback([snap, a] {
    nlohmann::json args = {{"name", a->name}};
    if (!a->volume.empty()) args["volume"] = a->volume;
    Request(snap, *a, "snapshot", args, true);
    PrintJson(VolumeNamed(snap, *a, a->name));
  });

  auto* clone =
      Verb(image, "clone", "make a writable clone NAME of SNAPSHOT", *a);
  clone->add_option("snapshot", a->snapshot, "the snapshot to clone")
      ->required();
  clone->add_option("name", a->name, "the clone's name")->required();
  clone->add_option("--group", a->group,
                    "the clone's sharing group (default: none, it shares "
                    "content with no other volume)");
  clone->callback([clone, a] {
    nlohmann::json args = {{"snapshot", a->snapshot}, {"name", a->name}};
    if (!a->group.empty()) args["group"] = a->group;
    Request(clone, *a, "clone", args, true);
    PrintJson(VolumeNamed(clone, *a, a->name));
  });

  auto* group = Verb(image, "set-group",
                     "put a volume in a sharing group (volumes of one group "
                     "may share content), or with --none in none",
                     *a);
  group->add_option("volume", a->name, "the volume")->required();
  group->add_option("group", a->group, "the sharing group");
  group->add_flag("--none", a->no_group,
                  "take the volume out of its group: it shares content with "
                  "no other volume");
  group->callback([group, a] {
    if (a->group.empty() == !a->no_group) {
      throw Failure{InvalidArgument(
          "name a GROUP, or pass --none to take the volume out of its group")};
    }
    Request(group, *a, "set-group", {{"volume", a->name}, {"group", a->group}},
            true);
    PrintJson(VolumeNamed(group, *a, a->name));
  });

  auto* del =
      Verb(image, "delete",
           "delete a snapshot or clone, freeing blocks only it used", *a);
  del->add_option("name", a->name, "the volume to delete")->required();
  del->callback([del, a] {
    Request(del, *a, "delete", {{"name", a->name}}, true);
    nlohmann::json info = Request(del, *a, "query-image", nullptr, false);
    PrintJson({{"deleted", a->name},
               {"allocated_bytes", info.value("allocated_bytes", 0)}});
  });

  auto* list = Verb(image, "list",
                    "list the volumes (JSON array, or --output=human)", *a);
  list->callback([list, a] {
    PrintJson(Request(list, *a, "query-volumes", nullptr, false));
  });
}

}  // namespace daxstore::cli
