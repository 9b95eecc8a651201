// daxstore image sharing|dedup: how much of the volumes' content is
// zeros, shared already, duplicated inside a volume or across volumes, and
// what a dedup would free (sharing changes nothing); and the dedup itself.
// Offline or while a server has the image (through its control socket).
#include <string>
#include <vector>

#include "commands.h"
#include "daxstore/size.h"
#include "image_target.h"
#include "output.h"

namespace daxstore::cli {
namespace {

struct SharingArgs {
  std::string image;
  std::vector<std::string> volumes;
  std::string emulate;
  std::string control;
  std::string scope = "volume";
  std::string speed;  // bytes per second, with a size suffix; "" : no limit
};

}  // namespace

void AddImageSharingCommands(CLI::App& image) {
  auto a = std::make_shared<SharingArgs>();
  auto* c = image.add_subcommand(
      "sharing",
      "report zero blocks, shared blocks, self-sharing, inter-volume sharing "
      "and what a dedup would free, per volume and in total");
  c->add_option("image", a->image,
                "the image: a file, /dev/daxX.Y or a namespace")
      ->required();
  c->add_option("--volume", a->volumes,
                "a volume to report (repeat for more; default: every volume)");
  AddImageRequestOptions(c, &a->emulate, &a->control);
  c->callback([c, a] {
    nlohmann::json req = {{"execute", "query-sharing"}};
    if (!a->volumes.empty()) req["arguments"] = {{"volumes", a->volumes}};
    PrintJson(ImageRequest(c, a->image, a->emulate, a->control, req, false));
  });

  auto d = std::make_shared<SharingArgs>();
  auto* dd = image.add_subcommand(
      "dedup",
      "make blocks of equal content one data block (copy-on-write "
      "afterwards), inside each volume or within sharing groups");
  dd->add_option("image", d->image,
                 "the image: a file, /dev/daxX.Y or a namespace")
      ->required();
  dd->add_option("--scope", d->scope,
                 "volume (default): share blocks inside each volume only; "
                 "group: also between the volumes of one sharing group")
      ->check(CLI::IsMember({"volume", "group"}));
  dd->add_option("--volume", d->volumes,
                 "a volume to dedup (repeat for more; default: every volume)");
  dd->add_option("--speed", d->speed,
                 "hold the pass to this many bytes of blocks scanned per "
                 "second (e.g. 256M; default: no limit), so it leaves guests "
                 "more memory bandwidth");
  AddImageRequestOptions(dd, &d->emulate, &d->control);
  dd->callback([dd, d] {
    nlohmann::json args = {{"scope", d->scope}};
    if (!d->volumes.empty()) args["volumes"] = d->volumes;
    if (!d->speed.empty()) {
      auto speed = ParseSize(d->speed);
      if (!speed.ok() || *speed == 0) {
        throw Fail("--speed " + d->speed +
                   " is no rate: give bytes per second with an optional k, "
                   "m or g suffix, e.g. 256m");
      }
      args["speed"] = *speed;
    }
    PrintJson(ImageRequest(dd, d->image, d->emulate, d->control,
                           {{"execute", "dedup"}, {"arguments", args}}, true));
  });
}

}  // namespace daxstore::cli
