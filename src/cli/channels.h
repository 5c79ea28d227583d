// What `quiver ls`, `quiver top` and `quiver clean` know about the channels on this machine.
// Reads shared counters only; never changes a live channel.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "quiver/channel.h"

namespace quiver::cli {

struct ChannelRow {
  std::string name;
  bool stale = false;  // every owner died; `quiver clean` removes it
  std::string error;   // it could not be read (e.g. not a channel)
  std::string pipeline;  // the supervisor socket of a pipeline's (memfd) channel; "" if named
  ChannelStats stats;
};

/// Every named channel of this user, sorted by name, then the channels of this user's
/// running pipelines (memfds reached through their supervisors). What could not be looked
/// at (a channel directory another user squats, say) goes to `problems`, one line each.
std::vector<ChannelRow> ReadChannels(std::vector<std::string>* problems = nullptr);

/// One channel as JSON (the `--json` shape of `quiver ls`).
nlohmann::json ToJson(const ChannelRow& row);

/// The human table of `quiver ls`; with `previous` and `seconds`, rates per second too.
std::string FormatTable(const std::vector<ChannelRow>& rows,
                        const std::vector<ChannelRow>* previous = nullptr, double seconds = 0);

/// "1.5 MiB" style.
std::string HumanBytes(double bytes);

}  // namespace quiver::cli
