// Bearer tokens at rest: how `quiver serve`, `quiver bridge` and Python's
// quiver.flight.connect read a token file. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "quiver/status.h"

namespace quiver {

/// `text` without surrounding spaces, tabs and line ends.
std::string TrimToken(std::string_view text);

/// The token in file `path`: its first line, surrounding whitespace trimmed. kNotFound if
/// the file cannot be read, kInvalidArgument if that line is empty.
Result<std::string> ReadTokenFile(const std::string& path);

}  // namespace quiver
