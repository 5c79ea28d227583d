#include "cli/channels.h"

#include <algorithm>
#include <cstdio>
#include <map>

namespace quiver::cli {
namespace {

// The columns after the name: width, and whether the text is left-aligned.
struct Column {
  const char* title;
  int width;
  bool left;
};
constexpr Column kColumns[] = {
    {"CAPACITY", 10, false}, {"FILL", 6, false},    {"SAMPLES", 9, false},    {"PUB", 10, true},
    {"SUBS", 4, false},      {"QUEUED", 6, false},  {"PUBLISHED", 12, false}, {"DROPPED", 9, false},
    {"STALLS", 7, false},    {"EVICTED", 7, false}, {"MSG/S", 10, false},     {"MB/S", 10, false},
};
constexpr size_t kNameWidth = 24;

std::string Format(const char* format, auto... args) {
  char buf[128];
  std::snprintf(buf, sizeof(buf), format, args...);
  return buf;
}

// The first `columns` code points of `text`.
std::string Cut(const std::string& text, size_t columns) {
  size_t seen = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80 && seen++ == columns) {
      return text.substr(0, i);
    }
  }
  return text;
}

// `name` in `width` columns: as is if it fits, else its head and tail around a '…'.
std::string Shorten(const std::string& name, size_t width) {
  const size_t have = DisplayWidth(name);
  if (have <= width || width < 3) return name;
  const size_t head = (width - 1) / 2, tail = width - 1 - head;
  std::string end;
  size_t skip = have - tail, seen = 0;
  for (size_t i = 0; i < name.size(); ++i) {
    if ((static_cast<unsigned char>(name[i]) & 0xC0) != 0x80 && seen++ == skip) {
      end = name.substr(i);
      break;
    }
  }
  return Cut(name, head) + "…" + end;
}

std::string Pad(const std::string& text, size_t width, bool left) {
  const size_t have = DisplayWidth(text);
  if (have >= width) return text;
  const std::string fill(width - have, ' ');
  return left ? text + fill : fill + text;
}

const char* Colour(Tone tone) {
  switch (tone) {
    case Tone::kHeader:
      return "\033[1m";
    case Tone::kGood:
      return "\033[32m";
    case Tone::kWarn:
      return "\033[33m";
    case Tone::kBad:
      return "\033[31m";
    case Tone::kDim:
      return "\033[2m";
    case Tone::kPlain:
      break;
  }
  return "";
}

}  // namespace

size_t DisplayWidth(const std::string& text) {
  return static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

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

std::vector<Row> TableRows(const std::vector<discovery::ChannelEntry>& rows,
                           const TableOptions& options) {
  std::map<std::string, const ChannelStats*> before;
  if (options.previous != nullptr) {
    for (const discovery::ChannelEntry& r : *options.previous) before[r.name] = &r.stats;
  }
  const bool rates = options.previous != nullptr && options.seconds > 0;
  const size_t columns = rates ? std::size(kColumns) : std::size(kColumns) - 2;
  std::vector<Row> out;
  Row header;
  header.cells.push_back({"CHANNEL", Tone::kHeader});
  for (size_t c = 0; c < columns; ++c) header.cells.push_back({kColumns[c].title, Tone::kHeader});
  out.push_back(std::move(header));
  for (const discovery::ChannelEntry& r : rows) {
    if (r.stale || !r.error.empty()) {
      out.push_back({{{r.name, Tone::kBad},
                      {r.stale ? "stale: every owner died (quiver clean removes it)"
                               : "unreadable: " + r.error,
                       Tone::kBad}},
                     true});
      continue;
    }
    const ChannelStats& s = r.stats;
    // QUEUED: the most samples any subscriber has not received yet (its stats' "queued", the
    // name Python's stats() and `ls --json` use).
    uint64_t queued = 0;
    for (const SubscriberStats& sub : s.subscribers) queued = std::max(queued, sub.queued);
    const double fill =
        s.capacity ? 100.0 * static_cast<double>(s.bytes_in_use) / static_cast<double>(s.capacity)
                   : 0;
    // A publisher blocked for room right now says for how long: a stalled subscriber.
    Cell publisher{"alive", Tone::kGood};
    if (!s.publisher_alive) {
      publisher = {"none", Tone::kDim};
    } else if (s.publisher_waiting.count() >= 100) {
      publisher = {Format("wait %.1fs", static_cast<double>(s.publisher_waiting.count()) / 1e3),
                   Tone::kBad};
    }
    Row row;
    row.cells = {
        {r.pipeline.empty() ? r.name : r.name + " *"},
        {HumanBytes(static_cast<double>(s.capacity))},
        {Format("%.1f%%", fill), fill >= 90   ? Tone::kBad
                                 : fill >= 60 ? Tone::kWarn
                                              : Tone::kPlain},
        {Format("%4u/%-4u", s.samples_in_use, s.max_samples)},
        publisher,
        {std::to_string(s.subscribers.size())},
        {std::to_string(queued), queued > 0 ? Tone::kWarn : Tone::kPlain},
        {std::to_string(s.published)},
        {std::to_string(s.dropped), s.dropped > 0 ? Tone::kWarn : Tone::kPlain},
        {std::to_string(s.publisher_stalls)},
        {std::to_string(s.evicted_subscribers),
         s.evicted_subscribers > 0 ? Tone::kBad : Tone::kPlain},
    };
    const ChannelStats* earlier = nullptr;
    if (auto it = before.find(r.name); it != before.end()) earlier = it->second;
    if (rates) {
      double msgs = 0, mbs = 0;
      if (earlier != nullptr) {
        msgs = static_cast<double>(s.published - earlier->published) / options.seconds;
        mbs = static_cast<double>(s.published_bytes - earlier->published_bytes) / options.seconds /
              1e6;
      }
      row.cells.push_back({Format("%.0f", msgs)});
      row.cells.push_back({Format("%.1f", mbs)});
    }
    out.push_back(std::move(row));
    if (!options.per_subscriber) continue;
    for (const SubscriberStats& sub : s.subscribers) {
      std::string line = "queued " + std::to_string(sub.queued) + "  held " +
                         std::to_string(sub.held) + "  missed " + std::to_string(sub.missed) +
                         "  received " + std::to_string(sub.received);
      if (rates && earlier != nullptr) {
        for (const SubscriberStats& old : earlier->subscribers) {
          if (old.slot == sub.slot && sub.received >= old.received) {
            line += Format("  %.0f msg/s",
                           static_cast<double>(sub.received - old.received) / options.seconds);
          }
        }
      }
      const Tone tone = !sub.alive ? Tone::kBad : sub.queued > 0 ? Tone::kWarn : Tone::kDim;
      out.push_back({{{"  └ slot " + std::to_string(sub.slot) + (sub.alive ? "" : " (dead)"), tone},
                      {line, tone}},
                     true});
    }
  }
  return out;
}

std::string RenderTable(const std::vector<Row>& rows, int width, bool colour) {
  size_t columns = 0;  // after the name
  size_t longest = 0;  // the longest channel name
  for (const Row& row : rows) {
    if (row.note) continue;
    columns = std::max(columns, row.cells.size() - 1);
    if (&row != &rows.front()) longest = std::max(longest, DisplayWidth(row.cells[0].text));
  }
  std::vector<bool> shown(columns, true);
  size_t name_width = kNameWidth;
  if (width > 0) {
    // Fit: the names whole if there is room, else as long as the room (at least 32), then
    // drop the columns that matter least in a live view, then shorten the names down to 12;
    // whatever is still too long is cut.
    name_width = std::max<size_t>(longest, 7);
    auto needed = [&] {
      size_t w = name_width;
      for (size_t c = 0; c < columns; ++c) {
        if (shown[c]) w += 1 + static_cast<size_t>(kColumns[c].width);
      }
      return w;
    };
    if (const size_t w = static_cast<size_t>(width); needed() > w) {
      const size_t rest = needed() - name_width;
      name_width = std::max(std::min<size_t>(longest, 32), w > rest ? w - rest : 0);
    }
    for (const char* title :
         {"EVICTED", "STALLS", "DROPPED", "CAPACITY", "PUBLISHED", "SAMPLES", "MB/S", "SUBS"}) {
      if (needed() <= static_cast<size_t>(width)) break;
      for (size_t c = 0; c < columns; ++c) {
        if (std::string_view(kColumns[c].title) == title) shown[c] = false;
      }
    }
    if (needed() > static_cast<size_t>(width)) {
      name_width = std::max<size_t>(12, name_width - (needed() - static_cast<size_t>(width)));
    }
  }
  std::string out;
  for (const Row& row : rows) {
    // Each cell's text, and its colour.
    std::vector<std::pair<std::string, Tone>> parts;
    for (size_t c = 0; c < row.cells.size(); ++c) {
      const Cell& cell = row.cells[c];
      std::string text;
      if (c == 0) {
        // A note's first cell (a subscriber's slot) is never shortened: the line is cut.
        const std::string name =
            width > 0 && !row.note ? Shorten(cell.text, name_width) : cell.text;
        text = row.cells.size() == 1 ? name : Pad(name, name_width, true);
      } else if (row.note) {
        text = " " + cell.text;
      } else if (shown[c - 1]) {
        text =
            " " + Pad(cell.text, static_cast<size_t>(kColumns[c - 1].width), kColumns[c - 1].left);
      } else {
        continue;
      }
      parts.emplace_back(std::move(text), cell.tone);
    }
    size_t used = 0;
    std::string line;
    for (auto& [text, tone] : parts) {
      std::string part = text;
      if (width > 0) {
        if (used >= static_cast<size_t>(width)) break;
        part = Cut(text, static_cast<size_t>(width) - used);
      }
      used += DisplayWidth(part);
      if (colour && tone != Tone::kPlain) {
        // Colour the text, not the padding around it.
        const size_t lead = part.find_first_not_of(' ');
        const size_t last = part.find_last_not_of(' ');
        if (lead == std::string::npos) {
          line += part;
        } else {
          line += part.substr(0, lead) + Colour(tone) + part.substr(lead, last + 1 - lead) +
                  "\033[0m" + part.substr(last + 1);
        }
      } else {
        line += part;
      }
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string FormatTable(const std::vector<discovery::ChannelEntry>& rows,
                        const std::vector<discovery::ChannelEntry>* previous, double seconds) {
  return RenderTable(TableRows(rows, {.previous = previous, .seconds = seconds})) +
         TableNotes(rows);
}

std::string TableNotes(const std::vector<discovery::ChannelEntry>& rows) {
  std::string out;
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
