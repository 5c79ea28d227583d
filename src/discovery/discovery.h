// Channel discovery: every channel this user can reach, named ones (in its private channel
// directory) and those of its running pipelines (memfds, reached through their supervisors).
// The one list behind `quiver ls`/`top`/`clean`, the Flight gateway and Python's
// quiver.list_channels(). Reads shared counters only; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "quiver/channel.h"
#include "quiver/status.h"

namespace quiver::discovery {

/// One channel found.
struct ChannelEntry {
  std::string name;
  /// The supervisor socket of the running pipeline whose (memfd) channel this is; empty for
  /// a named channel.
  std::string pipeline;
  bool stale = false;  ///< named, and every process that had it open died (RemoveStale)
  std::string error;   ///< why it could not be read (not a channel, say); empty if it could
  ChannelStats stats;  ///< when neither stale nor unreadable

  /// {"name": ..., "pipeline": ..., "state": "live" | "stale" | "unreadable", ...stats}: the
  /// one JSON shape of `quiver ls --json` and Python's list_channels().
  std::string ToJson() const;
};

/// Every named channel of this user, sorted by name, then the channels of this user's
/// running pipelines. A supervisor socket of another user is neither asked nor believed.
/// What could not be looked at at all (a channel directory another user squats, say) goes
/// to `problems`, one line each, if given.
std::vector<ChannelEntry> ListChannels(std::vector<std::string>* problems = nullptr);

/// The channel called `name`: a named channel, else a running pipeline's channel of that
/// name (attached through its supervisor). kNotFound if there is neither.
Result<Channel> OpenChannel(std::string_view name);

/// What RemoveStale did with one stale named channel.
struct Removal {
  std::string path;
  bool removed = false;  ///< false: `dry_run`, or it came back to life meanwhile
  std::string error;     ///< why it could not be looked at or removed
};

/// Removes this user's stale named channels (every process that had one open died), never a
/// live one; with `dry_run`, only says which. `live` (if given) counts the ones left alone.
Result<std::vector<Removal>> RemoveStale(bool dry_run, int* live = nullptr);

}  // namespace quiver::discovery
