// `quiver top`: the channel table, refreshed, with rates and a line per subscriber (its lag),
// fitted to the terminal as htop is: names shortened rather than lines wrapped, colours
// where the terminal has them (none with NO_COLOR, TERM=dumb or when not a terminal), `q`
// (or Ctrl-C) quits.
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>

#include "cli/channels.h"
#include "cli/commands.h"
#include "discovery/discovery.h"

namespace quiver::cli {
namespace {

volatile std::sig_atomic_t g_interrupted = 0;

// The terminal's width, or 0 when stdout is not a terminal (then nothing is cut).
int TerminalWidth() {
  winsize size{};
  if (::isatty(STDOUT_FILENO) && ::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 &&
      size.ws_col > 0) {
    return size.ws_col;
  }
  return 0;
}

bool UseColour() {
  if (!::isatty(STDOUT_FILENO)) return false;
  if (const char* no = std::getenv("NO_COLOR"); no != nullptr && *no != '\0') return false;
  const char* term = std::getenv("TERM");
  return term == nullptr || std::string(term) != "dumb";
}

// Keys one at a time without echo while `top` runs (stdin a terminal); restored after.
class RawKeys {
 public:
  RawKeys() {
    if (!::isatty(STDIN_FILENO) || ::tcgetattr(STDIN_FILENO, &saved_) != 0) return;
    termios raw = saved_;
    raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    active_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
  }
  ~RawKeys() {
    if (active_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  RawKeys(const RawKeys&) = delete;
  RawKeys& operator=(const RawKeys&) = delete;

  /// Waits up to `timeout` for a key; true if it was `q`.
  bool QuitWithin(std::chrono::milliseconds timeout) {
    if (!active_) {
      ::poll(nullptr, 0, static_cast<int>(timeout.count()));
      return false;
    }
    pollfd in{STDIN_FILENO, POLLIN, 0};
    if (::poll(&in, 1, static_cast<int>(timeout.count())) <= 0) return false;
    char key = 0;
    if (::read(STDIN_FILENO, &key, 1) != 1) return false;
    return key == 'q' || key == 'Q';
  }

 private:
  termios saved_{};
  bool active_ = false;
};

}  // namespace

int Top(double interval, int iterations) {
  std::signal(SIGINT, [](int) { g_interrupted = 1; });
  const bool tty = ::isatty(STDOUT_FILENO);
  const bool colour = UseColour();
  std::vector<std::string> problems;
  std::vector<discovery::ChannelEntry> previous = discovery::ListChannels(&problems);
  for (const std::string& problem : problems) std::cerr << "quiver: " << problem << "\n";
  RawKeys keys;
  if (tty) std::cout << "\033[?25l";  // no cursor while we redraw
  auto last = std::chrono::steady_clock::now();
  bool quit = false;
  for (int i = 0; !quit && (iterations <= 0 || i < iterations); ++i) {
    const auto due = last + std::chrono::duration<double>(interval);
    while (!g_interrupted && !quit && std::chrono::steady_clock::now() < due) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          due - std::chrono::steady_clock::now());
      quit = keys.QuitWithin(std::min(left, std::chrono::milliseconds(50)));
    }
    if (g_interrupted || quit) break;
    std::vector<discovery::ChannelEntry> rows = discovery::ListChannels();
    const auto now = std::chrono::steady_clock::now();
    const double seconds = std::chrono::duration<double>(now - last).count();
    const int width = TerminalWidth();
    std::string title =
        "quiver top: every " + std::to_string(interval).substr(0, 4) + " s; q or Ctrl-C quits";
    if (width > 0 && static_cast<int>(title.size()) > width)
      title.resize(static_cast<size_t>(width));
    std::string screen = tty ? "\033[H\033[2J" : "";  // home and clear, like top(1)
    screen += (colour ? "\033[1m" + title + "\033[0m" : title) + "\n\n";
    screen += RenderTable(
        TableRows(rows, {.previous = &previous, .seconds = seconds, .per_subscriber = true}), width,
        colour);
    screen += TableNotes(rows);
    std::cout << screen << std::flush;
    previous = std::move(rows);
    last = now;
  }
  if (tty) std::cout << "\033[?25h" << std::flush;
  return 0;
}

}  // namespace quiver::cli
