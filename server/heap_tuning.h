// What the server's allocator was set up with (server/huge_heap.cpp when it links tcmalloc),
// for the start-up log line: an operator comparing RSS between hosts sees what each ran with.
#pragma once

#include <string>

namespace statherd::server {

// "allocator tcmalloc, heap advised for huge pages, thread caches 33554432 bytes" (the value
// tcmalloc holds, read back); with glibc's malloc (no tcmalloc at build time, the sanitizer
// builds) "allocator glibc malloc".
std::string heap_tuning_summary();

}  // namespace statherd::server
