// Relays one output stream of a node to the supervisor's own, one whole line at a time,
// prefixed with the node's name ("[producer] 10 batches sent"), and keeps its last lines
// for the failure report. Thread-compatible.
#pragma once

#include <cstddef>
#include <deque>
#include <string>
#include <string_view>

namespace quiver::supervisor {

class OutputRelay {
 public:
  /// Writes to `out_fd` (not owned); `out_fd` < 0 discards. Keeps the last `tail_lines`.
  OutputRelay(std::string_view node, int out_fd, size_t tail_lines);

  /// Takes bytes as they come; writes every line they complete.
  void Feed(std::string_view bytes);
  /// The stream ended: writes a last line that has no '\n'.
  void Finish();
  /// The last lines (oldest first), without prefix or '\n'.
  const std::deque<std::string>& tail() const { return tail_; }

 private:
  void Emit(std::string_view line);

  std::string prefix_;
  int out_fd_;
  size_t tail_lines_;
  std::string partial_;
  std::deque<std::string> tail_;
  bool broken_ = false;  // the output is gone (EPIPE): keep the tail, stop writing
};

}  // namespace quiver::supervisor
