// The OS seam for serving: unix sockets with descriptor passing, events and
// waiting, and the process calls of `daxstore serve`.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>

#include "platform/os_platform.h"
#include "testing/temp_dir.h"

namespace daxstore {
namespace {

using testing::TempDir;
using testing::WriteText;

// A raw client connection (the test plays the peer).
int ConnectTo(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, path.c_str(), sizeof(sa.sun_path) - 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 &&
      connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Sends bytes with descriptors attached (SCM_RIGHTS).
bool SendWithFds(int fd, const std::string& bytes, std::vector<int> fds) {
  iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = control.data();
  mh.msg_controllen = control.size();
  cmsghdr* c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
  std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  return sendmsg(fd, &mh, 0) == static_cast<ssize_t>(bytes.size());
}

TEST(PlatformSockets, ProbeListenAndStaleSockets) {
  TempDir dir;
  OsPlatform os("/sys");
  std::string sock = dir / "s.sock";
  EXPECT_EQ(*os.ProbeUnixSocket(sock), SocketPath::kAbsent);
  auto l = os.ListenUnix(sock, 1);
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  struct stat st;
  ASSERT_EQ(stat(sock.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(*os.ProbeUnixSocket(sock), SocketPath::kLive);
  // Taken: a second listener fails instead of stealing the path.
  EXPECT_FALSE(os.ListenUnix(sock, 1).ok());
  os.Close(*l);
  EXPECT_EQ(*os.ProbeUnixSocket(sock), SocketPath::kStale);
  ASSERT_TRUE(os.Remove(sock).ok());
  EXPECT_EQ(*os.ProbeUnixSocket(sock), SocketPath::kAbsent);

  WriteText(dir / "file", "x");
  EXPECT_EQ(*os.ProbeUnixSocket(dir / "file"), SocketPath::kNotSocket);
  auto longer = os.ProbeUnixSocket(std::string(200, 'a'));
  EXPECT_EQ(longer.status().kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(longer.status().message().find("longer than 107"),
            std::string::npos);
  EXPECT_FALSE(os.ListenUnix("", 1).ok());
}

TEST(PlatformSockets, ReceivesBytesAndDescriptors) {
  TempDir dir;
  OsPlatform os("/sys");
  auto l = os.ListenUnix(dir / "s.sock", 1);
  ASSERT_TRUE(l.ok());
  int client = ConnectTo(dir / "s.sock");
  ASSERT_GE(client, 0);
  auto conn = os.Accept(*l);
  ASSERT_TRUE(conn.ok());

  char buf[16];
  std::vector<int> fds;
  auto r = os.Receive(*conn, buf, sizeof(buf), &fds, 2);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->would_block);

  int a = *os.MakeEvent(), b = *os.MakeEvent(), c = *os.MakeEvent();
  ASSERT_TRUE(SendWithFds(client, "hello", {a, b}));
  r = os.Receive(*conn, buf, sizeof(buf), &fds, 2);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->bytes, 5u);
  EXPECT_FALSE(r->fds_truncated);
  EXPECT_EQ(std::string(buf, 5), "hello");
  ASSERT_EQ(fds.size(), 2u);
  for (int f : fds) EXPECT_TRUE(fcntl(f, F_GETFD) & FD_CLOEXEC);
  // The received descriptor is the same event: signalling it shows on a.
  os.SignalEvent(fds[0]);
  WaitFd w{.fd = a};
  EXPECT_EQ(*os.Wait({&w, 1}, 0), 1);
  for (int f : fds) os.Close(f);
  fds.clear();

  // One descriptor more than the caller takes: flagged, none leaked.
  ASSERT_TRUE(SendWithFds(client, "x", {a, b, c}));
  r = os.Receive(*conn, buf, sizeof(buf), &fds, 2);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->fds_truncated);
  EXPECT_LE(fds.size(), 2u);
  for (int f : fds) os.Close(f);

  auto sent = os.Send(*conn, "pong", 4);
  ASSERT_TRUE(sent.ok());
  EXPECT_EQ(*sent, 4u);
  ASSERT_EQ(read(client, buf, sizeof(buf)), 4);

  close(client);  // the peer goes away: 0 bytes, then writes fail quietly
  r = os.Receive(*conn, buf, sizeof(buf), nullptr, 0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->bytes, 0u);
  EXPECT_FALSE(r->would_block);
  EXPECT_FALSE(os.Send(*conn, "x", 1).ok());  // EPIPE, not SIGPIPE
  for (int f : {a, b, c, *conn, *l}) os.Close(f);
}

TEST(PlatformSockets, SendsDescriptorsWithBytes) {
  TempDir dir;
  OsPlatform os("/sys");
  auto l = os.ListenUnix(dir / "s.sock", 1);
  ASSERT_TRUE(l.ok());
  int client = ConnectTo(dir / "s.sock");
  ASSERT_GE(client, 0);
  auto conn = os.Accept(*l);
  ASSERT_TRUE(conn.ok());
  int ev = *os.MakeEvent();
  auto sent = os.SendWithFds(*conn, "fd!", 3, {&ev, 1});
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  EXPECT_EQ(*sent, 3u);
  // The client receives it with our own Receive (a socket is a socket).
  char buf[8];
  std::vector<int> fds;
  auto r = os.Receive(client, buf, sizeof(buf), &fds, 1);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->bytes, 3u);
  ASSERT_EQ(fds.size(), 1u);
  os.SignalEvent(fds[0]);  // the same event
  WaitFd w{.fd = ev};
  EXPECT_EQ(*os.Wait({&w, 1}, 0), 1);
  // No descriptors: a plain send. Zero bytes cannot carry any.
  EXPECT_EQ(*os.SendWithFds(*conn, "x", 1, {}), 1u);
  EXPECT_FALSE(os.SendWithFds(*conn, "", 0, {&ev, 1}).ok());
  for (int f : {fds[0], ev, client, *conn, *l}) os.Close(f);
}

TEST(PlatformSharedMemory, SealedZeroedAndSized) {
  OsPlatform os("/sys");
  auto fd = os.MakeSharedMemory("test", 8192);
  ASSERT_TRUE(fd.ok()) << fd.status().ToString();
  EXPECT_EQ(os.Stat(*fd)->size, 8192u);
  EXPECT_TRUE(fcntl(*fd, F_GETFD) & FD_CLOEXEC);
  EXPECT_TRUE(*os.SizeIsSealed(*fd));
  // Nobody can resize it, so a mapping never faults on a lost page.
  EXPECT_NE(ftruncate(*fd, 4096), 0);
  EXPECT_NE(ftruncate(*fd, 16384), 0);
  char b[16] = {1};
  EXPECT_EQ(pread(*fd, b, sizeof(b), 4096), 16);
  EXPECT_EQ(b[0], 0);
  // An ordinary file or an unsealed memfd is not sealed.
  TempDir dir;
  WriteText(dir / "f", "x");
  int f = open((dir / "f").c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_FALSE(*os.SizeIsSealed(f));
  int m = memfd_create("plain", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  EXPECT_FALSE(*os.SizeIsSealed(m));
  for (int x : {f, m, *fd}) os.Close(x);
}

TEST(PlatformEvents, SignalWaitConsumeAndDuplicate) {
  OsPlatform os("/sys");
  auto e = os.MakeEvent();
  ASSERT_TRUE(e.ok());
  WaitFd w{.fd = *e};
  EXPECT_EQ(*os.Wait({&w, 1}, 0), 0);
  EXPECT_FALSE(w.ready);
  os.SignalEvent(*e);
  os.SignalEvent(*e);
  EXPECT_EQ(*os.Wait({&w, 1}, 1000), 1);
  EXPECT_TRUE(w.ready);
  EXPECT_FALSE(w.failed);
  os.ConsumeEvent(*e);  // resets the counter, however often it was signalled
  EXPECT_EQ(*os.Wait({&w, 1}, 0), 0);
  os.ConsumeEvent(*e);  // unsignalled and non-blocking: returns at once

  auto d = os.Duplicate(*e);
  ASSERT_TRUE(d.ok());
  EXPECT_NE(*d, *e);
  EXPECT_TRUE(fcntl(*d, F_GETFD) & FD_CLOEXEC);
  os.SignalEvent(*d);
  EXPECT_EQ(*os.Wait({&w, 1}, 0), 1);
  os.Close(*d);
  os.Close(*e);
  // A descriptor that is not open is reported, not waited on.
  WaitFd gone{.fd = *e};
  EXPECT_EQ(*os.Wait({&gone, 1}, 1000), 1);
  EXPECT_TRUE(gone.failed);
  EXPECT_FALSE(os.Duplicate(*e).ok());
}

TEST(PlatformProcess, FindsProgramsAndMakesPrivateDirs) {
  TempDir dir;
  OsPlatform os("/sys");
  EXPECT_EQ(*os.UserId(), getuid());
  auto sh = os.FindProgram("sh");
  ASSERT_TRUE(sh.ok());
  EXPECT_EQ(access(sh->c_str(), X_OK), 0);
  EXPECT_EQ(os.FindProgram("daxstore-no-such-program").status().kind(),
            ErrorKind::kNotFound);

  std::string p = dir / "private";
  ASSERT_TRUE(os.MakePrivateDir(p).ok());
  struct stat st;
  ASSERT_EQ(stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_TRUE(os.MakePrivateDir(p).ok());  // already there and private
  ASSERT_EQ(chmod(p.c_str(), 0755), 0);
  Status open_dir = os.MakePrivateDir(p);
  EXPECT_EQ(open_dir.kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(open_dir.sys_errno(), 0);
  WriteText(dir / "file", "x");
  EXPECT_FALSE(os.MakePrivateDir(dir / "file").ok());
  Status no_parent = os.MakePrivateDir(dir / "missing/sub");
  EXPECT_EQ(no_parent.sys_errno(), ENOENT);
}

TEST(PlatformProcess, ExecSetsTheUmaskOrReturnsWhyNot) {
  OsPlatform os("/sys");
  EXPECT_EQ(os.Exec({}, {}).kind(), ErrorKind::kInvalidArgument);
  Status missing = os.Exec({"/nonexistent/daxstore-prog"}, {});
  EXPECT_EQ(missing.kind(), ErrorKind::kNotFound);  // and we are still here

  std::string sh = *os.FindProgram("sh");
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Status st = os.Exec({sh, "-c", "test \"$(umask)\" = 0077"},
                        ExecOptions{.umask = 077});
    _exit(st.ok() ? 98 : 99);  // only if exec failed
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

volatile sig_atomic_t g_stops = 0;
void CountStop(int) { g_stops = g_stops + 1; }

TEST(PlatformProcess, StopSignalsReachTheHandler) {
  OsPlatform os("/sys");
  ASSERT_TRUE(os.OnStopSignals(CountStop).ok());
  raise(SIGTERM);
  raise(SIGINT);
  EXPECT_EQ(g_stops, 2);
  signal(SIGTERM, SIG_DFL);
  signal(SIGINT, SIG_DFL);
}

}  // namespace
}  // namespace daxstore
