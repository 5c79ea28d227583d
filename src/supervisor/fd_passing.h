// Unix stream sockets that carry file descriptors (SCM_RIGHTS): the supervisor's late-joiner
// socket and its clients. Linux-only; each function is thread-safe on distinct sockets.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "quiver/status.h"
#include "shm/unique_fd.h"

namespace quiver::supervisor {

/// A socket address: "@name" is Linux's abstract namespace (nothing in the file system, so
/// nothing to leak or clean up), anything else a file-system path.
/// Listens on `address` (non-blocking, close-on-exec, backlog 64).
Result<shm::UniqueFd> ListenUnix(std::string_view address);

/// Connects to `address` (blocking, close-on-exec).
Result<shm::UniqueFd> ConnectUnix(std::string_view address);

/// The effective uid of the process at the other end of a connected socket (SO_PEERCRED).
Result<uid_t> PeerUid(int socket);

/// Sends `bytes` in one message with `fd` attached (no fd if `fd` < 0).
Status SendWithFd(int socket, std::string_view bytes, int fd);

/// A line received with the fd that came with it (invalid if none did).
struct LineWithFd {
  std::string line;  ///< without the '\n'
  shm::UniqueFd fd;
};

/// Reads up to and including '\n' (at most `max_bytes`), keeping the first fd that arrives
/// (close-on-exec); any further fds are closed. Reads one byte at a time, so it never consumes
/// anything past the line. kPeerGone if the peer closes first.
Result<LineWithFd> ReceiveLineWithFd(int socket, size_t max_bytes);

}  // namespace quiver::supervisor
