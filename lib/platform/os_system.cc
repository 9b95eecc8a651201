// Memory, sysfs, CPU and media-error half of OsPlatform.
#include <cpuid.h>
#include <dirent.h>
#include <fcntl.h>
#include <libpmem2.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>

#include "platform/os_platform.h"

namespace daxstore {

Result<void*> OsPlatform::Map(void* addr, size_t len, int prot, int flags,
                              int fd, uint64_t off) {
  void* p = ::mmap(addr, len, prot, flags, fd, static_cast<off_t>(off));
  if (p == MAP_FAILED) return FromErrno(errno, "mmap");
  return p;
}

Status OsPlatform::Unmap(void* addr, size_t len) {
  if (::munmap(addr, len) != 0) return FromErrno(errno, "munmap");
  return Status::Ok();
}

Status OsPlatform::Sync(void* addr, size_t len) {
  if (::msync(addr, len, MS_SYNC) != 0) return FromErrno(errno, "msync");
  return Status::Ok();
}

std::string OsPlatform::Abs(const std::string& rel) const {
  if (!rel.empty() && rel.front() == '/') return root_ + rel;
  return root_ + "/" + rel;
}

Result<std::string> OsPlatform::ReadSysfs(const std::string& rel) {
  auto text = ReadFile(Abs(rel));
  if (!text.ok()) return text.status();
  std::string s = std::move(*text);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

Status OsPlatform::WriteSysfs(const std::string& rel,
                              const std::string& value) {
  std::string path = Abs(rel);
  DAXSTORE_ASSIGN_OR_RETURN(int fd, Open(path, O_WRONLY, 0));
  auto n = PWrite(fd, value.data(), value.size(), 0);
  Close(fd);
  if (!n.ok()) return n.status().WithContext("write " + path);
  return Status::Ok();
}

Result<std::vector<std::string>> OsPlatform::ListSysfs(const std::string& rel) {
  std::string path = Abs(rel);
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return FromErrno(errno, "cannot list " + path);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

Result<std::string> OsPlatform::ResolveSysfs(const std::string& rel) {
  char resolved[PATH_MAX];
  char root[PATH_MAX];
  if (::realpath(Abs(rel).c_str(), resolved) == nullptr) {
    return FromErrno(errno, "cannot resolve " + Abs(rel));
  }
  if (::realpath(root_.c_str(), root) == nullptr) {
    return FromErrno(errno, "cannot resolve " + root_);
  }
  std::string r = resolved, base = root;
  if (r.compare(0, base.size(), base) != 0) {
    return NotFound(Abs(rel) + " resolves outside " + root_);
  }
  return r.substr(base.size());
}

CpuFeatures OsPlatform::Cpu() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (__get_cpuid(1, &a, &b, &c, &d)) {
    f.clflush = (d >> 19) & 1;
    f.sse2 = (d >> 26) & 1;
    f.avx = (c >> 28) & 1;
  }
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    f.avx512f = (b >> 16) & 1;
    f.clflushopt = (b >> 23) & 1;
    f.clwb = (b >> 24) & 1;
    f.movdir64b = (c >> 28) & 1;
  }
  return f;
}

std::string CpuFeatures::flush_instruction() const {
  if (clwb) return "clwb";
  if (clflushopt) return "clflushopt";
  if (clflush) return "clflush";
  return "none";
}

namespace {
// libpmem2 finds a source's namespace and its bad blocks through libndctl.
struct Pmem2Source {
  pmem2_source* src = nullptr;
  ~Pmem2Source() {
    if (src) pmem2_source_delete(&src);
  }
};
struct Pmem2BadBlocks {
  pmem2_badblock_context* ctx = nullptr;
  ~Pmem2BadBlocks() {
    if (ctx) pmem2_badblock_context_delete(&ctx);
  }
};

Status Pmem2Error(int rc, const std::string& what) {
  // libpmem2 returns -errno or one of its own PMEM2_E_* codes (< -4095).
  int e = (rc < 0 && rc > -4096) ? -rc : EIO;
  return FromErrno(e, what + " (" + std::string(pmem2_errormsg()) + ")");
}

Status OpenBadBlocks(int fd, Pmem2Source& s, Pmem2BadBlocks& b) {
  int rc = pmem2_source_from_fd(&s.src, fd);
  if (rc != 0) return Pmem2Error(rc, "cannot inspect the source");
  rc = pmem2_badblock_context_new(&b.ctx, s.src);
  if (rc != 0) {
    return Pmem2Error(rc,
                      "cannot read bad blocks (is this a DAX file or a "
                      "devdax device on a pmem namespace?)");
  }
  return Status::Ok();
}
}  // namespace

Result<std::vector<ByteRange>> OsPlatform::BadBlocks(int fd) {
  Pmem2Source s;
  Pmem2BadBlocks b;
  DAXSTORE_RETURN_IF_ERROR(OpenBadBlocks(fd, s, b));
  std::vector<ByteRange> out;
  pmem2_badblock bb;
  while (pmem2_badblock_next(b.ctx, &bb) == 0) {
    out.push_back({bb.offset, bb.length});
  }
  return out;
}

Status OsPlatform::ClearBadBlock(int fd, const ByteRange& range) {
  Pmem2Source s;
  Pmem2BadBlocks b;
  DAXSTORE_RETURN_IF_ERROR(OpenBadBlocks(fd, s, b));
  pmem2_badblock bb{range.offset, range.length};
  int rc = pmem2_badblock_clear(b.ctx, &bb);
  if (rc != 0) return Pmem2Error(rc, "cannot clear the bad block");
  return Status::Ok();
}

}  // namespace daxstore
