// daxstore image mirror|mirror-status|mirror-complete|mirror-cancel: copy
// a served volume to an NBD export while its guests write, through the
// control socket of the server that has the image (docs/migration.md).
#include <cerrno>
#include <chrono>
#include <string>
#include <thread>

#include "commands.h"
#include "image_target.h"
#include "output.h"

namespace daxstore::cli {
namespace {

struct MirrorArgs {
  std::string image, volume, to, emulate, control;
  std::string tls_psk_file, tls_certificates, tls_username;
  bool tls = false;
  bool wait = false;
  uint64_t ready_blocks = 64;
  uint64_t io_timeout = 30;
};

const char* kWhy =
    "a mirror runs in the server that serves the image and follows its "
    "guests' writes; serve it first ('daxstore serve nbd IMAGE')";

CLI::App* Verb(CLI::App& image, const char* name, const char* help,
               MirrorArgs& a) {
  auto* c = image.add_subcommand(name, help);
  c->add_option("image", a.image,
                "the image: a file, /dev/daxX.Y or a namespace")
      ->required();
  c->add_option("--volume", a.volume,
                "the volume (default: the image's default volume)");
  AddImageRequestOptions(c, &a.emulate, &a.control);
  return c;
}

nlohmann::json Args(const MirrorArgs& a) {
  nlohmann::json args = nlohmann::json::object();
  if (!a.volume.empty()) args["volume"] = a.volume;
  return args;
}

}  // namespace

void AddImageMirrorCommands(CLI::App& image) {
  auto m = std::make_shared<MirrorArgs>();
  auto* c = Verb(image, "mirror",
                 "copy a served volume to an NBD export and keep it in sync "
                 "while guests write (live migration's storage copy)",
                 *m);
  c->add_option("--to", m->to,
                "the destination: nbd://HOST:PORT/EXPORT, "
                "nbd+unix:///EXPORT?socket=PATH, nbds://... (TLS)")
      ->required();
  c->add_flag("--tls", m->tls, "require TLS (implied by the --tls-* options)");
  c->add_option("--tls-psk-file", m->tls_psk_file,
                "TLS with a pre-shared key: the PSK file (USER:HEXKEY lines)");
  c->add_option("--tls-certificates", m->tls_certificates,
                "TLS with X.509: the directory of ca-cert.pem, "
                "client-cert.pem and client-key.pem");
  c->add_option("--tls-username", m->tls_username,
                "the user name of the key in the PSK file (default: the server "
                "process's login name)");
  c->add_option("--ready-blocks", m->ready_blocks,
                "ready once a pass finds at most this many blocks written "
                "meanwhile (default 64)");
  c->add_option("--io-timeout", m->io_timeout,
                "fail when the destination answers nothing for this many "
                "seconds (default 30)")
      ->check(CLI::Range(1, 3600));
  c->add_flag("--wait", m->wait,
              "return once the mirror is ready (exit 1 if it fails)");
  c->callback([c, m] {
    nlohmann::json args = Args(*m);
    args["to"] = m->to;
    if (m->tls) args["tls"] = true;
    if (!m->tls_psk_file.empty()) args["tls-psk-file"] = m->tls_psk_file;
    if (!m->tls_certificates.empty()) {
      args["tls-certificates"] = m->tls_certificates;
    }
    if (!m->tls_username.empty()) args["tls-username"] = m->tls_username;
    args["ready-blocks"] = m->ready_blocks;
    args["io-timeout"] = m->io_timeout;
    nlohmann::json j =
        ServerRequest(c, m->image, m->emulate, m->control,
                      {{"execute", "mirror"}, {"arguments", args}}, kWhy);
    while (m->wait) {
      const std::string state = j.value("state", std::string());
      if (state == "failed") {
        throw Failure{IoError(
            "the mirror of volume '" + j.value("volume", std::string()) +
                "' failed: " + j.value("error", std::string()),
            EIO)};
      }
      if (state != "running") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      nlohmann::json q = {{"volume", j.value("volume", std::string())}};
      nlohmann::json all =
          ServerRequest(c, m->image, m->emulate, m->control,
                        {{"execute", "query-mirrors"}, {"arguments", q}}, kWhy);
      if (!all.is_array() || all.empty()) break;
      j = all[0];
    }
    PrintJson(j);
  });

  auto s = std::make_shared<MirrorArgs>();
  auto* st = Verb(image, "mirror-status",
                  "print the mirror jobs of a served image: state, bytes, "
                  "dirty blocks, error",
                  *s);
  st->callback([st, s] {
    PrintJson(ServerRequest(
        st, s->image, s->emulate, s->control,
        {{"execute", "query-mirrors"}, {"arguments", Args(*s)}}, kWhy));
  });

  auto k = std::make_shared<MirrorArgs>();
  auto* ck = Verb(image, "mirror-complete",
                  "switch over a ready mirror: fence the volume's writes, "
                  "copy the last ones, flush the destination",
                  *k);
  ck->callback([ck, k] {
    PrintJson(ServerRequest(
        ck, k->image, k->emulate, k->control,
        {{"execute", "mirror-complete"}, {"arguments", Args(*k)}}, kWhy));
  });

  auto x = std::make_shared<MirrorArgs>();
  auto* cx = Verb(image, "mirror-cancel",
                  "end a mirror; the destination is left as it is, the "
                  "source goes on (a completed mirror's fence is lifted)",
                  *x);
  cx->callback([cx, x] {
    PrintJson(ServerRequest(
        cx, x->image, x->emulate, x->control,
        {{"execute", "mirror-cancel"}, {"arguments", Args(*x)}}, kWhy));
  });
}

}  // namespace daxstore::cli
