// Unix stream sockets that carry file descriptors (SCM_RIGHTS): the supervisor's late-joiner
// socket and its clients. Linux-only; each function is thread-safe on distinct sockets.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "common/unique_fd.h"
#include "quiver/status.h"

namespace quiver::supervisor {

/// A socket address: "@name" is Linux's abstract namespace (nothing in the file system, so
/// nothing to leak or clean up), anything else a file-system path.
/// Listens on `address` (non-blocking, close-on-exec, backlog 64).
Result<UniqueFd> ListenUnix(std::string_view address);

/// A point in time after which a client call gives up (kTimeout); nullopt: never.
using Deadline = std::optional<std::chrono::steady_clock::time_point>;

/// Connects to `address` (close-on-exec). The connect never waits: a listener whose queue is
/// full gives kBusy. With a deadline, later sends and receives on the socket time out there.
Result<UniqueFd> ConnectUnix(std::string_view address, Deadline deadline = std::nullopt);

/// The effective uid of the process at the other end of a connected socket (SO_PEERCRED).
Result<uid_t> PeerUid(int socket);

/// Sends `bytes` in one message with `fd` attached (no fd if `fd` < 0).
Status SendWithFd(int socket, std::string_view bytes, int fd);

/// A line received with the fd that came with it (invalid if none did).
struct LineWithFd {
  std::string line;  ///< without the '\n'
  UniqueFd fd;
};

/// Reads up to and including '\n' (at most `max_bytes`), keeping the first fd that arrives
/// (close-on-exec); any further fds are closed. Reads one byte at a time, so it never consumes
/// anything past the line. kPeerGone if the peer closes first; kTimeout past `deadline`.
Result<LineWithFd> ReceiveLineWithFd(int socket, size_t max_bytes,
                                     Deadline deadline = std::nullopt);

}  // namespace quiver::supervisor
