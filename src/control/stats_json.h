// A channel's counters as JSON: the shape of `quiver ls --json` and of the Flight gateway's
// `stats` action and flight metadata. Pure function; thread-safe.
#pragma once

#include <nlohmann/json.hpp>

#include "quiver/channel.h"

namespace quiver::control {

/// {"state": "live", "capacity": ..., "overflow": "block", ..., "subscribers": [...]}.
/// The caller adds "name" and anything else it knows.
nlohmann::json StatsToJson(const ChannelStats& stats);

}  // namespace quiver::control
