#include "common/duration.h"

#include <cstdio>

namespace quiver {

std::string FormatDuration(std::chrono::nanoseconds d) {
  const auto ns = static_cast<double>(d.count());
  char text[48];
  if (ns >= 1e9) {
    std::snprintf(text, sizeof(text), "%.1f s", ns / 1e9);
  } else if (ns >= 1e6) {
    std::snprintf(text, sizeof(text), "%.0f ms", ns / 1e6);
  } else if (ns >= 1e3) {
    std::snprintf(text, sizeof(text), "%.0f us", ns / 1e3);
  } else {
    std::snprintf(text, sizeof(text), "%.0f ns", ns);
  }
  return text;
}

}  // namespace quiver
