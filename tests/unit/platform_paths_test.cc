// The OS seam for paths, file durability and the environment: StatPath,
// SyncFile/SyncData, NextData, AbsolutePath, Environment and IsTerminal on the
// real OS, and what a platform without them answers.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

#include "platform/os_platform.h"
#include "testing/temp_dir.h"

namespace daxstore {
namespace {

using testing::TempDir;
using testing::WriteText;

TEST(OsPaths, StatPathTellsFilesDirectoriesDevicesAndNothing) {
  TempDir dir;
  WriteText(dir / "f", "12345");
  auto os = MakeOsPlatform();
  auto f = os->StatPath(dir / "f");
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->type, FileInfo::Type::kRegular);
  EXPECT_EQ(f->size, 5u);
  EXPECT_EQ(os->StatPath(dir.path())->type, FileInfo::Type::kDirectory);
  auto null = os->StatPath("/dev/null");
  ASSERT_TRUE(null.ok());
  EXPECT_EQ(null->type, FileInfo::Type::kCharDevice);
  EXPECT_EQ(null->dev_major, 1u);  // mem: /dev/null is 1:3
  EXPECT_EQ(null->dev_minor, 3u);
  // Symlinks are followed.
  ASSERT_EQ(::symlink((dir / "f").c_str(), (dir / "l").c_str()), 0);
  EXPECT_EQ(os->StatPath(dir / "l")->size, 5u);
  auto missing = os->StatPath(dir / "nothing");
  EXPECT_EQ(missing.status().kind(), ErrorKind::kNotFound);
  EXPECT_NE(missing.status().message().find(dir / "nothing"),
            std::string::npos);
  // Not a directory: an error, but not "nothing there".
  EXPECT_NE(os->StatPath(dir / "f/x").status().kind(), ErrorKind::kNotFound);
}

TEST(OsPaths, SyncFileAndSyncDataSyncOpenFilesAndFailOnBadOnes) {
  TempDir dir;
  auto os = MakeOsPlatform();
  auto fd = os->Open(dir / "f", O_RDWR | O_CREAT, 0644);
  ASSERT_TRUE(fd.ok());
  ASSERT_TRUE(os->PWrite(*fd, "abc", 3, 0).ok());
  EXPECT_TRUE(os->SyncData(*fd).ok());
  EXPECT_TRUE(os->SyncFile(*fd).ok());
  os->Close(*fd);
  Status closed = os->SyncFile(*fd);  // no longer open
  EXPECT_FALSE(closed.ok());
  EXPECT_EQ(closed.sys_errno(), EBADF);
  EXPECT_EQ(os->SyncData(-1).sys_errno(), EBADF);
}

TEST(OsPaths, NextDataSkipsHolesAndEndsAtTheLastExtent) {
  TempDir dir;
  auto os = MakeOsPlatform();
  auto fd = os->Open(dir / "f", O_RDWR | O_CREAT, 0644);
  ASSERT_TRUE(fd.ok());
  EXPECT_EQ(*os->NextData(*fd, 0), std::nullopt);  // empty
  ASSERT_TRUE(os->Truncate(*fd, 8 << 20).ok());
  EXPECT_EQ(*os->NextData(*fd, 0), std::nullopt);  // never written: all hole
  ASSERT_TRUE(os->PWrite(*fd, "x", 1, 5 << 20).ok());
  auto ext = os->NextData(*fd, 0);
  ASSERT_TRUE(ext.ok() && ext->has_value()) << ext.status().message();
  // File systems store whole blocks (or pages): the extent holds the byte.
  EXPECT_LE((*ext)->offset, uint64_t{5} << 20);
  EXPECT_GT((*ext)->offset + (*ext)->length, uint64_t{5} << 20);
  EXPECT_EQ(*os->NextData(*fd, (*ext)->offset + (*ext)->length), std::nullopt);
  EXPECT_EQ(*os->NextData(*fd, 9 << 20), std::nullopt);  // past the end
  os->Close(*fd);
  EXPECT_EQ(os->NextData(*fd, 0).status().sys_errno(), EBADF);
}

TEST(OsPaths, AbsolutePathJoinsTheWorkingDirectory) {
  auto os = MakeOsPlatform();
  char cwd[4096];
  ASSERT_NE(::getcwd(cwd, sizeof cwd), nullptr);
  EXPECT_EQ(*os->AbsolutePath("/a/b"), "/a/b");
  EXPECT_EQ(*os->AbsolutePath("img"), std::string(cwd) + "/img");
  EXPECT_EQ(*os->AbsolutePath("./d/img"), std::string(cwd) + "/d/img");
  EXPECT_EQ(os->AbsolutePath("").status().kind(), ErrorKind::kInvalidArgument);
}

TEST(OsPaths, EnvironmentAndTerminal) {
  auto os = MakeOsPlatform();
  ASSERT_EQ(::setenv("DAXSTORE_PLATFORM_TEST_VAR", "v1", 1), 0);
  EXPECT_EQ(os->Environment("DAXSTORE_PLATFORM_TEST_VAR"), "v1");
  ASSERT_EQ(::setenv("DAXSTORE_PLATFORM_TEST_VAR", "", 1), 0);
  EXPECT_EQ(os->Environment("DAXSTORE_PLATFORM_TEST_VAR"), "");  // set, empty
  ASSERT_EQ(::unsetenv("DAXSTORE_PLATFORM_TEST_VAR"), 0);
  EXPECT_EQ(os->Environment("DAXSTORE_PLATFORM_TEST_VAR"), std::nullopt);
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  EXPECT_FALSE(os->IsTerminal(p[0]));
  ::close(p[0]);
  ::close(p[1]);
  EXPECT_FALSE(os->IsTerminal(-1));
}

// A platform that implements none of these: the defaults refuse, and say
// "unset" and "not a terminal", so a fake needs only what its test uses.
class Bare : public Platform {
 public:
  Result<int> Open(const std::string&, int, mode_t) override { return -1; }
  void Close(int) override {}
  Result<FileInfo> Stat(int) override { return FileInfo{}; }
  Status Truncate(int, uint64_t) override { return Status::Ok(); }
  Status Allocate(int, uint64_t) override { return Status::Ok(); }
  Result<size_t> PRead(int, void*, size_t, uint64_t) override { return 0; }
  Result<size_t> PWrite(int, const void*, size_t, uint64_t) override {
    return 0;
  }
  Result<std::string> ReadFile(const std::string&) override {
    return std::string();
  }
  Status WriteFileAtomic(const std::string&, const std::string&) override {
    return Status::Ok();
  }
  bool Exists(const std::string&) override { return false; }
  Status Remove(const std::string&) override { return Status::Ok(); }
  Result<MountInfo> MountOf(const std::string&) override { return MountInfo{}; }
  Result<void*> Map(void*, size_t, int, int, int, uint64_t) override {
    return nullptr;
  }
  Status Unmap(void*, size_t) override { return Status::Ok(); }
  Status Sync(void*, size_t) override { return Status::Ok(); }
  const std::string& sysfs_root() const override { return root_; }
  Result<std::string> ReadSysfs(const std::string&) override {
    return std::string();
  }
  Status WriteSysfs(const std::string&, const std::string&) override {
    return Status::Ok();
  }
  Result<std::vector<std::string>> ListSysfs(const std::string&) override {
    return std::vector<std::string>{};
  }
  Result<std::string> ResolveSysfs(const std::string&) override {
    return std::string();
  }
  CpuFeatures Cpu() override { return {}; }
  Result<std::vector<ByteRange>> BadBlocks(int) override {
    return std::vector<ByteRange>{};
  }
  Status ClearBadBlock(int, const ByteRange&) override { return Status::Ok(); }

 private:
  std::string root_ = "/sys";
};

TEST(PlatformDefaults, PathsSyncAndEnvironmentRefuseOrSayNothing) {
  Bare p;
  EXPECT_EQ(p.StatPath("/x").status().kind(), ErrorKind::kUnsupported);
  EXPECT_EQ(p.SyncFile(3).kind(), ErrorKind::kUnsupported);
  EXPECT_EQ(p.SyncData(3).kind(), ErrorKind::kUnsupported);
  EXPECT_EQ(p.NextData(3, 0).status().kind(), ErrorKind::kUnsupported);
  EXPECT_EQ(*p.AbsolutePath("/abs"), "/abs");
  EXPECT_EQ(p.AbsolutePath("rel").status().kind(), ErrorKind::kUnsupported);
  EXPECT_EQ(p.Environment("HOME"), std::nullopt);
  EXPECT_FALSE(p.IsTerminal(2));
}

}  // namespace
}  // namespace daxstore
