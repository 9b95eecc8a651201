#include "platform/guarded_copy.h"

#include <setjmp.h>
#include <signal.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "platform/guest_memory_guard.h"

namespace daxstore {

namespace {
// volatile: the handler reads these; without it the compiler may drop the
// store around a memcpy that cannot see them.
thread_local sigjmp_buf* volatile t_jump = nullptr;
thread_local void* volatile t_fault_addr = nullptr;
struct sigaction g_previous;

void OnSigbus(int sig, siginfo_t* info, void* ctx) {
  // Guest memory a front end shrank: a zero page now backs the address and
  // the access is retried on return (no unwinding past held locks).
  if (RepairGuestFault(info->si_addr)) return;
  if (t_jump != nullptr) {
    t_fault_addr = info->si_addr;
    siglongjmp(*t_jump, 1);
  }
  // Not ours: behave as if we were never installed.
  if (g_previous.sa_flags & SA_SIGINFO) {
    g_previous.sa_sigaction(sig, info, ctx);
  } else if (g_previous.sa_handler != SIG_DFL &&
             g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(sig);
  } else {
    signal(sig, SIG_DFL);
    raise(sig);
  }
}

}  // namespace

void InstallSigbusHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = OnSigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &g_previous);
  });
}

bool TryGuardedCopy(void* dst, const void* src, size_t n, const void** fault) {
  InstallSigbusHandler();
  sigjmp_buf jump;
  // No signal mask is saved (0): the handler runs with SA_NODEFER and an
  // empty sa_mask, so the mask in force when it jumps back is the one in
  // force here, and saving it would cost a system call on every copy.
  if (sigsetjmp(jump, 0) != 0) {
    t_jump = nullptr;
    if (fault) *fault = t_fault_addr;
    return false;
  }
  t_jump = &jump;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  std::memcpy(dst, src, n);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  t_jump = nullptr;
  return true;
}

Status GuardedCopy(void* dst, const void* src, size_t n,
                   uint64_t* fault_offset) {
  const void* fault = nullptr;
  if (TryGuardedCopy(dst, src, n, &fault)) return Status::Ok();
  const auto* s = static_cast<const char*>(src);
  const auto* f = static_cast<const char*>(fault);
  if (f < s || f >= s + n) {
    if (fault_offset) *fault_offset = n;
    return IoError("memory fault in the destination buffer of a copy", EFAULT);
  }
  uint64_t off = static_cast<uint64_t>(f - s);
  if (fault_offset) *fault_offset = off;
  return IoError(
      "media error (poison) at offset " + std::to_string(off) + " of the read",
      EIO);
}

}  // namespace daxstore
