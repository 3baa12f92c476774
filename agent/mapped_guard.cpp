// The SIGBUS guard of mapped reads (see mapped_guard.h for the contract on fn).
#include "agent/mapped_guard.h"

#include <setjmp.h>
#include <signal.h>

#include <atomic>
#include <cstdint>
#include <cstring>

namespace statherd::agent {
namespace {

// Per thread: a plain struct (no constructor, no destructor), so the signal handler reads it
// without a TLS init call. `active` is only touched by this thread and its own handler.
struct GuardState {
  sigjmp_buf env;
  uintptr_t begin;
  uintptr_t end;
  volatile sig_atomic_t active;
};
thread_local GuardState t_guard;

void restore_default_and_crash(int sig, const siginfo_t* info) {
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, nullptr);
  // A fault re-executes the faulting access on return and dies of it (a core dump at the real
  // place); a SIGBUS sent with kill() would not repeat, so send it again.
  if (info->si_code <= 0) raise(sig);
}

void on_sigbus(int sig, siginfo_t* info, void*) {
  GuardState& g = t_guard;
  const auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
  if (g.active && info->si_code > 0 && addr >= g.begin && addr < g.end) {
    g.active = 0;
    // SA_NODEFER kept SIGBUS unblocked, so no signal mask needs restoring (sigsetjmp(.., 0)).
    siglongjmp(g.env, 1);
  }
  restore_default_and_crash(sig, info);  // not a guarded read: a genuine bug must still crash
}

bool install_handler() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigbus;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  return sigaction(SIGBUS, &sa, nullptr) == 0;
}

// The only frame between sigsetjmp and the jump that is not fn's: it holds nothing with a
// destructor. noinline keeps the setjmp frame small and separate from the caller's locals.
[[gnu::noinline]] bool run_guarded(uintptr_t begin, uintptr_t end, GuardedFn fn) {
  GuardState& g = t_guard;
  g.begin = begin;
  g.end = end;
  if (sigsetjmp(g.env, 0) != 0) return false;  // 0: no sigprocmask syscall per call
  g.active = 1;
  std::atomic_signal_fence(std::memory_order_seq_cst);  // the flag is set before any read
  fn();
  std::atomic_signal_fence(std::memory_order_seq_cst);
  g.active = 0;
  return true;
}

}  // namespace

std::string mapped_file_shrank_error() {
  return "file shrank while being read (SIGBUS)\nhint: a writer truncated or rewrote it in "
         "place; it is mapped and read again next scrape";
}

bool guarded_read(const void* base, size_t len, GuardedFn fn, std::string& error) {
  static const bool installed = install_handler();  // once per process, thread-safe
  (void)installed;
  const auto begin = reinterpret_cast<uintptr_t>(base);
  if (run_guarded(begin, begin + len, fn)) return true;
  error = mapped_file_shrank_error();
  return false;
}

bool guarded_copy(const void* base, size_t len, size_t offset, size_t n, void* dst,
                  std::string& error) {
  const auto* from = static_cast<const unsigned char*>(base) + offset;
  return guarded_read(base, len, [from, n, dst] { std::memcpy(dst, from, n); }, error);
}

}  // namespace statherd::agent
