// The cases of the ping-pong benchmark: its transports and payload sizes, their names, and
// how many round trips each runs. Plain values and pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace quiver::bench::pingpong {

constexpr size_t kSizes[] = {64, 3840, 64 << 10, 1 << 20, 8 << 20};

// kQuiverSpinOwnMethod is kQuiverSpin measured as iceoryx2's own benchmark measures itself
// (payload untouched, next sample loaned ahead): the like-for-like peer of the Rust
// iceoryx2-spin-own-method (bench/iceoryx2_peer).
enum class Kind {
  kFutex,
  kSpin,
  kUds,
  kPipe,
  kQuiverBlocking,
  kQuiverDefault,
  kQuiverSpin,
  kQuiverSpinOwnMethod
};
constexpr Kind kKinds[] = {
    Kind::kFutex,          Kind::kSpin,          Kind::kUds,        Kind::kPipe,
    Kind::kQuiverBlocking, Kind::kQuiverDefault, Kind::kQuiverSpin, Kind::kQuiverSpinOwnMethod};

// Returns the transport's name in benchmark names and tables: "futex", "quiver-spin", ...
std::string_view KindName(Kind kind);

// Returns a payload size as the tables print it: "64 B", "64 KiB", "8 MiB".
std::string SizeName(size_t size);

// Returns the positive integer in the environment variable `name`, or `fallback` if it is
// unset or anything else.
long EnvLong(const char* name, long fallback);

// Returns the round trips of one case with a `size`-byte payload (QUIVER_BENCH_ROUNDS).
int64_t RoundsFor(size_t size);

}  // namespace quiver::bench::pingpong
