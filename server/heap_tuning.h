// What the server's allocator was set up with (server/huge_heap.cpp when it links tcmalloc),
// for the start-up log line: an operator comparing RSS between hosts sees what each ran with.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace statherd::server {

// "allocator tcmalloc, heap advised for huge pages, thread caches 33554432 bytes" (the value
// tcmalloc holds, read back); with glibc's malloc (no tcmalloc at build time, the sanitizer
// builds) "allocator glibc malloc".
std::string heap_tuning_summary();

// What the allocator holds, for the statherd_server_heap_* gauges: `allocated` is what the
// program has asked for and not freed (with the allocator's rounding), `free` what the
// allocator keeps without giving it back to the kernel (tcmalloc: its page heap, central,
// transfer and thread-cache free lists, and span overhead). RSS is about allocated + free +
// the allocator's metadata + the binary's own pages and stacks. nullopt: with glibc's malloc
// (whose mallinfo2 walks every free chunk under the arena's lock) and the sanitizers.
struct HeapFigures {
  uint64_t allocated = 0, free = 0;
};
std::optional<HeapFigures> heap_figures();

}  // namespace statherd::server
