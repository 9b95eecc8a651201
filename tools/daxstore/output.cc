#include "output.h"

#include <atomic>
#include <cstdio>

#include "daxstore/platform.h"
#include "daxstore/size.h"

namespace daxstore::cli {
namespace {

std::atomic<bool> g_progress_asked{false};
Progress* g_active = nullptr;

void OnProgressSignal(int) { g_progress_asked.store(true); }

bool IsSizeKey(const std::string& key) {
  auto ends = [&](const char* s) {
    const std::string e(s);
    return key.size() >= e.size() &&
           key.compare(key.size() - e.size(), e.size(), e) == 0;
  };
  return key == "size" || ends("_size") || ends("_bytes") || key == "bytes";
}

std::string Scalar(const std::string& key, const nlohmann::json& v) {
  if (v.is_null()) return "-";
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_string()) {
    return v.get<std::string>().empty() ? "-" : v.get<std::string>();
  }
  if (v.is_number_unsigned() && IsSizeKey(key)) {
    const uint64_t n = v.get<uint64_t>();
    if (n < 1024) return std::to_string(n) + " bytes";
    return FormatSizeHuman(n) + " (" + std::to_string(n) + " bytes)";
  }
  return v.dump();
}

std::string Label(std::string key) {
  for (char& c : key) {
    if (c == '_') c = ' ';
  }
  return key;
}

void Render(const std::string& key, const nlohmann::json& v,
            const std::string& indent, std::string& out);

void RenderObject(const nlohmann::json& j, const std::string& indent,
                  std::string& out) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    // "virtual_size_human" and the like: the view shows every size so.
    const std::string& k = it.key();
    if (k.size() > 6 && k.compare(k.size() - 6, 6, "_human") == 0) continue;
    Render(k, it.value(), indent, out);
  }
}

void Render(const std::string& key, const nlohmann::json& v,
            const std::string& indent, std::string& out) {
  if (v.is_object()) {
    out += indent + Label(key) + ":\n";
    RenderObject(v, indent + "  ", out);
  } else if (v.is_array()) {
    out += indent + Label(key) + ":" + (v.empty() ? " -\n" : "\n");
    for (const auto& e : v) {
      if (e.is_object()) {
        std::string item;
        RenderObject(e, indent + "    ", item);
        // "  - first: ..." then the rest under it.
        if (item.size() >= indent.size() + 4) {
          item.replace(indent.size(), 4, "  - ");
        }
        out += item;
      } else {
        out += indent + "  - " + Scalar(key, e) + "\n";
      }
    }
  } else {
    out += indent + Label(key) + ": " + Scalar(key, v) + "\n";
  }
}

}  // namespace

OutputOptions& Output() {
  static OutputOptions o;
  return o;
}

void AddOutputOption(CLI::App* verb) {
  verb->add_option_function<std::string>(
          "--output",
          [](const std::string& s) {
            Output().format =
                s == "human" ? OutputFormat::kHuman : OutputFormat::kJson;
          },
          "json (default) or human: a view of the same fields for people")
      ->check(CLI::IsMember({"json", "human"}));
}

void AddQuietOption(CLI::App* verb) {
  verb->add_flag_callback(
      "-q,--quiet", [] { Output().quiet = true; },
      "print nothing but errors (the exit status tells the outcome)");
}

void AddProgressOptions(CLI::App* verb) {
  verb->add_flag_callback(
      "-p,--progress", [] { Output().progress = true; },
      "draw a progress bar on stderr (the default on a terminal); SIGUSR1 "
      "prints the progress once");
  AddQuietOption(verb);
}

std::string HumanView(const nlohmann::json& j) {
  std::string out;
  if (j.is_object()) {
    RenderObject(j, "", out);
  } else if (j.is_array()) {
    for (const auto& e : j) {
      out += HumanView(e);
      out += "\n";
    }
  } else {
    out = Scalar("", j) + "\n";
  }
  return out;
}

Progress::Progress(std::string verb, uint64_t total)
    : verb_(std::move(verb)), total_(total) {
  const OutputOptions& o = Output();
  draw_ = !o.quiet && (o.progress || DefaultPlatform()->IsTerminal(2));
  g_active = this;
}

Progress::~Progress() {
  EndLine();
  if (g_active == this) g_active = nullptr;
}

void Progress::EndLine() {
  if (drawn_) std::fputs("\n", stderr);
  drawn_ = false;
  last_ = -1;
}

void Progress::Update(uint64_t done) {
  const int pct = total_ == 0 ? 100 : static_cast<int>(done * 100 / total_);
  if (g_progress_asked.exchange(false)) {
    EndLine();
    std::fprintf(stderr, "%s: %llu of %llu bytes (%d%%)\n", verb_.c_str(),
                 static_cast<unsigned long long>(done),
                 static_cast<unsigned long long>(total_), pct);
  }
  if (!draw_ || pct == last_) return;
  last_ = pct;
  char bar[41];
  const int fill = pct * 40 / 100;
  for (int i = 0; i < 40; ++i) bar[i] = i < fill ? '#' : '.';
  bar[40] = '\0';
  std::fprintf(stderr, "\r%s %3d%% [%s]", verb_.c_str(), pct, bar);
  std::fflush(stderr);
  drawn_ = true;
}

void AcceptProgressSignal() {
  // Without signals (a test platform) SIGUSR1 keeps its default.
  (void)DefaultPlatform()->OnProgressSignal(OnProgressSignal);
}

void EndProgressLine() {
  if (g_active != nullptr) g_active->EndLine();
}

}  // namespace daxstore::cli
