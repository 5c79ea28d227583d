// Relays one output stream of a node to the supervisor's own, one whole line at a time,
// prefixed with the node's name ("[producer] 10 batches sent"), and keeps its last lines
// for the failure report. Writing never blocks the supervisor: lines wait in a bounded
// queue (OutputSink) until the output takes them, and are dropped, and counted, when a
// reader that is slow or never reads lets it fill. Thread-compatible.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <string>
#include <string_view>

namespace quiver::supervisor {

/// One output of the supervisor (its stdout or stderr), shared by the relays that write to
/// it: lines queue here and go out as the fd can take them without blocking.
class OutputSink {
 public:
  /// Writes to `fd` (not owned; < 0 discards everything); queues at most `max_bytes`.
  explicit OutputSink(int fd, size_t max_bytes = size_t{4} << 20);

  /// Queues `text` (whole lines); drops it, counting its lines, if the queue is full or the
  /// output is gone (EPIPE).
  void Push(std::string text);
  /// Writes what the fd takes without blocking, waiting at most `wait` in all for it to take
  /// more (0: not at all). Writes pieces of at most PIPE_BUF bytes, each after poll says the
  /// fd has room, so no write waits for a reader.
  void Flush(std::chrono::milliseconds wait = std::chrono::milliseconds(0));
  /// Drops what is still queued (counting it) and returns the lines dropped in all.
  size_t Abandon();

  bool empty() const { return queue_.empty(); }
  size_t dropped_lines() const { return dropped_lines_; }

 private:
  int fd_;
  size_t max_bytes_;
  std::deque<std::string> queue_;
  size_t front_written_ = 0;  // bytes of queue_.front() already written
  size_t bytes_ = 0;          // queued bytes not yet written
  size_t dropped_lines_ = 0;
  bool broken_ = false;  // the output is gone (EPIPE)
};

class OutputRelay {
 public:
  /// Writes to `sink` (not owned; nullptr discards). Keeps the last `tail_lines`.
  OutputRelay(std::string_view node, OutputSink* sink, size_t tail_lines);

  /// Takes bytes as they come; writes every line they complete.
  void Feed(std::string_view bytes);
  /// The stream ended: writes a last line that has no '\n'.
  void Finish();
  /// The last lines (oldest first), without prefix or '\n'.
  const std::deque<std::string>& tail() const { return tail_; }

 private:
  void Emit(std::string_view line);

  std::string prefix_;
  OutputSink* sink_;
  size_t tail_lines_;
  std::string partial_;
  std::deque<std::string> tail_;
};

}  // namespace quiver::supervisor
