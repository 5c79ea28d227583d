#include "cli/channels.h"

#include <algorithm>
#include <cstdio>
#include <map>

namespace quiver::cli {

std::string HumanBytes(double bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (bytes >= 1024 && unit < 4) {
    bytes /= 1024;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), unit == 0 ? "%.0f %s" : "%.1f %s", bytes, kUnits[unit]);
  return buf;
}

std::string FormatTable(const std::vector<discovery::ChannelEntry>& rows,
                        const std::vector<discovery::ChannelEntry>* previous, double seconds) {
  std::map<std::string, const ChannelStats*> before;
  if (previous != nullptr) {
    for (const discovery::ChannelEntry& r : *previous) before[r.name] = &r.stats;
  }
  const bool rates = previous != nullptr && seconds > 0;
  std::string out;
  char line[512];
  // QUEUED: the most samples any subscriber has not received yet (its stats' "queued", the
  // name Python's stats() and `ls --json` use).
  std::snprintf(line, sizeof(line), "%-24s %10s %6s %9s %-10s %4s %6s %12s %9s %7s %7s%s\n",
                "CHANNEL", "CAPACITY", "FILL", "SAMPLES", "PUB", "SUBS", "QUEUED", "PUBLISHED",
                "DROPPED", "STALLS", "EVICTED", rates ? "      MSG/S       MB/S" : "");
  out += line;
  for (const discovery::ChannelEntry& r : rows) {
    if (r.stale) {
      std::snprintf(line, sizeof(line),
                    "%-24s  stale: every owner died (quiver clean removes it)\n", r.name.c_str());
      out += line;
      continue;
    }
    if (!r.error.empty()) {
      std::snprintf(line, sizeof(line), "%-24s  unreadable: %s\n", r.name.c_str(), r.error.c_str());
      out += line;
      continue;
    }
    const ChannelStats& s = r.stats;
    uint64_t queued = 0;
    for (const SubscriberStats& sub : s.subscribers) queued = std::max(queued, sub.queued);
    const double fill =
        s.capacity ? 100.0 * static_cast<double>(s.bytes_in_use) / static_cast<double>(s.capacity)
                   : 0;
    const std::string shown = r.pipeline.empty() ? r.name : r.name + " *";
    // A publisher blocked for room right now says for how long: a stalled subscriber.
    char publisher[16];
    if (!s.publisher_alive) {
      std::snprintf(publisher, sizeof(publisher), "none");
    } else if (s.publisher_waiting.count() >= 100) {
      std::snprintf(publisher, sizeof(publisher), "wait %.1fs",
                    static_cast<double>(s.publisher_waiting.count()) / 1e3);
    } else {
      std::snprintf(publisher, sizeof(publisher), "alive");
    }
    std::snprintf(
        line, sizeof(line), "%-24s %10s %5.1f%% %4u/%-4u %-10s %4zu %6llu %12llu %9llu %7llu %7llu",
        shown.c_str(), HumanBytes(static_cast<double>(s.capacity)).c_str(), fill, s.samples_in_use,
        s.max_samples, publisher, s.subscribers.size(), static_cast<unsigned long long>(queued),
        static_cast<unsigned long long>(s.published), static_cast<unsigned long long>(s.dropped),
        static_cast<unsigned long long>(s.publisher_stalls),
        static_cast<unsigned long long>(s.evicted_subscribers));
    out += line;
    if (rates) {
      auto it = before.find(r.name);
      double msgs = 0, mbs = 0;
      if (it != before.end()) {
        msgs = static_cast<double>(s.published - it->second->published) / seconds;
        mbs = static_cast<double>(s.published_bytes - it->second->published_bytes) / seconds / 1e6;
      }
      std::snprintf(line, sizeof(line), " %10.0f %10.1f", msgs, mbs);
      out += line;
    }
    out += "\n";
  }
  if (rows.empty()) out += "(no channels)\n";
  for (const discovery::ChannelEntry& r : rows) {
    if (!r.pipeline.empty()) {
      out += "* a running pipeline's channel (reached through its supervisor)\n";
      break;
    }
  }
  return out;
}

}  // namespace quiver::cli
