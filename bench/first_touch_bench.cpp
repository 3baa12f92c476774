// What first touching memory costs on this machine (issue #10): the fleet bench's first minute
// makes every series' state, and the kernel backs each new page of the server's heap. On a
// virtual machine whose free memory goes back to the host (virtio-balloon free page
// reporting), a page the guest had returned is backed by the host again on first touch, and
// that stall is charged to the process as system time (`clear_page_erms` in a profile).
// This prints, for one size, seconds and ms per MB of:
//   - a first touch with 4 KiB pages and with huge pages asked for (MADV_HUGEPAGE, as the
//     server's heap does: server/huge_heap.cpp);
//   - a second touch of the same memory (already backed);
//   - a fresh mapping touched right after the previous one was unmapped (the guest reuses the
//     pages it just freed);
//   - a fresh mapping touched after a pause (by then the guest may have reported its free
//     pages to the host, and they cost a first touch again).
// Usage: first_touch_bench [MiB [pause_s]]   (default 256 MiB, 5 s)
#include <sys/mman.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kHuge = size_t{2} << 20;

struct Mapping {
  char* base = nullptr;  // as mmap gave it
  char* data = nullptr;  // 2 MiB-aligned within it
  size_t bytes = 0;
};

Mapping map_bytes(size_t bytes, bool huge) {
  Mapping m;
  m.bytes = bytes;
  void* p = ::mmap(nullptr, bytes + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
  if (p == MAP_FAILED) {
    std::perror("mmap");
    std::exit(1);
  }
  m.base = static_cast<char*>(p);
  m.data = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(p) + kHuge - 1) & ~(kHuge - 1));
  if (huge) ::madvise(m.data, bytes, MADV_HUGEPAGE);
  return m;
}

void unmap(Mapping& m) { ::munmap(m.base, m.bytes + kHuge); }

// Writes one byte per 4 KiB page; seconds taken.
double touch(const Mapping& m, char value) {
  const auto t0 = Clock::now();
  for (size_t i = 0; i < m.bytes; i += 4096) m.data[i] = value;
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void row(const char* what, double seconds, size_t mib) {
  std::printf("| %-58s | %7.3f s | %7.3f ms |\n", what, seconds,
              seconds * 1000.0 / static_cast<double>(mib));
}

}  // namespace

int main(int argc, char** argv) {
  const size_t mib = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 256;
  const int pause_s = argc > 2 ? std::atoi(argv[2]) : 5;
  if (mib == 0) {
    std::fprintf(stderr, "usage: first_touch_bench [MiB [pause_s]]\n");
    return 2;
  }
  const size_t bytes = mib << 20;
  std::printf("first touch of %zu MiB of anonymous memory\n", mib);
  std::printf("| case | time | per MiB |\n|---|---|---|\n");
  for (bool huge : {false, true}) {
    Mapping a = map_bytes(bytes, huge);
    row(huge ? "first touch, huge pages asked for" : "first touch, 4 KiB pages", touch(a, 1), mib);
    row("  same memory again", touch(a, 2), mib);
    unmap(a);
    Mapping b = map_bytes(bytes, huge);
    row("  new mapping right after the unmap", touch(b, 1), mib);
    unmap(b);
    std::this_thread::sleep_for(std::chrono::seconds(pause_s));
    Mapping c = map_bytes(bytes, huge);
    char label[80];
    std::snprintf(label, sizeof label, "  new mapping after a %d s pause", pause_s);
    row(label, touch(c, 1), mib);
    unmap(c);
  }
  return 0;
}
