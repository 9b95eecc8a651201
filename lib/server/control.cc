// The control channel's commands (include/daxstore/image_server.h): JSON
// in, JSON out, modelled on QMP.
#include <fcntl.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "daxstore/platform.h"
#include "daxstore/rbd_diff.h"
#include "server/mirror_commands.h"
#include "server/state.h"

namespace daxstore {
namespace {

using nlohmann::json;

// A command failed: its reply carries the Status.
struct CommandError {
  Status status;
};

json ErrorJson(const Status& st) {
  return {{"class", std::string(ErrorKindName(st.kind()))},
          {"desc", st.message()},
          {"errno", ErrnoOf(st)}};
}

void Must(Status st) {
  if (!st.ok()) throw CommandError{std::move(st)};
}

// A string argument; required unless a fallback is given.
std::string Arg(const json& args, const char* key,
                const std::string* fallback = nullptr) {
  auto it = args.find(key);
  if (it == args.end() || it->is_null()) {
    if (fallback != nullptr) return *fallback;
    Must(InvalidArgument(std::string("missing argument '") + key + "'"));
  }
  if (!it->is_string()) {
    Must(InvalidArgument(std::string("argument '") + key +
                         "' must be a string"));
  }
  return it->get<std::string>();
}

json VolumeJson(const VolumeInfo& v, uint64_t block_size) {
  if (v.damaged) {
    return {{"name", v.name}, {"damaged", true}, {"damage", v.damage}};
  }
  return {{"name", v.name},
          {"snapshot", v.snapshot},
          {"parent", v.parent},
          {"group", v.group},
          {"created_unix_ns", v.created_unix_ns},
          {"mapped_blocks", v.mapped_blocks},
          {"unique_blocks", v.unique_blocks},
          {"mapped_bytes", v.mapped_blocks * block_size},
          {"unique_bytes", v.unique_blocks * block_size}};
}

json CountsJson(const SharingCounts& c, uint64_t bs) {
  return {{"virtual_blocks", c.virtual_blocks},
          {"holes", c.holes},
          {"mapped_blocks", c.mapped_blocks},
          {"zero_blocks", c.zero_blocks},
          {"shared_blocks", c.shared_blocks},
          {"self_sharing_blocks", c.self_sharing_blocks},
          {"inter_volume_blocks", c.inter_volume_blocks},
          {"distinct_blocks", c.distinct_blocks},
          {"unreadable_blocks", c.unreadable_blocks},
          {"dedup_volume_blocks", c.dedup_volume_blocks},
          {"dedup_group_blocks", c.dedup_group_blocks},
          {"dedup_volume_bytes", c.dedup_volume_blocks * bs},
          {"dedup_group_bytes", c.dedup_group_blocks * bs}};
}

json SharingJson(const SharingReport& r) {
  json vols = json::array();
  for (const VolumeSharing& v : r.volumes) {
    json j = CountsJson(v.counts, r.block_size);
    j["name"] = v.name;
    j["group"] = v.group;
    vols.push_back(std::move(j));
  }
  return {{"block_size", r.block_size},
          {"data_blocks_used", r.data_blocks_used},
          {"volumes", std::move(vols)},
          {"total", CountsJson(r.total, r.block_size)}};
}

// An optional array of strings.
std::vector<std::string> Names(const json& args, const char* key) {
  std::vector<std::string> out;
  auto it = args.find(key);
  if (it == args.end() || it->is_null()) return out;
  if (!it->is_array()) {
    Must(InvalidArgument(std::string("argument '") + key +
                         "' must be an array of strings"));
  }
  for (const json& n : *it) {
    if (!n.is_string()) {
      Must(InvalidArgument(std::string("argument '") + key +
                           "' must be an array of strings"));
    }
    out.push_back(n.get<std::string>());
  }
  return out;
}

}  // namespace

// One command; throws CommandError. Runs on the control thread.
static json Execute(ImageServer& server, ImageServer::State& s,
                    const std::string& cmd, const json& args) {
  const std::string base = s.image.volume();
  if (cmd == "query-image") {
    auto info = s.image.Info();
    Must(info.status());
    const ImageInfo& i = *info;
    return {{"path", s.abs_path},
            {"namespace", s.location.ns},
            {"virtual_size", i.virtual_size},
            {"logical_block_size", i.logical_block_size},
            {"block_size", i.block_size},
            {"virtual_blocks", i.virtual_blocks},
            {"data_blocks", i.data_blocks},
            {"allocated_blocks", i.allocated_blocks},
            {"allocated_bytes", i.allocated_bytes},
            {"free_blocks", i.free_blocks()},
            {"retired_blocks", i.retired_blocks},
            {"metadata_bytes", i.metadata_bytes},
            {"lanes", i.lanes},
            {"recovered_records", i.recovered_records},
            {"max_volumes", i.max_volumes},
            {"volumes", i.volumes},
            {"damaged_volumes", i.damaged_volumes},
            {"corrupt", i.corrupt},
            {"read_only", s.options.read_only}};
  }
  if (cmd == "query-volumes") {
    auto vols = s.image.Volumes();
    Must(vols.status());
    std::vector<std::string> nbd = server.NbdExports();
    json out = json::array();
    std::lock_guard lock(s.mu);
    for (const VolumeInfo& v : *vols) {
      json j = VolumeJson(v, s.image.block_size());
      j["nbd"] = std::find(nbd.begin(), nbd.end(), v.name) != nbd.end();
      auto it = s.vhost.find(v.name);
      j["vhost_user_blk"] =
          it == s.vhost.end() ? json(nullptr) : json(it->second->spec.socket);
      out.push_back(std::move(j));
    }
    return out;
  }
  if (cmd == "query-exports") {
    json out = json::array();
    for (const std::string& v : server.NbdExports()) {
      json e = {{"type", "nbd"}, {"volume", v}};
      if (!s.options.nbd_socket.empty()) e["socket"] = s.options.nbd_socket;
      out.push_back(std::move(e));
    }
    std::lock_guard lock(s.mu);
    for (const auto& [v, e] : s.vhost) {
      out.push_back({{"type", "vhost-user-blk"},
                     {"volume", v},
                     {"socket", e->spec.socket},
                     {"queues", e->spec.queues},
                     {"connections", e->server->connections()}});
    }
    return out;
  }
  if (cmd == "snapshot") {
    const std::string vol = Arg(args, "volume", &base);
    const std::string name = Arg(args, "name");
    auto h = s.image.OpenVolume(vol);
    Must(h.status());
    Must(h->Snapshot(name));
    return {{"name", name}, {"volume", vol}};
  }
  if (cmd == "clone") {
    const std::string snap = Arg(args, "snapshot");
    const std::string name = Arg(args, "name");
    const std::string none;
    const std::string group = Arg(args, "group", &none);
    Must(s.image.Clone(snap, name, group));
    return {{"name", name}, {"snapshot", snap}, {"group", group}};
  }
  if (cmd == "set-group") {
    const std::string vol = Arg(args, "volume");
    const std::string group = Arg(args, "group");
    Must(s.image.SetSharingGroup(vol, group));
    return {{"volume", vol}, {"group", group}};
  }
  if (cmd == "delete") {
    const std::string name = Arg(args, "name");
    {
      std::lock_guard lock(s.mu);
      if (auto it = s.vhost.find(name); it != s.vhost.end()) {
        Must(Busy("volume '" + name + "' is served over vhost-user-blk on " +
                  it->second->spec.socket +
                  "; remove that export first (export-remove)"));
      }
    }
    Status st = s.image.DeleteVolume(name);
    if (st.kind() == ErrorKind::kBusy) {
      Must(Busy("volume '" + name +
                "' is in use by an NBD client of this server; disconnect it "
                "first (" +
                st.message() + ")"));
    }
    Must(st);
    std::lock_guard lock(s.mu);
    s.nbd_hidden.erase(name);
    return {{"deleted", name}};
  }
  if (cmd == "export-diff") {
    // Snapshots do not change, so a served image can write one out.
    const std::string to = Arg(args, "to-snap");
    const std::string from =
        args.contains("from-snap") ? Arg(args, "from-snap") : std::string();
    const std::string path = Arg(args, "path");
    Platform& os = *DefaultPlatform();
    auto fd = os.Open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (!fd.ok() && fd.status().sys_errno() == EEXIST) {
      Must(Busy(path + " exists; write the diff to a new path"));
    }
    Must(fd.status().WithContext("creating " + path));
    uint64_t at = 0;
    auto stats = rbd::WriteDiff(
        s.image, from, to, [&](std::span<const uint8_t> b) -> Status {
          for (size_t done = 0; done < b.size();) {
            auto w = os.PWrite(*fd, b.data() + done, b.size() - done, at);
            if (!w.ok()) return w.status().WithContext("writing " + path);
            done += *w;
            at += *w;
          }
          return Status::Ok();
        });
    Status st = stats.status();
    if (st.ok()) st = os.SyncFile(*fd).WithContext("syncing " + path);
    os.Close(*fd);
    if (!st.ok()) {
      (void)os.Remove(path);  // the partial stream this command created
      Must(st);
    }
    return {{"to_snap", to},
            {"from_snap", from},
            {"path", path},
            {"data_bytes", stats->data_bytes},
            {"zero_bytes", stats->zero_bytes},
            {"records", stats->records},
            {"bytes", at}};
  }
  if (cmd == "query-sharing") {
    // Reads like any reader: guests keep writing meanwhile.
    auto r = s.image.Sharing(Names(args, "volumes"));
    Must(r.status());
    return SharingJson(*r);
  }
  if (cmd == "dedup") {
    // Guests keep writing: each remap compares the blocks again under the
    // locks their writes take.
    const std::string vol_scope = "volume";
    const std::string scope = Arg(args, "scope", &vol_scope);
    if (scope != "volume" && scope != "group") {
      Must(InvalidArgument("scope '" + scope +
                           "': use \"volume\" or \"group\""));
    }
    uint64_t speed = 0;
    if (auto v = args.find("speed"); v != args.end()) {
      if (!v->is_number_unsigned() || v->get<uint64_t>() == 0) {
        Must(InvalidArgument(
            "speed must be a positive number of bytes per second"));
      }
      speed = v->get<uint64_t>();
    }
    auto r = s.image.Dedup(
        scope == "group" ? DedupScope::kGroup : DedupScope::kVolume,
        Names(args, "volumes"), speed);
    Must(r.status());
    const uint64_t bs = s.image.block_size();
    return {{"scope", scope},
            {"remapped_blocks", r->remapped_blocks},
            {"zero_blocks", r->zero_blocks},
            {"freed_blocks", r->freed_blocks},
            {"freed_bytes", r->freed_blocks * bs},
            {"skipped_blocks", r->skipped_blocks}};
  }
  if (cmd == "export-add" || cmd == "export-remove") {
    const std::string type = Arg(args, "type");
    const std::string vol = Arg(args, "volume", &base);
    if (type != "nbd" && type != "vhost-user-blk") {
      Must(InvalidArgument("export type '" + type +
                           "': use \"nbd\" or \"vhost-user-blk\""));
    }
    if (!s.VolumeExists(vol)) {
      Must(NotFound("no volume '" + vol + "'; query-volumes lists them"));
    }
    std::lock_guard lock(s.mu);
    if (type == "nbd") {
      if (!s.options.nbd) {
        Must(
            Unsupported("this server does not speak NBD (start it with "
                        "'daxstore serve nbd')"));
      }
      if (cmd == "export-add") {
        s.nbd_hidden.erase(vol);
      } else {
        s.nbd_hidden.insert(vol);
      }
      return {{"type", type}, {"volume", vol}};
    }
    if (cmd == "export-remove") {
      auto it = s.vhost.find(vol);
      if (it == s.vhost.end()) {
        Must(NotFound("volume '" + vol + "' has no vhost-user-blk export"));
      }
      s.StopVhost(*it->second);
      s.vhost.erase(it);
      return {{"type", type}, {"volume", vol}};
    }
    ServedExport e;
    e.volume = vol;
    e.socket = Arg(args, "socket");
    if (auto q = args.find("queues"); q != args.end()) {
      if (!q->is_number_unsigned() || q->get<uint64_t>() < 1 ||
          q->get<uint64_t>() > 64) {
        Must(InvalidArgument("queues must be a number from 1 to 64"));
      }
      e.queues = q->get<uint32_t>();
    }
    if (auto r = args.find("read-only"); r != args.end()) {
      if (!r->is_boolean())
        Must(InvalidArgument("read-only must be a boolean"));
      e.read_only = r->get<bool>();
    }
    Must(s.StartVhost(e));
    return {{"type", type}, {"volume", vol}, {"socket", e.socket}};
  }
  if (IsMirrorCommand(cmd)) {
    try {
      return ExecuteMirrorCommand(s, cmd, args);
    } catch (MirrorCommandError& e) {
      Must(std::move(e.status));
    }
  }
  Must(Status::Error(ErrorKind::kInvalidArgument,
                     "unknown command '" + cmd +
                         "'; commands: query-image, query-volumes, "
                         "query-exports, query-sharing, dedup, snapshot, "
                         "clone, set-group, delete, export-add, "
                         "export-remove, export-diff, mirror, "
                         "query-mirrors, mirror-complete, mirror-cancel"));
  return nullptr;
}

std::string ImageServer::Handle(const std::string& request) {
  json reply;
  json id;
  try {
    json req = json::parse(request, nullptr, /*allow_exceptions=*/false);
    if (req.is_discarded() || !req.is_object()) {
      Must(InvalidArgument(
          "a request is one JSON object: {\"execute\": COMMAND, "
          "\"arguments\": {...}}"));
    }
    if (auto it = req.find("id"); it != req.end()) id = *it;
    auto ex = req.find("execute");
    if (ex == req.end() || !ex->is_string()) {
      Must(InvalidArgument("the request has no \"execute\" string"));
    }
    json args = json::object();
    if (auto a = req.find("arguments"); a != req.end()) {
      if (!a->is_object())
        Must(InvalidArgument("\"arguments\" is not an object"));
      args = *a;
    }
    reply["return"] = Execute(*this, *s_, ex->get<std::string>(), args);
  } catch (const CommandError& e) {
    reply = json{{"error", ErrorJson(e.status)}};
  } catch (const json::exception& e) {
    reply =
        json{{"error", ErrorJson(InvalidArgument(
                           std::string("malformed request: ") + e.what()))}};
  }
  if (!id.is_null()) reply["id"] = id;
  // Names from media or requests may hold bytes that are not UTF-8.
  return reply.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace daxstore
