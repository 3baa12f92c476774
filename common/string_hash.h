// A hash for std::string keys that also takes std::string_view (heterogeneous lookup: a find
// by view builds no std::string). Use with std::equal_to<>.
#pragma once

#include <cstddef>
#include <functional>
#include <string_view>

namespace statherd {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

}  // namespace statherd
