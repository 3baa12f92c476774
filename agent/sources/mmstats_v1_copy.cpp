// MmstatsV1Source's copies of a file: SIGBUS-guarded images of mappings, --once pread() copies.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "agent/sources/mmstats_v1_source_impl.h"

namespace statherd::agent {
namespace {

// Largest file the --once path copies; a larger one is mapped instead.
constexpr size_t kMaxCopyBytes = 64u << 20;

}  // namespace

// Why a private image of a mapped file: a read that SIGBUSes (file truncated under us) jumps
// out of guarded_read, which must then find no half-built string or vector. So the guarded part
// only copies bytes into `image` at their file offsets - the structure with one memcpy, each
// field's write_buffer + readable value by the torn-read rule - and the layout is parsed and the
// values decoded from the image, outside the guard. (Decoding straight from the mapping inside
// the guard would need a parser that never allocates.) The extra copy of the structure is
// ~4 KB per file; bench/agent_read_bench measured no noticeable difference.
Status MmstatsV1Source::Impl::snapshot_mapped(MmstatsMappedFile& f) {
  const size_t size = f.map.size();
  std::string fault;
  // The structure up to the terminator (whole file until a layout is known), then the rest of
  // the file only if the structure changed.
  size_t head = f.layout_ok ? std::min<size_t>(size, size_t{f.layout.end} + 2) : size;
  bool ok = f.map.copy_to_image(image, 0, head, fault);
  const std::span<const uint8_t> img(image.data(), size);
  if (ok && f.layout_ok && !mmstats_v1_layout_still_valid(img, f.layout)) {
    f.layout_ok = false;
    ok = f.map.copy_to_image(image, head, size - head, fault);
  }
  Status st = Ok{};
  if (ok && !f.layout_ok) st = parse_layout(f, img);
  if (ok && st) ok = copy_values_consistently(f, fault);
  if (!ok) {
    f.unmap();  // never touched again; the next scrape maps the file as it is then
    return make_error(fault);
  }
  return st;
}

// For every field, write_buffer + readable value copied from the mapping into the image until
// two consecutive copies agree (read_mmstats_v1_value's torn-read rule); torn_fields[i] = 1 if
// they never did. Runs inside guarded_read: only copies, into buffers sized beforehand.
bool MmstatsV1Source::Impl::copy_values_consistently(const MmstatsMappedFile& f,
                                                    std::string& fault) {
  size_t widest = 0;
  for (const auto& field : f.layout.fields) widest = std::max<size_t>(widest, field.value_size);
  if (field_copies.size() < 2 * (widest + 1)) field_copies.resize(2 * (widest + 1));
  torn_fields.assign(f.layout.fields.size(), 0);
  const uint8_t* map = f.map.data();
  auto copy_once = [map](const MmstatsFieldLayout& field, uint8_t* dst) {
    dst[0] = *reinterpret_cast<const volatile uint8_t*>(map + field.wb_offset);
    std::atomic_signal_fence(std::memory_order_seq_cst);  // write_buffer before the value
    const size_t slot = field.buffered ? ((dst[0] & 1u) ^ 1u) : 0;
    std::memcpy(dst + 1, map + field.wb_offset + 1 + slot * field.value_size, field.value_size);
    std::atomic_signal_fence(std::memory_order_seq_cst);
  };
  auto copy_all = [&] {
    for (size_t i = 0; i < f.layout.fields.size(); ++i) {
      const MmstatsFieldLayout& field = f.layout.fields[i];
      uint8_t* a = field_copies.data();
      uint8_t* b = a + field.value_size + 1;
      copy_once(field, a);
      torn_fields[i] = 1;
      for (int attempt = 1; attempt < kMmstatsMaxReadTries && torn_fields[i]; ++attempt) {
        copy_once(field, b);
        if (std::memcmp(a, b, field.value_size + 1) == 0) {
          const size_t slot = field.buffered ? ((a[0] & 1u) ^ 1u) : 0;
          image[field.wb_offset] = a[0];
          std::memcpy(&image[field.wb_offset + 1 + slot * field.value_size], a + 1,
                      field.value_size);
          torn_fields[i] = 0;
        }
        std::swap(a, b);
      }
    }
  };
  return f.map.read(copy_all, fault);
}

// Copies f.path (open as fd) into `copy` and points f at it, if a second copy agrees with the
// first over every field (the torn-read rule of read_mmstats_v1_value, applied to whole copies).
// Otherwise (a writer is busy, or the file is huge) f is mapped and read the usual way.
// Never more than max_file_bytes: a file that grew past it since StatFile::open is refused.
Status MmstatsV1Source::Impl::copy_consistent(MmstatsMappedFile& f, const StatFile& file) {
  const int fd = file.fd();
  const uint64_t cap = options.max_file_bytes;
  auto n = copy_whole_file(fd, copy, static_cast<size_t>(std::min<uint64_t>(cap, kMaxCopyBytes)) + 1);
  if (!n) return n.error();
  if (*n > cap) return over_file_cap_error(*n, cap);
  if (*n == 0) return make_error("mmstats v1: empty file (0 bytes)", "the writer may be starting; read again next scrape");
  f.copied = {copy.data(), *n};
  if (*n <= kMaxCopyBytes && refresh_layout(f, f.bytes())) {
    const size_t used = f.layout.end;
    if (check_copy.size() < used) check_copy.resize(used);
    const ssize_t again = ::pread(fd, check_copy.data(), used, 0);
    if (again == static_cast<ssize_t>(used) && std::memcmp(copy.data(), check_copy.data(), used) == 0)
      return Ok{};
  } else if (*n <= kMaxCopyBytes) {
    return Ok{};  // unparseable: read_file reports why
  }
  f.copied = {};
  return map_file(f);
}

}  // namespace statherd::agent
