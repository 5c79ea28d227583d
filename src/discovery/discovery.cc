#include "discovery/discovery.h"

#include <nlohmann/json.hpp>

#include "supervisor/client.h"

namespace quiver::discovery {

std::string ChannelEntry::ToJson() const {
  nlohmann::json j;
  if (stale) {
    j["state"] = "stale";
  } else if (!error.empty()) {
    j["state"] = "unreadable";
    j["error"] = error;
  } else {
    j = nlohmann::json::parse(stats.ToJson());
  }
  j["name"] = name;
  if (!pipeline.empty()) j["pipeline"] = pipeline;
  return j.dump();
}

std::vector<ChannelEntry> ListChannels(std::vector<std::string>* problems) {
  std::vector<ChannelEntry> entries;
  Result<std::vector<std::string>> named = Channel::ListNamed();
  if (!named.ok() && problems != nullptr) problems->push_back(named.status().ToString());
  for (const std::string& name : named.ValueOr({})) {
    ChannelEntry entry;
    entry.name = name;
    Result<bool> stale = Channel::IsStale(name);
    if (stale.ok() && *stale) {
      entry.stale = true;
    } else {
      Result<Channel> channel = Channel::Open(name);
      if (channel.ok()) {
        entry.stats = channel->Stats();
      } else if (channel.status().code() == ErrorCode::kNotFound) {
        continue;  // went away (or went stale) between the listing and the open
      } else {
        entry.error = channel.status().ToString();
      }
    }
    entries.push_back(std::move(entry));
  }
  for (const std::string& socket : supervisor::FindSupervisors()) {
    // Ended meanwhile, or not ours (another user's socket under a supervisor's name).
    Result<std::vector<std::string>> names = supervisor::ListSupervisedChannels(socket);
    if (!names.ok()) continue;
    for (const std::string& name : *names) {
      ChannelEntry entry;
      entry.name = name;
      entry.pipeline = socket;
      Result<Channel> channel = supervisor::AttachFromSupervisor(socket, name);
      if (channel.ok()) {
        entry.stats = channel->Stats();
      } else {
        entry.error = channel.status().ToString();
      }
      entries.push_back(std::move(entry));
    }
  }
  return entries;
}

Result<Channel> OpenChannel(std::string_view name) {
  Result<Channel> named = Channel::Open(name);
  if (named.ok() || named.status().code() != ErrorCode::kNotFound) return named;
  for (const std::string& socket : supervisor::FindSupervisors()) {
    Result<std::vector<std::string>> names = supervisor::ListSupervisedChannels(socket);
    if (!names.ok()) continue;
    for (const std::string& candidate : *names) {
      if (candidate == name) return supervisor::AttachFromSupervisor(socket, name);
    }
  }
  return named.status();
}

Result<std::vector<Removal>> RemoveStale(bool dry_run, int* live) {
  QUIVER_ASSIGN_OR_RETURN(std::vector<std::string> names, Channel::ListNamed());
  std::vector<Removal> removals;
  int kept = 0;
  for (const std::string& name : names) {
    Removal removal{.path = Channel::NamedPath(name)};
    Result<bool> stale = Channel::IsStale(name);
    if (!stale.ok()) {
      removal.error = stale.status().ToString();
    } else if (!*stale) {
      ++kept;
      continue;
    } else if (!dry_run) {
      Result<bool> gone = Channel::RemoveIfStale(name);
      if (!gone.ok()) {
        removal.error = gone.status().ToString();
      } else {
        removal.removed = *gone;
        if (!*gone) ++kept;  // someone opened it meanwhile
      }
    }
    removals.push_back(std::move(removal));
  }
  if (live != nullptr) *live = kept;
  return removals;
}

}  // namespace quiver::discovery
