// PromMultiprocSource's SIGBUS-guarded reads of mapped .db files and what is built on them.
#include <atomic>
#include <cstring>

#include "agent/sources/prom_multiproc_source_impl.h"

namespace statherd::agent {

// Why copies: a read of a mapping that SIGBUSes jumps out of guarded_read, so what runs inside
// must leave no half-updated layout or series table behind. The guarded parts below only load
// and copy; keys are parsed and values folded in afterwards, from the copies.

// extend() on a guarded copy of the header and of the bytes appended since the last scrape.
// False (and `fault`) if the mapping faulted; else `extended` is extend()'s result.
bool PromMultiprocSource::DirState::extend_mapped(PromDbFile& f, Status& extended,
                                                  std::string& fault) {
  const size_t size = f.map.size();
  if (image.size() < size) image.resize(size);  // never shrinks: no zero-fill per file
  const uint8_t* map = f.map.data();
  uint8_t* img = image.data();
  const uint32_t from = f.layout.parsed_to;
  auto copy = [map, img, size, from] {
    std::memcpy(img, map, kPromDbHeaderBytes);
    std::atomic_thread_fence(std::memory_order_acquire);  // `used` before the entries below it
    uint32_t used;
    std::memcpy(&used, img, 4);
    if (used > from && used <= size) std::memcpy(img + from, map + from, used - from);
  };
  if (!f.map.read(copy, fault)) return false;
  extended = extend(f, {image.data(), size});
  return true;
}

// Each entry's value (and timestamp) of a mapped file into `values`, guarded.
bool PromMultiprocSource::DirState::copy_values(const PromDbFile& f, std::string& fault) {
  const size_t per_entry = f.layout.value_bytes == 16 ? 2 : 1;
  values.resize(f.targets.size() * per_entry);
  const uint8_t* data = f.map.data();
  auto copy = [&f, this, per_entry, data] {
    for (size_t i = 0; i < f.targets.size(); ++i) {
      const uint32_t at = f.layout.entries[i].value_offset;
      values[i * per_entry] = load_prom_db_double(data, at);  // an 8-byte load, nothing else
      if (per_entry == 2) values[i * per_entry + 1] = load_prom_db_double(data, at + 8);
    }
  };
  return f.map.read(copy, fault);
}

bool PromMultiprocSource::DirState::apply_mapped(const PromDbFile& f, std::string& fault) {
  if (!copy_values(f, fault)) return false;
  const size_t per_entry = f.layout.value_bytes == 16 ? 2 : 1;
  for (size_t i = 0; i < f.targets.size(); ++i)
    table.apply(f.targets[i], values[i * per_entry],
                per_entry == 2 ? values[i * per_entry + 1] : 0.0);
  return true;
}

// False (and `fault`) if the mapping faulted: nothing is retired, the values are gone.
bool PromMultiprocSource::DirState::retire(PromDbFile& f, std::string& fault) {
  if (!f.map.mapped()) return true;
  if (!copy_values(f, fault)) return false;
  const size_t per_entry = f.layout.value_bytes == 16 ? 2 : 1;
  for (size_t i = 0; i < f.targets.size(); ++i) table.retire(f.targets[i], values[i * per_entry]);
  return true;
}

}  // namespace statherd::agent
