// The daxstore binary's namespace verbs: ndctl-shaped JSON, one-line
// errors, many processes on one emulated bus, and processes killed in the
// middle of a create.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "testing/temp_dir.h"

#ifndef DAXSTORE_CLI
#error "DAXSTORE_CLI must name the daxstore binary"
#endif

namespace daxstore {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct RunResult {
  int rc = -1;
  std::string out, err;
};

std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class Cli : public ::testing::Test {
 protected:
  // Starts the CLI with --emulated-dir; output goes to files named by tag.
  pid_t Start(std::vector<std::string> args, const std::string& tag) {
    args.insert(args.begin(), {DAXSTORE_CLI, "--emulated-dir", bus_});
    pid_t pid = fork();
    if (pid == 0) {
      int out = ::open((dir_ / (tag + ".out")).c_str(),
                       O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int err = ::open((dir_ / (tag + ".err")).c_str(),
                       O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(out, 1);
      dup2(err, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    return pid;
  }
  RunResult Wait(pid_t pid, const std::string& tag) {
    int status = 0;
    waitpid(pid, &status, 0);
    RunResult r;
    r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = Slurp(dir_ / (tag + ".out"));
    r.err = Slurp(dir_ / (tag + ".err"));
    return r;
  }
  RunResult Cmd(std::vector<std::string> args) {
    return Wait(Start(std::move(args), "cmd"), "cmd");
  }
  json Json(std::vector<std::string> args) {
    RunResult r = Cmd(std::move(args));
    EXPECT_EQ(r.rc, 0) << r.err;
    if (r.out.empty()) return json::array();
    return json::parse(r.out);
  }
  // As an array even when ndctl-style output printed a single object.
  json Namespaces() {
    json j = Json({"--bus", "emulated", "list", "-N", "-i"});
    return j.is_array() ? j : json::array({j});
  }
  void ExpectOneErrorLine(const RunResult& r, const std::string& needle) {
    EXPECT_NE(r.rc, 0);
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.err.rfind("daxstore: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  }

  testing::TempDir dir_;
  std::string bus_ = dir_ / "bus";
};

TEST_F(Cli, CreateAndListPrintNdctlJson) {
  RunResult made = Cmd({"emulate", "create", "--size", "1G"});
  ASSERT_EQ(made.rc, 0) << made.err;
  EXPECT_EQ(json::parse(made.out)["regions"][0]["size"], 1ull << 30);
  json ns = Json({"--bus", "emulated", "create-namespace", "-m", "fsdax"});
  EXPECT_EQ(ns["dev"], "namespace0.0");
  EXPECT_EQ(ns["mode"], "fsdax");
  EXPECT_EQ(ns["map"], "dev");
  EXPECT_EQ(ns["size"], "1006.00 MiB (1054.87 MB)");
  EXPECT_EQ(ns["sector_size"], 512);
  EXPECT_EQ(ns["align"], 2097152);
  EXPECT_EQ(ns["blockdev"], "pmem0");
  json listed = Json({"--bus", "emulated", "list"});
  EXPECT_EQ(listed["uuid"], ns["uuid"]);
  EXPECT_EQ(listed["size"], 1006ull << 20);
  json human = Json({"--bus", "emulated", "list", "-u"});
  EXPECT_EQ(human["size"], "1006.00 MiB (1054.87 MB)");
  json region = Json({"--bus", "emulated", "list", "-R", "-u"});
  EXPECT_EQ(region["dev"], "region0");
  EXPECT_EQ(region["available_size"], 0);  // below 5000 KiB: a number, as ndctl
  EXPECT_EQ(region["persistence_domain"], "memory_controller");
  // Reconfigure to devdax: the output carries its dax region.
  json dax = Json({"--bus", "emulated", "create-namespace", "-f", "-e",
                   "namespace0.0", "-m", "devdax"});
  EXPECT_EQ(dax["daxregion"]["devices"][0]["chardev"], "dax0.0");
  EXPECT_EQ(dax["daxregion"]["devices"][0]["mode"], "devdax");
  json nested = Json({"--bus", "emulated", "list", "-BRN"});
  EXPECT_EQ(nested["provider"], "daxstore.emulated");
  EXPECT_EQ(nested["regions"][0]["namespaces"][0]["chardev"], "dax0.0");
  json ram = Json({"--bus", "emulated", "reconfigure-device", "-m",
                   "system-ram", "dax0.0"});
  EXPECT_EQ(ram[0]["mode"], "system-ram");
  ExpectOneErrorLine(
      Cmd({"--bus", "emulated", "destroy-namespace", "-f", "namespace0.0"}),
      "system-ram");
  EXPECT_EQ(Cmd({"--bus", "emulated", "reconfigure-device", "-f", "-m",
                 "devdax", "dax0.0"})
                .rc,
            0);
  RunResult gone = Cmd({"--bus", "emulated", "destroy-namespace", "-f", "all"});
  EXPECT_EQ(gone.rc, 0) << gone.err;
  EXPECT_NE(gone.err.find("destroyed 1 namespace"), std::string::npos);
  RunResult table = Cmd({"--bus", "emulated", "list", "-R", "--table"});
  EXPECT_NE(table.out.find("region0"), std::string::npos);
  EXPECT_NE(table.out.find("1.00 GiB"), std::string::npos);
}

TEST_F(Cli, ErrorsAreOneLineAndNonZero) {
  ExpectOneErrorLine(Cmd({"--bus", "emulated", "list"}), "emulate create");
  ASSERT_EQ(
      Cmd({"emulate", "create", "--dimms-per-region", "2", "--size", "2G"}).rc,
      0);
  auto create = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = {"--bus", "emulated", "create-namespace"};
    a.insert(a.end(), extra.begin(), extra.end());
    return Cmd(a);
  };
  ExpectOneErrorLine(create({"-s", "1.5x"}), "invalid size '1.5x'");
  ExpectOneErrorLine(create({"-s", "-5G"}), "negative");
  ExpectOneErrorLine(create({"-m", "fastdax"}), "unknown mode 'fastdax'");
  ExpectOneErrorLine(create({"-n", std::string(70, 'n')}), "at most 63 bytes");
  ExpectOneErrorLine(create({"-s", "100M"}), "try --size 96M or --size 128M");
  ExpectOneErrorLine(create({"-s", "4G"}), "2G available");
  ExpectOneErrorLine(create({"-M", "disk"}), "use mem or dev");
  ExpectOneErrorLine(create({"-m", "sector", "-a", "2M"}), "--align");
  ExpectOneErrorLine(
      Cmd({"--bus", "emulated", "reconfigure-device", "-m", "ram", "dax0.0"}),
      "unknown dax mode");
  ExpectOneErrorLine(Cmd({"--bus", "kernel", "list"}), "no NVDIMM bus");
}

TEST_F(Cli, LabelLessBusAndAutoSelection) {
  ASSERT_EQ(Cmd({"emulate", "create", "--label-less", "--size", "512M",
                 "--persistence", "cpu_cache"})
                .rc,
            0);
  RunResult sub = Cmd({"create-namespace", "-s", "128M"});
  ExpectOneErrorLine(sub, "");  // the last line is the error
  // auto says which bus it picked, then the error.
  EXPECT_NE(sub.err.find("label-less region cannot be subdivided: "
                         "reconfigure with -e"),
            std::string::npos);
  RunResult list = Cmd({"list"});
  if (list.err.find("used the emulated bus") == std::string::npos) {
    GTEST_SKIP() << "this machine has a kernel NVDIMM bus";
  }
  json ns = json::parse(list.out);
  EXPECT_EQ(ns["mode"], "fsdax");
  EXPECT_EQ(ns["map"], "mem");
  EXPECT_EQ(ns.count("uuid"), 0u);
  json re = Json({"create-namespace", "-f", "-e", "namespace0.0", "-m", "raw"});
  EXPECT_EQ(re["size"], "512.00 MiB (536.87 MB)");
}

TEST_F(Cli, RegionVerbsAndDimms) {
  ASSERT_EQ(Cmd({"emulate", "create", "--regions", "2"}).rc, 0);
  auto cmd = [&](std::vector<std::string> a) {
    a.insert(a.begin(), {"--bus", "emulated"});
    return Cmd(a);
  };
  ASSERT_EQ(cmd({"create-namespace", "-r", "region1", "-s", "64M"}).rc, 0);
  ExpectOneErrorLine(cmd({"init-labels", "region1"}), "disable-region");
  RunResult off = cmd({"disable-region", "region1"});
  EXPECT_EQ(off.rc, 0) << off.err;
  EXPECT_NE(off.err.find("disabled 1 region"), std::string::npos);
  // Disabled regions are idle: hidden unless -i.
  json regions = Json({"--bus", "emulated", "list", "-R"});
  EXPECT_EQ(regions["dev"], "region0");
  json idle = Json({"--bus", "emulated", "list", "-R", "-i"});
  ASSERT_EQ(idle.size(), 2u);
  EXPECT_EQ(idle[1]["state"], "disabled");
  RunResult init = cmd({"init-labels", "region1"});
  EXPECT_EQ(init.rc, 0) << init.err;
  EXPECT_NE(init.err.find("initialized 1 nmem"), std::string::npos);
  EXPECT_EQ(cmd({"enable-region", "all"}).rc, 0);
  EXPECT_TRUE(Namespaces().empty());  // the labels were wiped
  json both = Json({"--bus", "emulated", "list", "-DR"});
  EXPECT_EQ(both["dimms"].size(), 2u);
  EXPECT_EQ(both["dimms"][1]["dev"], "nmem1");
  EXPECT_EQ(both["regions"][0]["mappings"][0]["dimm"], "nmem0");
  json caps = Json({"--bus", "emulated", "list", "-R", "-C", "-r", "0"});
  EXPECT_EQ(caps["capabilities"][1]["mode"], "fsdax");
  ASSERT_EQ(cmd({"create-namespace", "-s", "64M", "-n", "x"}).rc, 0);
  EXPECT_EQ(cmd({"disable-namespace", "namespace0.0"}).rc, 0);
  EXPECT_TRUE(Json({"--bus", "emulated", "list"}).empty());
  EXPECT_EQ(cmd({"enable-namespace", "namespace0.0"}).rc, 0);
  EXPECT_EQ(Json({"--bus", "emulated", "list"})["name"], "x");
  ExpectOneErrorLine(cmd({"destroy-namespace", "namespace0.0"}), "-f");
}

// Processes, not threads: the bus lock serializes them, and TSan (which
// runs the tests named *Concurrent*, threads in one process) cannot see
// across processes, so this test is not one of those.
TEST_F(Cli, ParallelProcessesCreatingLoseNoLabels) {
  ASSERT_EQ(Cmd({"emulate", "create", "--size", "1G"}).rc, 0);
  constexpr int kProcs = 8;
  std::vector<pid_t> pids;
  for (int i = 0; i < kProcs; ++i) {
    const char* mode = i % 2 ? "devdax" : "fsdax";
    pids.push_back(Start({"--bus", "emulated", "create-namespace", "-m", mode,
                          "-s", "64M", "-n", "p" + std::to_string(i)},
                         "p" + std::to_string(i)));
  }
  for (int i = 0; i < kProcs; ++i) {
    RunResult r = Wait(pids[i], "p" + std::to_string(i));
    EXPECT_EQ(r.rc, 0) << r.err;
  }
  json ns = Namespaces();
  ASSERT_EQ(ns.size(), static_cast<size_t>(kProcs));
  std::set<std::string> devs, uuids, names;
  for (const auto& n : ns) {
    devs.insert(n["dev"]);
    uuids.insert(n["uuid"]);
    names.insert(n["name"]);
  }
  EXPECT_EQ(devs.size(), static_cast<size_t>(kProcs));
  EXPECT_EQ(uuids.size(), static_cast<size_t>(kProcs));
  EXPECT_EQ(names.size(), static_cast<size_t>(kProcs));
  json region = Json({"--bus", "emulated", "list", "-R"});
  EXPECT_EQ(region["available_size"], (1ull << 30) - kProcs * (64ull << 20));
}

TEST_F(Cli, KilledMidCreateLeavesAConsistentBus) {
  ASSERT_EQ(Cmd({"emulate", "create", "--size", "1G"}).rc, 0);
  int created = 0;
  for (int i = 0; i < 12; ++i) {
    pid_t pid =
        Start({"--bus", "emulated", "create-namespace", "-s", "32M"}, "k");
    // Anywhere from before the lock to after the publish.
    std::this_thread::sleep_for(std::chrono::microseconds(700 * i));
    kill(pid, SIGKILL);
    RunResult r = Wait(pid, "k");
    if (r.rc == 0) ++created;
  }
  json ns = Namespaces();
  EXPECT_GE(ns.size(), static_cast<size_t>(created));
  // Every label has its device file and no other device file exists.
  std::set<std::string> want, have;
  for (const auto& n : ns) want.insert(n["blockdev"].get<std::string>());
  for (const auto& e : fs::directory_iterator(bus_ + "/region0")) {
    have.insert(e.path().filename().string());
  }
  EXPECT_EQ(have, want);
  json region = Json({"--bus", "emulated", "list", "-R"});
  EXPECT_EQ(region["available_size"], (1ull << 30) - ns.size() * (32ull << 20));
  EXPECT_EQ(Cmd({"--bus", "emulated", "create-namespace", "-s", "32M"}).rc, 0);
}

// A namespace 'daxstore serve' has an image open on is busy, as a mounted
// one is on the kernel bus: destroy, reconfigure, disable and emulate
// destroy refuse it, -f or not; once the server has stopped, they work.
TEST_F(Cli, AServedImageKeepsItsNamespace) {
  ASSERT_EQ(Cmd({"emulate", "create", "--size", "1G"}).rc, 0);
  json ns = Json(
      {"--bus", "emulated", "create-namespace", "-m", "devdax", "-s", "256M"});
  ASSERT_EQ(ns["dev"], "namespace0.0");
  RunResult made = Cmd({"--bus", "emulated", "image", "create", "namespace0.0",
                        "-s", "16M", "--force"});
  ASSERT_EQ(made.rc, 0) << made.err;
  const std::string sock = dir_ / "vhost.sock";
  pid_t server = Start(
      {"serve", "vhost-user-blk", bus_ + "/region0/dax0.0", "--socket", sock},
      "serve");
  for (int i = 0; i < 500 && !fs::exists(sock); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(fs::exists(sock)) << Slurp(dir_ / "serve.err");
  const std::string held = "is held by an open image or mapping";
  for (bool force : {false, true}) {
    std::vector<std::string> a = {"--bus", "emulated", "destroy-namespace",
                                  "namespace0.0"};
    if (force) a.push_back("-f");
    ExpectOneErrorLine(Cmd(a), held);
  }
  ExpectOneErrorLine(Cmd({"--bus", "emulated", "create-namespace", "-f", "-e",
                          "namespace0.0", "-m", "fsdax"}),
                     held);
  ExpectOneErrorLine(
      Cmd({"--bus", "emulated", "disable-namespace", "namespace0.0"}), held);
  ExpectOneErrorLine(Cmd({"emulate", "destroy", "-f"}), held);
  json still = Namespaces();
  ASSERT_EQ(still.size(), 1u);
  EXPECT_EQ(still[0]["mode"], "devdax");
  EXPECT_EQ(still[0]["uuid"], ns["uuid"]);
  kill(server, SIGTERM);
  RunResult served = Wait(server, "serve");
  EXPECT_EQ(served.rc, 0) << served.err;
  RunResult info = Cmd({"--bus", "emulated", "image", "info", "namespace0.0"});
  EXPECT_EQ(info.rc, 0) << info.err;
  RunResult gone =
      Cmd({"--bus", "emulated", "destroy-namespace", "-f", "namespace0.0"});
  EXPECT_EQ(gone.rc, 0) << gone.err;
  EXPECT_TRUE(Namespaces().empty());
}

}  // namespace
}  // namespace daxstore
