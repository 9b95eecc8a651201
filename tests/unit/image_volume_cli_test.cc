// The daxstore binary's image volume verbs: JSON out, one-line errors.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "daxstore/image.h"
#include "testing/temp_dir.h"

#ifndef DAXSTORE_CLI
#error "DAXSTORE_CLI must name the daxstore binary"
#endif

namespace daxstore {
namespace {

using nlohmann::json;

struct CliRun {
  int rc = -1;
  std::string out;  // stdout and stderr
};

CliRun Cli(const std::string& args) {
  CliRun r;
  std::string cmd = std::string(DAXSTORE_CLI) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = ::pclose(p);
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

TEST(ImageVolumeCli, SnapshotCloneListDelete) {
  testing::TempDir dir;
  std::string path = dir / "disk.img";
  {
    ImageOptions o;
    o.virtual_size = 64 * 4096;
    o.lanes = 2;
    o.max_volumes = 4;
    auto img = Image::Create(path, o);
    ASSERT_TRUE(img.ok()) << img.status().ToString();
    std::vector<uint8_t> d(3 * 4096, 7);
    ASSERT_TRUE(img->Write(0, d.data(), d.size()).ok());
  }
  CliRun r = Cli("image snapshot " + path + " gold");
  ASSERT_EQ(r.rc, 0) << r.out;
  json j = json::parse(r.out);
  EXPECT_EQ(j["name"], "gold");
  EXPECT_EQ(j["snapshot"], true);
  EXPECT_EQ(j["parent"], "base");
  EXPECT_EQ(j["mapped_blocks"], 3);
  r = Cli("image clone " + path + " gold vm1");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(json::parse(r.out)["parent"], "gold");
  r = Cli("image list " + path);
  ASSERT_EQ(r.rc, 0) << r.out;
  j = json::parse(r.out);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 3u);
  EXPECT_EQ(j[0]["name"], "base");
  EXPECT_EQ(j[2]["name"], "vm1");
  EXPECT_EQ(j[2]["unique_blocks"], 0);

  r = Cli("image delete " + path + " base");
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.out.find("daxstore: "), 0u) << r.out;
  EXPECT_NE(r.out.find("cannot be deleted"), std::string::npos);
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1);
  r = Cli("image clone " + path + " base x");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("not a snapshot"), std::string::npos) << r.out;

  r = Cli("image delete " + path + " vm1");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(json::parse(r.out)["deleted"], "vm1");
  r = Cli("image delete " + path + " gold");
  ASSERT_EQ(r.rc, 0) << r.out;
  r = Cli("image list " + path);
  EXPECT_EQ(json::parse(r.out).size(), 1u);
  auto img = Image::Open(path);
  ASSERT_TRUE(img.ok());
  EXPECT_TRUE(img->Check()->clean());
}

}  // namespace
}  // namespace daxstore
