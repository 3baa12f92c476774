#include "common/token_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace statherd {

Result<std::string> read_token_file(const std::string& path) {
  const std::string hint =
      "create one with: head -c 32 /dev/urandom | base64 > token && chmod 600 token; then pass "
      "--token-file token (or token_file: in the config); the server and its agents use the "
      "same token";
  if (path.empty()) return make_error("token_file: no token file configured", hint);
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("cannot read token file " + path + ": " + std::strerror(errno), hint);
  std::ostringstream text;
  text << in.rdbuf();
  std::string token = text.str();
  auto is_space = [](char ch) { return ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t'; };
  while (!token.empty() && is_space(token.back())) token.pop_back();
  size_t start = 0;
  while (start < token.size() && is_space(token[start])) ++start;
  token.erase(0, start);
  if (token.empty()) return make_error("token file " + path + " is empty", hint);
  return token;
}

}  // namespace statherd
