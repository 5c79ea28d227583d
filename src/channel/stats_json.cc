// ChannelStats::ToJson: a channel's counters in the one JSON shape every tool shows.
#include <nlohmann/json.hpp>

#include "quiver/channel.h"

namespace quiver {

std::string ChannelStats::ToJson() const {
  const ChannelStats& s = *this;
  nlohmann::json j;
  j["state"] = "live";
  j["name"] = s.name;
  j["capacity"] = s.capacity;
  j["bytes_in_use"] = s.bytes_in_use;
  j["samples_in_use"] = s.samples_in_use;
  j["max_samples"] = s.max_samples;
  j["max_subscribers"] = s.max_subscribers;
  j["overflow"] = OverflowPolicyName(s.overflow);
  j["publisher_alive"] = s.publisher_alive;
  j["published"] = s.published;
  j["published_bytes"] = s.published_bytes;
  j["dropped"] = s.dropped;
  j["publisher_stalls"] = s.publisher_stalls;
  j["publisher_waiting_s"] = static_cast<double>(s.publisher_waiting.count()) / 1e3;
  j["stall_timeout_s"] = s.stall_timeout
                             ? nlohmann::json(static_cast<double>(s.stall_timeout->count()) / 1e3)
                             : nlohmann::json(nullptr);
  j["reclaimed_subscribers"] = s.reclaimed_subscribers;
  j["evicted_subscribers"] = s.evicted_subscribers;
  j["subscribers"] = nlohmann::json::array();
  for (const SubscriberStats& sub : s.subscribers) {
    j["subscribers"].push_back(
        {{"slot", sub.slot},
         {"alive", sub.alive},
         {"received", sub.received},
         {"received_bytes", sub.received_bytes},
         {"missed", sub.missed},
         {"queued", sub.queued},
         {"held", sub.held},
         {"evicted_after_s",
          sub.evicted_after.count() != 0
              ? nlohmann::json(static_cast<double>(sub.evicted_after.count()) / 1e3)
              : nlohmann::json(nullptr)}});
  }
  return j.dump();
}

}  // namespace quiver
