// Text from other processes made safe to print: a name another user chose can carry terminal
// escape sequences. Thread-safe (pure functions).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace quiver {

/// `text` with every byte outside printable ASCII (0x20..0x7e) written as "\xNN", cut to
/// `max_bytes` of input (then "..." is appended). Safe to print on any terminal.
std::string Printable(std::string_view text, size_t max_bytes = 200);

}  // namespace quiver
