// libFuzzer target: unpack_cells() (packed interval cells read from a snapshot) must never
// crash or read past its input, and what it accepts packs and unpacks to the same cells.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <span>
#include <vector>

#include "server/interval_cells.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using statherd::server::Cell;
  std::vector<Cell> cells;
  try {
    cells = statherd::server::unpack_cells(std::span<const uint8_t>(data, size));
  } catch (const std::exception&) {
    return 0;
  }
  const std::vector<Cell> again =
      statherd::server::unpack_cells(statherd::server::pack_cells(cells));
  if (again.size() != cells.size()) std::abort();
  for (size_t i = 0; i < cells.size(); ++i)
    if (again[i].slot != cells[i].slot || again[i].dist != cells[i].dist ||
        std::memcmp(&again[i].value, &cells[i].value, sizeof(double)) != 0)
      std::abort();
  return 0;
}
