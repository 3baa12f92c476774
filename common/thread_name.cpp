#include "common/thread_name.h"

#include <pthread.h>

#include <algorithm>
#include <cstring>

namespace statherd {

void name_this_thread(std::string_view name) {
  char buffer[16];
  const size_t n = std::min(name.size(), sizeof buffer - 1);
  std::memcpy(buffer, name.data(), n);
  buffer[n] = '\0';
  pthread_setname_np(pthread_self(), buffer);
}

}  // namespace statherd
