// guarded_read: survive a stat file being truncated while we read its MAP_SHARED mapping.
//
// Reading a page of a file mapping that lies wholly past the file's current end raises SIGBUS,
// and a writer can shrink the file (ftruncate, or open(O_TRUNC) and rewrite, e.g. a restarted
// process reusing its file name) at any moment - also between our stat() and our read. The
// sources first compare the file's size each scrape (the cheap check that handles the usual
// case without a signal); guarded_read covers the remaining race.
//
// How: a process-wide SIGBUS handler (installed on first use) jumps back into guarded_read if
// this thread is inside a guarded call and the fault address lies in the guarded range; any
// other SIGBUS is a bug and still kills the process (default action, same faulting access).
//
// A jump out of `fn` skips every destructor and abandons whatever fn was doing, so fn must be
// "jump-safe": it only copies mapped bytes (memcpy, loads) into memory that was allocated
// before the call, declares no local with a destructor, allocates nothing and calls no
// guarded_read itself. Parse the copy afterwards, outside the guard.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <type_traits>

namespace statherd::agent {

// A non-owning reference to a `void()` callable: trivially destructible and never allocating,
// so nothing with a destructor lives in guarded_read's frame (unlike std::function).
class GuardedFn {
 public:
  template <typename F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, GuardedFn> && std::is_invocable_v<F&>)
  GuardedFn(F&& f)  // NOLINT(google-explicit-constructor): lambdas convert implicitly
      : obj_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* obj) { (*static_cast<std::remove_reference_t<F>*>(obj))(); }) {}
  void operator()() const { call_(obj_); }

 private:
  void* obj_;
  void (*call_)(void*);
};

// The message of a guarded read that faulted (SourceError text; it names no file, the
// SourceError's path does).
std::string mapped_file_shrank_error();

// Runs fn, which reads the mapping [base, base + len). True if it ran to the end; false, with
// `error` set to mapped_file_shrank_error(), if a read of that range raised SIGBUS (fn stopped
// at that read; whatever it copied is partial). The caller then drops that mapping.
bool guarded_read(const void* base, size_t len, GuardedFn fn, std::string& error);

// guarded_read of a plain memcpy(dst, base + offset, n); offset + n <= len is the caller's.
bool guarded_copy(const void* base, size_t len, size_t offset, size_t n, void* dst,
                  std::string& error);

}  // namespace statherd::agent
