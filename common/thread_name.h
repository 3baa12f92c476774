// Names the calling thread: what `top -H`, `ps -L`, perf and gdb show for it. Linux keeps the
// first 15 bytes; a longer name is cut there. Best effort (a failure changes nothing else).
#pragma once

#include <string_view>

namespace statherd {

void name_this_thread(std::string_view name);

}  // namespace statherd
