#include "supervisor/output_relay.h"

#include <unistd.h>

#include <cerrno>

namespace quiver::supervisor {
namespace {

// A node that never ends its line still gets relayed in pieces of this size, so memory stays
// bounded whatever it writes.
constexpr size_t kMaxLine = 64 << 10;

}  // namespace

OutputRelay::OutputRelay(std::string_view node, int out_fd, size_t tail_lines)
    : prefix_("[" + std::string(node) + "] "), out_fd_(out_fd), tail_lines_(tail_lines) {}

void OutputRelay::Feed(std::string_view bytes) {
  while (!bytes.empty()) {
    const size_t nl = bytes.find('\n');
    if (nl == std::string_view::npos) {
      partial_.append(bytes);
      if (partial_.size() >= kMaxLine) {
        Emit(partial_);
        partial_.clear();
      }
      return;
    }
    if (partial_.empty()) {
      Emit(bytes.substr(0, nl));
    } else {
      partial_.append(bytes.substr(0, nl));
      Emit(partial_);
      partial_.clear();
    }
    bytes.remove_prefix(nl + 1);
  }
}

void OutputRelay::Finish() {
  if (!partial_.empty()) Emit(partial_);
  partial_.clear();
}

void OutputRelay::Emit(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (tail_lines_ > 0) {
    if (tail_.size() == tail_lines_) tail_.pop_front();
    tail_.emplace_back(line);
  }
  if (out_fd_ < 0 || broken_) return;
  // One write per line: lines of different nodes never interleave mid-line (a pipe keeps
  // writes up to PIPE_BUF whole; a terminal or file keeps each write together in practice).
  std::string text;
  text.reserve(prefix_.size() + line.size() + 1);
  text.append(prefix_).append(line).push_back('\n');
  std::string_view rest = text;
  while (!rest.empty()) {
    const ssize_t n = ::write(out_fd_, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      broken_ = true;  // EPIPE (the reader left) or worse: the supervisor goes on regardless
      return;
    }
    rest.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace quiver::supervisor
