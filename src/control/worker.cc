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
  return Served(ServeConnection(connection, handlers_, OptionsFor(options_)));
}

Status Worker::ServeStdio() {
  Connection connection = Connection::FromBorrowedFds(0, 1);
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
  int fd = -1;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), fd);
  if (ec != std::errc() || end != value.data() + value.size() || fd < 0) {
    return Status::InvalidArgument(std::string(kControlEnv) + "='" +
                                   std::string(value.substr(0, 40)) +
                                   "' is neither a file descriptor number nor \"stdio\"");
  }
  return ServeFd(fd);
}

}  // namespace quiver::control
