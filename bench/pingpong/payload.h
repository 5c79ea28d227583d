// The payload every sender writes and every receiver checks: `size` bytes of the sequence
// number's low byte, the sequence number itself in the first 8. Pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>

namespace quiver::bench::pingpong {

// Inline, like everything on the measured path of a message: the transports live in other
// files than this, and a call the compiler cannot see through would be timed too.

// Writes every byte of the message, as a producer of `size` fresh bytes would.
inline void FillPayload(std::byte* p, size_t size, uint64_t seq) {
  std::memset(p, static_cast<int>(seq & 0xff), size);
  std::memcpy(p, &seq, sizeof(seq));
}

// Returns the message's sequence number, or nullopt if its last byte disagrees with it.
inline std::optional<uint64_t> CheckPayload(const std::byte* p, size_t size) {
  uint64_t seq = 0;
  std::memcpy(&seq, p, sizeof(seq));
  if (size > sizeof(seq) && p[size - 1] != std::byte(static_cast<uint8_t>(seq & 0xff))) {
    return std::nullopt;
  }
  return seq;
}

}  // namespace quiver::bench::pingpong
