// Durations in messages people read: "2.0 s", "150 ms", "20 us". Thread-safe (pure).
#pragma once

#include <chrono>
#include <string>

namespace quiver {

/// `d` in the largest unit that keeps it readable: "2.0 s" (from 1 s), "150 ms", "20 us",
/// "300 ns".
std::string FormatDuration(std::chrono::nanoseconds d);

}  // namespace quiver
