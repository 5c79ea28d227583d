// The human table of `quiver ls` and `quiver top` (the channels come from discovery/).
// Pure functions.
#pragma once

#include <string>
#include <vector>

#include "discovery/discovery.h"

namespace quiver::cli {

/// The human table of `quiver ls`; with `previous` and `seconds`, rates per second too.
std::string FormatTable(const std::vector<discovery::ChannelEntry>& rows,
                        const std::vector<discovery::ChannelEntry>* previous = nullptr,
                        double seconds = 0);

/// "1.5 MiB" style.
std::string HumanBytes(double bytes);

}  // namespace quiver::cli
