// A channel's counters as JSON: the one shape of `quiver ls --json`, of the Flight gateway's
// `stats` action and flight metadata, and of Python's Channel.stats(). Pure; thread-safe.
#pragma once

#include <nlohmann/json.hpp>

#include "quiver/channel.h"

namespace quiver::channel {

/// {"state": "live", "name": ..., "capacity": ..., "overflow": "block", ...,
/// "subscribers": [...]}. The caller adds anything else it knows.
nlohmann::json StatsToJson(const ChannelStats& stats);

}  // namespace quiver::channel
