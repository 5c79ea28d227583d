#include "pingpong/cases.h"

#include <algorithm>
#include <cstdlib>

namespace quiver::bench::pingpong {

std::string_view KindName(Kind kind) {
  switch (kind) {
    case Kind::kFutex:
      return "futex";
    case Kind::kSpin:
      return "spin";
    case Kind::kUds:
      return "uds";
    case Kind::kPipe:
      return "pipe";
    case Kind::kQuiverBlocking:
      return "quiver-blocking";
    case Kind::kQuiverDefault:
      return "quiver-default";
    case Kind::kQuiverSpin:
      return "quiver-spin";
    case Kind::kQuiverSpinOwnMethod:
      return "quiver-spin-own-method";
  }
  return "?";
}

std::string SizeName(size_t size) {
  if (size >= (1 << 20) && size % (1 << 20) == 0) return std::to_string(size >> 20) + " MiB";
  if (size >= (1 << 10) && size % (1 << 10) == 0) return std::to_string(size >> 10) + " KiB";
  return std::to_string(size) + " B";
}

long EnvLong(const char* name, long fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const long parsed = std::strtol(v, &end, 10);
  return end != v && *end == '\0' && parsed > 0 ? parsed : fallback;
}

// Larger payloads take longer per round trip; fewer of them keep the run short while p99.9
// still rests on at least a couple of samples. At 8 MiB a pipe round trip takes 5 to 16 ms
// here, so those cases run a hundredth of the base: their p99.9 is close to the maximum.
int64_t RoundsFor(size_t size) {
  const long base = EnvLong("QUIVER_BENCH_ROUNDS", 20000);
  long rounds = base;
  if (size > (1 << 20)) {
    rounds = base / 100;
  } else if (size > (64 << 10)) {
    rounds = base / 10;
  } else if (size > 4096) {
    rounds = base / 2;
  }
  return std::max<long>(rounds, 100);
}

}  // namespace quiver::bench::pingpong
