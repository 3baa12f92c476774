// Base64 (RFC 4648, the standard alphabet, '=' padding), as etcd's JSON gateway writes keys and
// values.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace statherd {

std::string base64_encode(std::string_view bytes);
// nullopt on a character outside the alphabet, a length that is not a multiple of 4, or
// padding anywhere but at the end, or bits set past the last byte ("Zh==": one text per byte
// string, as etcd writes them).
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace statherd
