#include "control/connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace quiver::control {
namespace {

constexpr size_t kReadChunk = 16 << 10;

}  // namespace

Connection::Connection(UniqueFd owned, int read_fd, int write_fd, size_t max_line)
    : owned_(std::move(owned)), read_fd_(read_fd), write_fd_(write_fd), max_line_(max_line) {
  struct stat st {};
  write_socket_ = ::fstat(write_fd_, &st) != 0 || S_ISSOCK(st.st_mode);
}

Connection Connection::FromFds(UniqueFd read_fd, UniqueFd write_fd, size_t max_line) {
  const int r = read_fd.get(), w = write_fd.get();
  Connection c(std::move(read_fd), r, w, max_line);
  c.owned_write_ = std::move(write_fd);
  return c;
}

Connection Connection::FromSocket(UniqueFd fd, size_t max_line) {
  const int raw = fd.get();
  return Connection(std::move(fd), raw, raw, max_line);
}

Connection Connection::FromBorrowedFds(int read_fd, int write_fd, size_t max_line) {
  return Connection(UniqueFd(), read_fd, write_fd, max_line);
}

Result<Connection> Connection::ConnectUnix(std::string_view path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return Status::InvalidArgument("Unix socket path must be 1.." +
                                   std::to_string(sizeof(addr.sun_path) - 1) + " bytes: '" +
                                   std::string(path) + "'");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Status::FromErrno("socket(AF_UNIX)", errno);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    const ErrorCode code =
        (err == ENOENT || err == ECONNREFUSED) ? ErrorCode::kNotFound : ErrorCode::kIoError;
    return Status::FromErrno("connect " + std::string(path), err)
        .Wrap(code, "no control server at " + std::string(path));
  }
  return FromSocket(std::move(fd));
}

Result<Connection> Connection::ConnectTcp(uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Status::FromErrno("socket(AF_INET)", errno);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    return Status::FromErrno("connect 127.0.0.1:" + std::to_string(port), err)
        .Wrap(err == ECONNREFUSED ? ErrorCode::kNotFound : ErrorCode::kIoError,
              "no control server on 127.0.0.1:" + std::to_string(port));
  }
  const int one = 1;  // envelopes are small request/response lines: do not batch them
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return FromSocket(std::move(fd));
}

Result<std::pair<Connection, Connection>> Connection::Pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    return Status::FromErrno("socketpair", errno);
  }
  return std::pair<Connection, Connection>(FromSocket(UniqueFd(fds[0])),
                                           FromSocket(UniqueFd(fds[1])));
}

Result<std::optional<std::string>> Connection::ReadLine(std::chrono::milliseconds idle) {
  char chunk[kReadChunk];
  size_t scanned = 0;  // bytes of buffer_ already known to hold no '\n'
  for (;;) {
    if (skipping_) {
      const size_t nl = buffer_.find('\n');
      if (nl == std::string::npos) {
        buffer_.clear();
      } else {
        buffer_.erase(0, nl + 1);
        skipping_ = false;
      }
    }
    if (!skipping_) {
      const size_t nl = buffer_.find('\n', scanned);
      if (nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        if (line.size() > max_line_) {  // a whole long line arrived in one read
          return Status::CapacityExceeded("line of " + std::to_string(line.size()) +
                                          " bytes exceeds the " + std::to_string(max_line_) +
                                          "-byte limit");
        }
        return std::optional<std::string>(std::move(line));
      }
      scanned = buffer_.size();
      if (buffer_.size() > max_line_) {
        // Report now rather than at its '\n': the rest may never come.
        buffer_.clear();
        skipping_ = true;
        return Status(
            ErrorCode::kCapacityExceeded,
            "line exceeds the " + std::to_string(max_line_) + "-byte limit; skipping to its end");
      }
    }
    const size_t room =
        skipping_ ? sizeof(chunk) : std::min(sizeof(chunk), max_line_ + 1 - buffer_.size());
    if (spin_.count() > 0) {
      // Poll without sleeping for a while: most replies come within it.
      const auto until = std::chrono::steady_clock::now() + spin_;
      pollfd readable{read_fd_, POLLIN, 0};
      while (::poll(&readable, 1, 0) == 0 && std::chrono::steady_clock::now() < until) {
      }
    }
    if (idle.count() > 0) {
      pollfd readable{read_fd_, POLLIN, 0};
      const int ready = ::poll(&readable, 1, static_cast<int>(idle.count()));
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) return Status::FromErrno("poll control connection", errno);
      if (ready == 0) {
        return Status::Timeout("nothing came for " + std::to_string(idle.count()) + " ms");
      }
    }
    const ssize_t n = ::read(read_fd_, chunk, room);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("read control line", errno);
    }
    if (n == 0) {
      if (buffer_.empty() || skipping_) {
        buffer_.clear();
        skipping_ = false;
        return std::optional<std::string>();
      }
      const size_t partial = buffer_.size();
      buffer_.clear();
      return Status::PeerGone("stream ended inside a line (" + std::to_string(partial) +
                              " bytes without '\\n')");
    }
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

Status Connection::WriteLine(std::string_view line) {
  std::string out;
  out.reserve(line.size() + 1);
  out.append(line);
  out.push_back('\n');
  size_t done = 0;
  // A pipe has no MSG_NOSIGNAL: SIGPIPE is blocked for this thread during the write, and one
  // it raised is consumed before it is unblocked (the process's disposition is left alone).
  sigset_t pipe_signal, previous;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  if (!write_socket_) pthread_sigmask(SIG_BLOCK, &pipe_signal, &previous);
  bool broken = false;
  while (done < out.size()) {
    ssize_t n = write_socket_
                    ? ::send(write_fd_, out.data() + done, out.size() - done, MSG_NOSIGNAL)
                    : ::write(write_fd_, out.data() + done, out.size() - done);
    if (n < 0 && errno == ENOTSOCK && write_socket_) {
      write_socket_ = false;  // fstat could not tell: a pipe after all
      pthread_sigmask(SIG_BLOCK, &pipe_signal, &previous);
      continue;
    }
    if (n < 0 && errno == EPIPE) broken = true;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      Status failed = Status::FromErrno("write control line", err);
      if (err == EPIPE || err == ECONNRESET) {
        failed = failed.Wrap(ErrorCode::kPeerGone, "control peer closed the connection");
      }
      if (!write_socket_) {
        if (broken) {
          const timespec zero{};
          (void)sigtimedwait(&pipe_signal, nullptr, &zero);  // the SIGPIPE the write raised
        }
        pthread_sigmask(SIG_SETMASK, &previous, nullptr);
      }
      return failed;
    }
    done += static_cast<size_t>(n);
  }
  if (!write_socket_) pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return Status::OK();
}

void Connection::Shutdown() {
  ::shutdown(read_fd_, SHUT_RDWR);
  if (write_fd_ != read_fd_) ::shutdown(write_fd_, SHUT_RDWR);
  // Pipes cannot be shut down: closing the write end we own tells the peer it is over.
  if (owned_write_.valid()) {
    owned_write_.Reset();
    write_fd_ = -1;
  }
}

}  // namespace quiver::control
