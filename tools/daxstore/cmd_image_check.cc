// daxstore image check: verify an image's metadata and repair it at the
// level asked for. Exit codes as qemu-img check's: 0 clean (or repaired),
// 1 the check could not run, 2 corruption left, 3 only problems that
// lose nothing when fixed (leaked blocks, a crash's redo records) left.
#include <cerrno>
#include <memory>

#include "commands.h"
#include "daxstore/image.h"
#include "identity.h"
#include "image_target.h"
#include "output.h"

namespace daxstore::cli {
namespace {

constexpr int kExitCorrupt = 2;
constexpr int kExitLeaks = 3;

constexpr const char* kLevels =
    "--repair=leaks (fixes what loses no data: leaked blocks, a crash's redo "
    "records) or --repair=all (also makes damaged map entries holes, "
    "dropping their guest data, and lists the LBAs dropped)";

struct CheckArgs {
  std::string target, emulate, repair;
};

CheckRepair LevelOf(const CLI::App* cmd, const CheckArgs& a) {
  if (cmd->count("--repair") == 0) return CheckRepair::kNone;
  if (a.repair == "leaks") return CheckRepair::kLeaks;
  if (a.repair == "all") return CheckRepair::kAll;
  if (a.repair.empty()) {
    throw Fail(std::string("--repair needs a level: ") + kLevels);
  }
  throw Fail("--repair " + a.repair + " is not a repair level (write the " +
             "level before TARGET): " + kLevels);
}

const char* LevelName(CheckRepair r) {
  switch (r) {
    case CheckRepair::kLeaks:
      return "leaks";
    case CheckRepair::kAll:
      return "all";
    default:
      return "none";
  }
}

std::string Lbas(const LbaRange& r) {
  return "volume '" + r.volume + "' LBA " + std::to_string(r.lba) +
         (r.count > 1 ? "-" + std::to_string(r.lba + r.count - 1) : "");
}

// "volume 'base' LBA 0-7, volume 'base' LBA 24-31", at most `max` listed.
std::string LbaList(const std::vector<LbaRange>& ranges, size_t max = 8) {
  std::string out;
  for (size_t i = 0; i < ranges.size() && i < max; i++) {
    out += (i ? ", " : "") + Lbas(ranges[i]);
  }
  if (ranges.size() > max) {
    out += " and " + std::to_string(ranges.size() - max) +
           " more ranges (the JSON lists them all)";
  }
  return out;
}

nlohmann::json ReportJson(const CheckReport& r, const ImageTarget& t,
                          CheckRepair level) {
  const uint64_t lbs = r.logical_block_size;
  nlohmann::json dropped = nlohmann::json::array();
  for (const LbaRange& d : r.dropped) {
    dropped.push_back({{"volume", d.volume},
                       {"lba", d.lba},
                       {"lba_count", d.count},
                       {"offset", d.lba * lbs},
                       {"length", d.count * lbs}});
  }
  nlohmann::json pending = nlohmann::json::array();
  for (const PendingRecord& p : r.pending) {
    pending.push_back({{"lane", p.lane},
                       {"volume", p.range.volume},
                       {"lba", p.range.lba},
                       {"lba_count", p.range.count},
                       {"recovery", p.action}});
  }
  nlohmann::json lost = nlohmann::json::array();
  for (const BadRange& b : r.media_errors) {
    lost.push_back(
        {{"volume", b.volume}, {"offset", b.offset}, {"length", b.length}});
  }
  nlohmann::json damaged = nlohmann::json::array();
  for (const DamagedVolume& d : r.damaged_volumes) {
    damaged.push_back({{"slot", d.slot},
                       {"name", d.name},
                       {"damage", d.damage},
                       {"dropped", d.dropped},
                       {"rebuilt_as", d.rebuilt ? nlohmann::json(d.rebuilt_as)
                                                : nlohmann::json(nullptr)},
                       {"freed_blocks", d.freed_blocks}});
  }
  nlohmann::json primary = nullptr;
  if (!r.primary_superblock_damage.empty()) {
    primary = {{"damage", r.primary_superblock_damage},
               {"restored", r.primary_superblock_restored}};
  }
  return {{"path", t.path},
          {"damaged_volumes", damaged},
          {"primary_superblock", primary},
          {"corrupt_flag", r.corrupt_flag && !r.corrupt_flag_cleared},
          {"clean", r.clean()},
          {"media_errors", lost},
          {"repair", LevelName(level)},
          {"repaired", r.repaired},
          {"findings", r.findings},
          {"mapped_blocks", r.mapped_blocks},
          {"leaked_blocks", r.leaked_blocks},
          {"overcommitted_blocks", r.overcommitted_blocks},
          {"bad_entries", r.bad_entries},
          {"pending_records", pending},
          // With --repair=all: dropped; otherwise what it would drop.
          {"dropped", dropped}};
}

// The exit code and stderr line for what the check left unrepaired.
void Conclude(const CheckReport& r, CheckRepair level,
              const std::string& target) {
  if (level == CheckRepair::kAll) return;  // kAll fixed everything
  if (r.corrupt()) {
    std::string what =
        r.dropped.empty()
            ? "no guest data is lost"
            : "the guest data of the damaged map entries is lost: " +
                  LbaList(r.dropped);
    if (!r.damaged_volumes.empty()) {
      what =
          "the damaged volume table entries are dropped with the data "
          "only they hold; " +
          (r.dropped.empty() ? std::string("no other guest data is lost")
                             : what);
    }
    std::string also;
    if (!r.primary_superblock_damage.empty() &&
        !r.primary_superblock_restored) {
      also += ", the primary superblock is damaged";
    }
    if (r.corrupt_flag && !r.corrupt_flag_cleared) {
      also += ", the image is flagged corrupt (writes fail)";
    }
    throw Failure{
        Corruption(
            target + ": corruption found (" + std::to_string(r.bad_entries) +
            " damaged map entries, " + std::to_string(r.overcommitted_blocks) +
            " refcounts too low, " + std::to_string(r.damaged_volumes.size()) +
            " damaged volume table entries" + also +
            "); 'daxstore image check --repair=all " + target + "' fixes it (" +
            what + ")"),
        kExitCorrupt};
  }
  if (!r.media_errors.empty()) {
    // Repair cannot bring media-lost data back: it is corruption to report.
    throw Failure{
        IoError(target + ": " + std::to_string(r.media_errors.size()) +
                    " guest range(s) lie on bad blocks of the media "
                    "(media_errors); rewrite them from the guest or "
                    "restore them from a backup",
                EIO),
        kExitCorrupt};
  }
  if (r.clean() || level != CheckRepair::kNone) return;
  if (!r.pending.empty()) {
    std::vector<LbaRange> ranges;
    for (const PendingRecord& p : r.pending) ranges.push_back(p.range);
    throw Failure{
        Corruption(target + " needs crash recovery: " +
                   std::to_string(r.pending.size()) +
                   " interrupted write(s) to replay (" + LbaList(ranges) +
                   "); run 'daxstore image check --repair=leaks " + target +
                   "' (no data is lost)"),
        kExitLeaks};
  }
  throw Failure{Corruption(target + ": " + std::to_string(r.findings.size()) +
                           " problem(s) that lose no data when fixed (" +
                           std::to_string(r.leaked_blocks) +
                           " leaked blocks); run 'daxstore image check "
                           "--repair=leaks " +
                           target + "' to fix them"),
                kExitLeaks};
}

void Check(const CLI::App* cmd, const CheckArgs& a) {
  const CheckRepair level = LevelOf(cmd, a);
  if (a.target.empty()) {
    throw Fail("image check needs a TARGET: an image path or a namespace");
  }
  ImageTarget t = ResolveImageTarget(cmd, a.target, a.emulate);
  // Drawn only while stderr is a terminal (Progress).
  std::unique_ptr<Progress> bar;
  auto progress = [&bar](uint64_t done, uint64_t total) {
    if (!bar) bar = std::make_unique<Progress>("check", total);
    bar->Update(done);
  };
  CheckReport r;
  int64_t recovered = -1;
  if (level == CheckRepair::kNone) {
    auto checked = Image::CheckReadOnly(t.path, t.options, progress);
    if (!checked.ok()) {
      throw Explain(checked.status(), a.target, t.path, /*write=*/false);
    }
    r = std::move(checked).value();
  } else {
    RefuseHeld(a.target, t.path);
    uint32_t replayed = 0;  // the redo records a crash left
    auto repaired = Image::Repair(t.path, level, t.options, progress, &replayed);
    if (!repaired.ok()) throw Explain(repaired.status(), a.target, t.path);
    recovered = replayed;
    r = std::move(repaired).value();
  }
  bar.reset();  // ends the bar's line before anything else is printed
  const uint64_t lbs = r.logical_block_size;
  nlohmann::json j = ReportJson(r, t, level);
  if (recovered >= 0) j["recovered_records"] = recovered;
  PrintJson(j);
  if (level != CheckRepair::kNone && r.primary_superblock_restored) {
    std::fprintf(stderr,
                 "daxstore: repair rewrote the damaged primary superblock "
                 "from the backup (%s)\n",
                 r.primary_superblock_damage.c_str());
  }
  for (const DamagedVolume& d : r.damaged_volumes) {
    if (d.rebuilt) {
      std::fprintf(stderr,
                   "daxstore: repair rebuilt the damaged table entry of the "
                   "default volume ('%s': %s) as the writable volume '%s'; "
                   "its data is kept\n",
                   d.name.c_str(), d.damage.c_str(), d.rebuilt_as.c_str());
    }
    if (!d.dropped) continue;
    std::fprintf(stderr,
                 "daxstore: repair dropped the damaged volume table entry %u "
                 "('%s': %s); %zu data block(s) only it held are free\n",
                 d.slot, d.name.c_str(), d.damage.c_str(),
                 d.freed_blocks.size());
  }
  if (level == CheckRepair::kAll) {
    for (const LbaRange& d : r.dropped) {
      std::fprintf(
          stderr,
          "daxstore: repair dropped guest data it could not keep: "
          "%s (bytes %llu-%llu now read as zeros)\n",
          Lbas(d).c_str(), static_cast<unsigned long long>(d.lba * lbs),
          static_cast<unsigned long long>((d.lba + d.count) * lbs) - 1);
    }
  }
  Conclude(r, level, a.target);
}

}  // namespace

void AddImageCheckCommand(CLI::App& image) {
  auto a = std::make_shared<CheckArgs>();
  auto* check = image.add_subcommand(
      "check",
      "verify an image's metadata; exit 0 clean or repaired, 1 could not "
      "check, 2 corruption, 3 only leaks or a crash to recover");
  check->add_option("target", a->target, "image path or namespace");
  check->add_option("--emulate", a->emulate,
                    "declare a plain file pmem: cpu_cache or "
                    "memory_controller");
  check
      ->add_option("--repair", a->repair,
                   "leaks: fix what loses no data (leaked blocks, a crash's "
                   "redo records); all: also drop damaged map entries' data, "
                   "listing the LBAs dropped")
      ->expected(0, 1);
  AddOutputOption(check);
  AddQuietOption(check);
  check->callback([check, a] { Check(check, *a); });
}

}  // namespace daxstore::cli
