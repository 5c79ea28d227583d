// Worker: the commanded end of a control connection (ServeConnection with the application's
// handlers), over an inherited socket or stdio.
#include <fcntl.h>
#include <sys/socket.h>

#include <charconv>
#include <cstdlib>

#include "control/connection.h"
#include "control/server.h"
#include "quiver/control.h"

namespace quiver::control {
namespace {

ServeOptions OptionsFor(const WorkerOptions& options) {
  ServeOptions serve;
  serve.log = options.log;
  // Same-user peers only reach a worker (its connection came from `quiver run` or a Unix
  // socket): any channel of this user may be named unless the application narrows it.
  serve.exposes = options.exposes ? options.exposes : [](std::string_view) { return true; };
  serve.idle_timeout = std::chrono::milliseconds(0);  // a worker waits for work as long as it takes
  return serve;
}

Status Served(const Result<ConnectionEnd>& end) { return end.ok() ? Status::OK() : end.status(); }

}  // namespace

Worker::Worker(Handlers handlers, WorkerOptions options)
    : handlers_(std::move(handlers)), options_(std::move(options)) {}

Status Worker::ServeFd(int fd) {
  int type = 0;
  socklen_t len = sizeof(type);
  if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) {
    return Status::InvalidArgument("fd " + std::to_string(fd) +
                                   " is not a connected stream socket; a worker serves one");
  }
  (void)fcntl(fd, F_SETFD, FD_CLOEXEC);  // not inherited by what the worker starts
  Connection connection = Connection::FromSocket(UniqueFd(fd));
  connection.set_spin(options_.spin);
  return Served(ServeConnection(connection, handlers_, OptionsFor(options_)));
}

Status Worker::ServeFds(ControlFds fds) {
  if (fds.read_fd == fds.write_fd) return ServeFd(fds.read_fd);
  for (int fd : {fds.read_fd, fds.write_fd}) {
    if (fd < 0 || fcntl(fd, F_GETFD) < 0) {
      return Status::InvalidArgument("fd " + std::to_string(fd) +
                                     " is not an open file descriptor; a worker serves two pipes");
    }
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  Connection connection = Connection::FromFds(UniqueFd(fds.read_fd), UniqueFd(fds.write_fd));
  connection.set_spin(options_.spin);
  return Served(ServeConnection(connection, handlers_, OptionsFor(options_)));
}

Status Worker::ServeStdio() {
  Connection connection = Connection::FromBorrowedFds(0, 1);
  connection.set_spin(options_.spin);
  return Served(ServeConnection(connection, handlers_, OptionsFor(options_)));
}

Status Worker::ServeFromEnvironment() {
  const char* env = std::getenv(kControlEnv);
  if (env == nullptr || *env == '\0') {
    return Status::NotFound(std::string("this process has no control connection: ") + kControlEnv +
                            " is not set (run it under `quiver run` as a node that another "
                            "node's `controls = [...]` names)");
  }
  const std::string_view value = env;
  if (value == "stdio") return ServeStdio();
  Result<ControlFds> fds = ParseControlFds(value);
  if (!fds.ok()) {
    return fds.status().Wrap(ErrorCode::kInvalidArgument,
                             std::string(kControlEnv) + " is neither R:W, N nor \"stdio\"");
  }
  return ServeFds(*fds);
}

}  // namespace quiver::control
