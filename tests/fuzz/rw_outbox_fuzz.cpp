// libFuzzer target: the remote_write outbox decoder (a file the server reads at start) must never
// crash, hang or read past its input; what it accepts must encode back to the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "server/sinks/remote_write_outbox.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto pending = statherd::server::decode_rw_pending(bytes);
  if (pending.ok() && statherd::server::encode_rw_pending(*pending) != bytes) std::abort();
  return 0;
}
