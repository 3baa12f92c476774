// Tests that rewrite a snapshot document as an older version: versions before 5 had no packed
// interval cells (server/interval_cells.h), so those become arrays of [slot, dist, value].
#pragma once

#include <nlohmann/json.hpp>

#include "server/interval_cells.h"

namespace statherd::server::testing {

inline void unpack_snapshot_cells(nlohmann::json& snapshot) {
  for (auto& iv : snapshot.at("intervals")) {
    if (!iv[2].is_binary()) continue;
    nlohmann::json cells = nlohmann::json::array();
    for (const Cell& c : unpack_cells(iv[2].get_binary())) cells.push_back({c.slot, c.dist, c.value});
    iv[2] = std::move(cells);
  }
}

}  // namespace statherd::server::testing
