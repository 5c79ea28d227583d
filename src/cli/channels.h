// The channel table of `quiver ls` and `quiver top` (the channels come from discovery/):
// built once as cells, rendered plain for `ls` and fitted to the terminal, in colour, for
// `top`. Pure functions.
#pragma once

#include <string>
#include <vector>

#include "discovery/discovery.h"

namespace quiver::cli {

/// How a cell is coloured when colours are on.
enum class Tone { kPlain, kHeader, kGood, kWarn, kBad, kDim };

struct Cell {
  std::string text;
  Tone tone = Tone::kPlain;
};

/// One line of the table: its cells in column order, or (for a note such as a stale
/// channel or a subscriber's line) a name cell and one free-running cell.
struct Row {
  std::vector<Cell> cells;
  bool note = false;
};

struct TableOptions {
  /// Rates per second against `previous`, `seconds` apart.
  const std::vector<discovery::ChannelEntry>* previous = nullptr;
  double seconds = 0;
  /// A line per subscriber under each channel: its lag (queued), held samples, misses.
  bool per_subscriber = false;
};

/// The table's rows, header first.
std::vector<Row> TableRows(const std::vector<discovery::ChannelEntry>& rows,
                           const TableOptions& options = {});

/// Renders rows. `width` > 0: every line fits in that many columns (the channel names
/// shortened first, down to 8 columns, then the line cut); `colour`: ANSI colours.
std::string RenderTable(const std::vector<Row>& rows, int width = 0, bool colour = false);

/// The human table of `quiver ls`; with `previous` and `seconds`, rates per second too.
std::string FormatTable(const std::vector<discovery::ChannelEntry>& rows,
                        const std::vector<discovery::ChannelEntry>* previous = nullptr,
                        double seconds = 0);

/// What follows the table: "(no channels)", and what the '*' after a name means.
std::string TableNotes(const std::vector<discovery::ChannelEntry>& rows);

/// "1.5 MiB" style.
std::string HumanBytes(double bytes);

/// The columns `text` takes on a terminal (UTF-8 code points; every one is 1 column here).
size_t DisplayWidth(const std::string& text);

}  // namespace quiver::cli
