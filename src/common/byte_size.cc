#include "common/byte_size.h"

#include <charconv>
#include <string>

namespace quiver {

Result<uint64_t> ParseByteSize(std::string_view text) {
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  uint64_t number = 0;
  auto [rest, ec] = std::from_chars(begin, end, number);
  if (ec != std::errc() || rest == begin) {
    return Status::InvalidArgument("'" + std::string(text) +
                                   "' is not a size (e.g. \"256MiB\", \"4096\")");
  }
  std::string_view unit(rest, static_cast<size_t>(end - rest));
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  struct Unit {
    std::string_view name;
    uint64_t factor;
  };
  static constexpr Unit kUnits[] = {{"", 1},
                                    {"B", 1},
                                    {"KiB", 1ull << 10},
                                    {"MiB", 1ull << 20},
                                    {"GiB", 1ull << 30},
                                    {"TiB", 1ull << 40},
                                    {"kB", 1000},
                                    {"KB", 1000},
                                    {"MB", 1000000},
                                    {"GB", 1000000000},
                                    {"TB", 1000000000000ull}};
  for (const Unit& u : kUnits) {
    if (unit != u.name) continue;
    if (number > UINT64_MAX / u.factor) {
      return Status::InvalidArgument("size '" + std::string(text) + "' is too large");
    }
    return number * u.factor;
  }
  return Status::InvalidArgument("'" + std::string(text) +
                                 "' has an unknown unit (use B, KiB, MiB, GiB, TiB, kB, "
                                 "MB, GB or TB)");
}

}  // namespace quiver
