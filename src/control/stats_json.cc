#include "control/stats_json.h"

namespace quiver::control {

nlohmann::json StatsToJson(const ChannelStats& s) {
  nlohmann::json j;
  j["state"] = "live";
  j["capacity"] = s.capacity;
  j["bytes_in_use"] = s.bytes_in_use;
  j["samples_in_use"] = s.samples_in_use;
  j["max_samples"] = s.max_samples;
  j["overflow"] = s.overflow == OverflowPolicy::kBlock ? "block" : "drop-oldest";
  j["publisher_alive"] = s.publisher_alive;
  j["published"] = s.published;
  j["published_bytes"] = s.published_bytes;
  j["dropped"] = s.dropped;
  j["publisher_stalls"] = s.publisher_stalls;
  j["reclaimed_subscribers"] = s.reclaimed_subscribers;
  j["subscribers"] = nlohmann::json::array();
  for (const SubscriberStats& sub : s.subscribers) {
    j["subscribers"].push_back({{"slot", sub.slot},
                                {"alive", sub.alive},
                                {"received", sub.received},
                                {"received_bytes", sub.received_bytes},
                                {"missed", sub.missed},
                                {"lag", sub.queued}});
  }
  return j;
}

}  // namespace quiver::control
