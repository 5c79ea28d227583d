// A line-oriented byte stream for control envelopes: a connected Unix or TCP socket, a
// socketpair, or a pair of pipe fds (stdio). Thread-compatible: one reader and one writer
// thread at most, or one thread for both.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/unique_fd.h"
#include "quiver/envelope.h"
#include "quiver/status.h"

namespace quiver::control {

/// Reads and writes '\n'-terminated lines with a bounded buffer: a line longer than the
/// limit is reported once and then skipped up to its '\n', so memory never grows past
/// about limit + one read.
class Connection {
 public:
  /// Takes ownership of a connected stream socket (or any fd used for both directions).
  static Connection FromSocket(UniqueFd fd, size_t max_line = kMaxLineBytes);
  /// Uses fds this object does not own, e.g. STDIN_FILENO and STDOUT_FILENO.
  static Connection FromBorrowedFds(int read_fd, int write_fd, size_t max_line = kMaxLineBytes);
  /// Takes ownership of two fds, one read and one written: a pair of pipes (what `quiver run`
  /// connects a core and its worker with: a round trip over pipes costs a fraction of one over
  /// a Unix socket).
  static Connection FromFds(UniqueFd read_fd, UniqueFd write_fd, size_t max_line = kMaxLineBytes);
  /// Connects to a Unix stream socket at `path`.
  static Result<Connection> ConnectUnix(std::string_view path);
  /// Connects to 127.0.0.1:`port`.
  static Result<Connection> ConnectTcp(uint16_t port);
  /// Returns two connected ends (a socketpair), e.g. to stand in for a child's stdio.
  static Result<std::pair<Connection, Connection>> Pair();

  Connection(Connection&&) noexcept = default;
  Connection& operator=(Connection&&) noexcept = default;

  /// Returns the next line without its '\n'; nullopt at a clean end of stream.
  /// Errors: kCapacityExceeded for a line longer than the limit (its remainder is skipped
  /// by the following reads; the connection stays usable); kPeerGone when the stream ends
  /// inside a line (the partial bytes are dropped); kTimeout when no byte came for
  /// `idle` (0: wait as long as it takes); kIoError for a failed read.
  Result<std::optional<std::string>> ReadLine(
      std::chrono::milliseconds idle = std::chrono::milliseconds(0));
  /// Writes `line` and a '\n', all of it (retrying short writes). Never raises SIGPIPE (on a
  /// pipe it is blocked for the write and a pending one consumed); a closed peer is
  /// kPeerGone.
  Status WriteLine(std::string_view line);
  /// How long ReadLine polls for bytes without sleeping before it blocks (0, the default: it
  /// blocks at once). A reply that comes within it skips the wake-up of a sleeping process,
  /// which on a virtual machine can cost tens of microseconds.
  void set_spin(std::chrono::nanoseconds spin) { spin_ = spin; }

  /// Shuts the socket down in both directions, waking a thread blocked in ReadLine.
  /// Harmless on pipes.
  void Shutdown();

  int read_fd() const { return read_fd_; }
  int write_fd() const { return write_fd_; }

 private:
  Connection(UniqueFd owned, int read_fd, int write_fd, size_t max_line);

  UniqueFd owned_;
  UniqueFd owned_write_;  // FromFds: the write end
  int read_fd_ = -1;
  int write_fd_ = -1;
  size_t max_line_ = kMaxLineBytes;
  std::string buffer_;        // bytes read but not yet returned; never longer than max_line_ + 1
  bool skipping_ = false;     // inside an oversized line: drop bytes up to the next '\n'
  bool write_socket_ = true;  // write_fd_ is a socket (send with MSG_NOSIGNAL); else a pipe
  std::chrono::nanoseconds spin_{0};
};

}  // namespace quiver::control
