// Transparent huge pages for tcmalloc's heap (issue #10). The server's memory grows by hundreds
// of megabytes while a fleet's series are first seen (every series makes its engine, store and
// sink state), and every interval walks all of it. Where the kernel's THP mode is `madvise`, a
// heap only gets 2 MiB pages when asked, and with 4 KiB pages the page faults of the first
// minute were ~20 % of the server's CPU in a profile of bench/fleet_bench (400k series). This
// wraps tcmalloc's system allocator to hand it 2 MiB-aligned extents advised MADV_HUGEPAGE:
// fleet_bench measured 29-37 % less CPU per sample over the first minute, and 17-29 % less
// once the series are made (fewer TLB misses, presumably: not measured apart).
// tcmalloc still returns freed spans with MADV_DONTNEED, which splits a huge page as needed.
// A huge page is backed whole once touched: RSS measured within the run-to-run spread at 400k
// and 2M series, +6 % at 20k. Advising only the heap beyond its first 128 MiB was measured too
// and lost most of the gain. Built only when the server links tcmalloc; `STATHERD_HUGE_HEAP=0`
// in the environment stops the advice (an operator who measures more RSS than they want).
//
// heap_tuning_summary() (server/heap_tuning.h) states the advice and tcmalloc's thread-cache
// target for the start-up log. That target stays tcmalloc's (32 MiB for all threads together;
// TCMALLOC_MAX_TOTAL_THREAD_CACHE_BYTES sets it): 2 MiB was measured (fleet_bench, alternating
// runs) and lowered the 20k-series 1 s shape's peak RSS from a median of 110 MB to 106 MB
// (90-106 against 92-112), while CPU per sample once the 400k series were made measured
// 0.90 / 0.82 / 0.89 / 0.96 s (the last on one rollup thread) against 0.84 / 0.79 / 0.73 /
// 0.82: inside the day's spread, but worse in each pair, so the default was left alone.
#include <sys/mman.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include <gperftools/malloc_extension.h>

#include "server/heap_tuning.h"

namespace {

constexpr size_t kHuge = size_t{2} << 20;
constexpr const char* kThreadCacheProperty = "tcmalloc.max_total_thread_cache_bytes";

enum class Advice { NotAsked, Installed, NoSystemAllocator };
Advice advice = Advice::NotAsked;  // constant-initialized: set by Install below

class HugeHeapAllocator : public SysAllocator {
 public:
  explicit HugeHeapAllocator(SysAllocator* next) : next_(next) {}

  void* Alloc(size_t size, size_t* actual_size, size_t alignment) override {
    // Whole, aligned 2 MiB extents: what the kernel can back with one huge page each. (A size
    // that cannot be rounded up goes as it is: tcmalloc's own allocator refuses it.)
    if (size > SIZE_MAX - (kHuge - 1)) return next_->Alloc(size, actual_size, alignment);
    const int saved_errno = errno;  // the madvise, or a refused aligned attempt, must not leak it
    size_t want = (size + kHuge - 1) & ~(kHuge - 1);
    void* p = next_->Alloc(want, actual_size, alignment < kHuge ? kHuge : alignment);
    if (p == nullptr) return next_->Alloc(size, actual_size, alignment);  // as before
    size_t got = actual_size != nullptr ? *actual_size : want;
    auto begin = reinterpret_cast<uintptr_t>(p);
    uintptr_t first = (begin + kHuge - 1) & ~(kHuge - 1);
    uintptr_t last = (begin + got) & ~(kHuge - 1);
    if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
    errno = saved_errno;
    return p;
  }

 private:
  SysAllocator* next_;
};

struct Install {
  Install() {
    MallocExtension* ext = MallocExtension::instance();
    const char* env = std::getenv("STATHERD_HUGE_HEAP");
    if (env != nullptr && std::strcmp(env, "0") == 0) return;
    SysAllocator* next = ext->GetSystemAllocator();
    if (next == nullptr) {  // nothing to wrap (a tool that replaced the allocator)
      advice = Advice::NoSystemAllocator;
      return;
    }
    // Never destroyed: tcmalloc keeps calling it until the process is gone (a static object's
    // destructor would run at exit while later frees and allocations still reach it).
    ext->SetSystemAllocator(new HugeHeapAllocator(next));
    advice = Advice::Installed;
  }
};

const Install install;

}  // namespace

namespace statherd::server {

std::string heap_tuning_summary() {
  size_t cache = 0;
  const bool known = MallocExtension::instance()->GetNumericProperty(kThreadCacheProperty, &cache);
  const char* heap = advice == Advice::Installed   ? "advised for huge pages"
                     : advice == Advice::NotAsked  ? "not advised (STATHERD_HUGE_HEAP=0)"
                                                   : "not advised (no system allocator to wrap)";
  return std::string("allocator tcmalloc, heap ") + heap + ", thread caches " +
         (known ? std::to_string(cache) + " bytes" : "unknown");
}

std::optional<HeapFigures> heap_figures() {
  MallocExtension* ext = MallocExtension::instance();
  size_t allocated = 0;
  if (!ext->GetNumericProperty("generic.current_allocated_bytes", &allocated)) return std::nullopt;
  HeapFigures f;
  f.allocated = allocated;
  // Each read is its own snapshot: the sum is close, not exact. central_cache_free_bytes
  // includes the unusable tails of small-object spans.
  for (const char* list : {"tcmalloc.pageheap_free_bytes", "tcmalloc.central_cache_free_bytes",
                           "tcmalloc.transfer_cache_free_bytes",
                           "tcmalloc.thread_cache_free_bytes"}) {
    size_t bytes = 0;
    if (!ext->GetNumericProperty(list, &bytes)) return std::nullopt;  // not this tcmalloc's
    f.free += bytes;
  }
  return f;
}

}  // namespace statherd::server
