// Byte sizes as people write them ("256MiB", "4096", "3 MB"): the one grammar of pipeline
// files, command-line options and the Python package. Thread-safe (pure).
#pragma once

#include <cstdint>
#include <string_view>

#include "quiver/status.h"

namespace quiver {

/// An integer, optionally followed (after spaces) by a unit: B, KiB, MiB, GiB, TiB (powers of
/// 1024) or kB/KB, MB, GB, TB (powers of 1000). kInvalidArgument saying what is wrong:
/// not a number, an unknown unit, or too large for 64 bits.
Result<uint64_t> ParseByteSize(std::string_view text);

}  // namespace quiver
