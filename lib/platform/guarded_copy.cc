#include "platform/guarded_copy.h"

#include <setjmp.h>
#include <signal.h>
#include <ucontext.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "platform/guest_memory_guard.h"

#if defined(__x86_64__)
// The data-path copy on x86-64 resumes a fault at a fixup (as the kernel's
// exception tables do) instead of jumping out of the handler, so a copy
// costs a call and the copy itself: no setjmp, no thread-local store. It
// returns 0, or 1 when a load or store faulted; a leaf function that
// touches no stack, so the fixup may return for it. The copy is glibc's
// for these sizes (its memcpy uses rep movsb above ~2 KiB here): the first
// 64 bytes with unaligned moves, then rep movsb from the first 64-byte
// aligned destination on, where rep movsb is fastest.
extern "C" {
size_t daxstore_mc_copy(void* dst, const void* src, size_t n);
extern const char daxstore_mc_begin[], daxstore_mc_end[];
extern const char daxstore_mc_fixup[];
}
asm(R"(
  .pushsection .text
  .p2align 4
  .globl daxstore_mc_copy, daxstore_mc_begin, daxstore_mc_end
  .globl daxstore_mc_fixup
  .hidden daxstore_mc_copy, daxstore_mc_begin, daxstore_mc_end
  .hidden daxstore_mc_fixup
  .type daxstore_mc_copy, @function
daxstore_mc_copy:
daxstore_mc_begin:
  movq %rdx, %rcx
  cmpq $64, %rdx
  jb 1f
  movdqu (%rsi), %xmm0
  movdqu 16(%rsi), %xmm1
  movdqu 32(%rsi), %xmm2
  movdqu 48(%rsi), %xmm3
  movdqu %xmm0, (%rdi)
  movdqu %xmm1, 16(%rdi)
  movdqu %xmm2, 32(%rdi)
  movdqu %xmm3, 48(%rdi)
  leaq 64(%rdi), %rax
  andq $-64, %rax
  subq %rdi, %rax
  addq %rax, %rdi
  addq %rax, %rsi
  subq %rax, %rcx
1:
  rep movsb
  xorl %eax, %eax
  ret
daxstore_mc_end:
daxstore_mc_fixup:
  movl $1, %eax
  ret
  .size daxstore_mc_copy, .-daxstore_mc_copy
  .popsection
)");
#endif

namespace daxstore {

namespace {
// volatile: the handler writes these; without it the compiler may drop the
// store around a memcpy that cannot see them. initial-exec: an access is
// one load off the thread pointer, not a call to __tls_get_addr (16 bytes
// fit the static TLS glibc keeps for libraries loaded with dlopen, such as
// the nbdkit plugin).
[[gnu::tls_model("initial-exec")]] thread_local sigjmp_buf* volatile t_jump =
    nullptr;
[[gnu::tls_model("initial-exec")]] thread_local void* volatile t_fault_addr =
    nullptr;
struct sigaction g_previous;
std::atomic<bool> g_installed{false};

void OnSigbus(int sig, siginfo_t* info, void* ctx) {
  // Guest memory a front end shrank: a zero page now backs the address and
  // the access is retried on return (no unwinding past held locks).
  if (RepairGuestFault(info->si_addr)) return;
#if defined(__x86_64__)
  auto& rip = static_cast<ucontext_t*>(ctx)->uc_mcontext.gregs[REG_RIP];
  const auto* pc = reinterpret_cast<const char*>(rip);
  if (pc >= daxstore_mc_begin && pc < daxstore_mc_end) {
    t_fault_addr = info->si_addr;
    rip = reinterpret_cast<greg_t>(daxstore_mc_fixup);
    return;
  }
#endif
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
    g_installed.store(true, std::memory_order_release);
  });
}

bool TryGuardedCopy(void* dst, const void* src, size_t n, const void** fault) {
  if (!g_installed.load(std::memory_order_acquire)) [[unlikely]] {
    InstallSigbusHandler();
  }
#if defined(__x86_64__)
  const size_t failed = daxstore_mc_copy(dst, src, n);
  if (failed == 0) [[likely]]
    return true;
  if (fault) *fault = t_fault_addr;
  return false;
#else
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
#endif
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
