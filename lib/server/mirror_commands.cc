// The control channel's mirror commands (include/daxstore/image_server.h):
// mirror, query-mirrors, mirror-complete, mirror-cancel.
#include "server/mirror_commands.h"

#include <nlohmann/json.hpp>

#include "server/state.h"

namespace daxstore {
namespace {

using nlohmann::json;

json JobJson(const mirror::JobStatus& j) {
  json out = {{"volume", j.volume},
              {"target", j.target},
              {"state", mirror::StateName(j.state)},
              {"ready", j.ready},
              {"bytes_total", j.bytes_total},
              {"bytes_done", j.bytes_done},
              {"zero_bytes", j.zero_bytes},
              {"dirty_blocks", j.dirty_blocks},
              {"passes", j.passes}};
  if (!j.error.empty()) out["error"] = j.error;
  return out;
}

std::string Str(const json& args, const char* key, const std::string& dflt) {
  auto it = args.find(key);
  if (it == args.end() || it->is_null()) return dflt;
  if (!it->is_string()) {
    throw MirrorCommandError{InvalidArgument(std::string("argument '") + key +
                                             "' must be a string")};
  }
  return it->get<std::string>();
}

void Must(Status st) {
  if (!st.ok()) throw MirrorCommandError{std::move(st)};
}

std::shared_ptr<mirror::Job> JobOf(ImageServer::State& s,
                                   const std::string& vol) {
  std::lock_guard lock(s.mirror_mu);
  auto it = s.mirrors.find(vol);
  if (it == s.mirrors.end()) {
    Must(NotFound("volume '" + vol +
                  "' has no mirror; start one with the mirror command"));
  }
  return it->second;
}

}  // namespace

bool IsMirrorCommand(const std::string& cmd) {
  return cmd == "mirror" || cmd == "query-mirrors" ||
         cmd == "mirror-complete" || cmd == "mirror-cancel";
}

json ExecuteMirrorCommand(ImageServer::State& s, const std::string& cmd,
                          const json& args) {
  const std::string vol = Str(args, "volume", s.image.volume());
  if (cmd == "query-mirrors") {
    std::vector<std::shared_ptr<mirror::Job>> jobs;
    {
      std::lock_guard lock(s.mirror_mu);
      for (const auto& [v, j] : s.mirrors) {
        if (!args.contains("volume") || v == vol) jobs.push_back(j);
      }
    }
    json out = json::array();
    for (const auto& j : jobs) out.push_back(JobJson(j->Query()));
    return out;
  }
  if (cmd == "mirror-complete") {
    auto job = JobOf(s, vol);
    Must(job->Complete());
    return JobJson(job->Query());
  }
  if (cmd == "mirror-cancel") {
    auto job = JobOf(s, vol);
    Must(job->Cancel());
    return JobJson(job->Query());
  }
  // mirror
  if (!s.started) {
    Must(Unsupported(
        "a mirror runs in the server that serves the image and follows its "
        "guests' writes; serve the image first ('daxstore serve nbd IMAGE')"));
  }
  mirror::NbdTargetOptions t;
  t.uri = Str(args, "to", "");
  if (t.uri.empty())
    Must(InvalidArgument("missing argument 'to' (an NBD URI)"));
  t.tls_psk_file = Str(args, "tls-psk-file", "");
  t.tls_certificates = Str(args, "tls-certificates", "");
  t.tls_username = Str(args, "tls-username", "");
  if (auto it = args.find("tls"); it != args.end()) {
    if (!it->is_boolean()) Must(InvalidArgument("tls must be a boolean"));
    t.tls = it->get<bool>();
  }
  if (!t.tls_psk_file.empty() || !t.tls_certificates.empty()) t.tls = true;
  mirror::JobOptions o;
  o.volume = vol;
  o.target = t.uri;
  if (auto it = args.find("ready-blocks"); it != args.end()) {
    if (!it->is_number_unsigned()) {
      Must(InvalidArgument("ready-blocks must be a number"));
    }
    o.ready_blocks = it->get<uint64_t>();
  }
  if (auto it = args.find("io-timeout"); it != args.end()) {
    if (!it->is_number_unsigned() || it->get<uint64_t>() < 1 ||
        it->get<uint64_t>() > 3600) {
      Must(InvalidArgument("io-timeout must be a number of seconds, 1-3600"));
    }
    t.io_timeout_ms = static_cast<int>(it->get<uint64_t>() * 1000);
  }
  {
    std::lock_guard lock(s.mirror_mu);
    if (auto it = s.mirrors.find(vol); it != s.mirrors.end()) {
      mirror::State st = it->second->Query().state;
      if (st != mirror::State::kFailed && st != mirror::State::kCancelled) {
        Must(Busy("volume '" + vol + "' already has a mirror (" +
                  mirror::StateName(st) + ") to " + it->second->Query().target +
                  "; mirror-cancel ends it"));
      }
    }
  }
  auto handle = s.image.OpenVolume(vol);
  if (!handle.ok()) {
    Must(NotFound("no volume '" + vol + "'; query-volumes lists them"));
  }
  auto target = mirror::ConnectNbd(t);
  Must(target.status());
  auto job = mirror::Job::Start(std::move(handle).value(),
                                std::move(target).value(), o);
  Must(job.status());
  std::shared_ptr<mirror::Job> j = std::move(job).value();
  {
    std::lock_guard lock(s.mirror_mu);
    auto& slot = s.mirrors[vol];
    if (slot) {
      mirror::State st = slot->Query().state;
      if (st != mirror::State::kFailed && st != mirror::State::kCancelled) {
        Must(Busy("volume '" + vol + "' already has a mirror"));
      }
    }
    slot = j;
  }
  return JobJson(j->Query());
}

}  // namespace daxstore
