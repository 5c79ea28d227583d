#include "supervisor/fd_passing.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace quiver::supervisor {
namespace {

Result<std::pair<sockaddr_un, socklen_t>> MakeAddress(std::string_view address) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const bool abstract = !address.empty() && address.front() == '@';
  // An abstract name starts with a NUL byte in sun_path and is not NUL-terminated.
  if (address.size() < 2 || address.size() > sizeof(addr.sun_path) - 1) {
    return Status::InvalidArgument("bad socket address '" + std::string(address) + "'");
  }
  std::memcpy(addr.sun_path, address.data(), address.size());
  if (abstract) addr.sun_path[0] = '\0';
  const socklen_t len =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size() + (abstract ? 0 : 1));
  return std::make_pair(addr, len);
}

// What is left until `deadline` as a socket timeout (at least 1 ms: 0 would mean never).
timeval TimeLeft(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::microseconds>(
      deadline - std::chrono::steady_clock::now());
  const int64_t us = std::max<int64_t>(left.count(), 1000);
  return timeval{.tv_sec = static_cast<time_t>(us / 1000000),
                 .tv_usec = static_cast<suseconds_t>(us % 1000000)};
}

}  // namespace

Result<UniqueFd> ListenUnix(std::string_view address) {
  QUIVER_ASSIGN_OR_RETURN(auto addr, MakeAddress(address));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Status::FromErrno("socket", errno);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr.first), addr.second) != 0) {
    return Status::FromErrno("bind " + std::string(address), errno);
  }
  if (::listen(fd.get(), 64) != 0) return Status::FromErrno("listen", errno);
  return fd;
}

Result<UniqueFd> ConnectUnix(std::string_view address, Deadline deadline) {
  QUIVER_ASSIGN_OR_RETURN(auto addr, MakeAddress(address));
  // Non-blocking for the connect: a Unix listener with a full queue (stuck, or not a real
  // supervisor) makes a blocking connect wait forever; this one gets EAGAIN at once.
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Status::FromErrno("socket", errno);
  int rc;
  do {
    rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr.first), addr.second);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno;
    ErrorCode code = ErrorCode::kIoError;
    if (err == ECONNREFUSED || err == ENOENT) code = ErrorCode::kNotFound;
    if (err == EAGAIN) code = ErrorCode::kBusy;
    return Status(code, "connect " + std::string(address) + ": " + std::strerror(err));
  }
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
    return Status::FromErrno("fcntl", errno);
  }
  if (deadline) {
    const timeval left = TimeLeft(*deadline);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &left, sizeof(left));
  }
  return fd;
}

Result<uid_t> PeerUid(int socket) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(socket, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return Status::FromErrno("SO_PEERCRED", errno);
  }
  return cred.uid;
}

Status SendWithFd(int socket, std::string_view bytes, int fd) {
  iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  }
  ssize_t n;
  do {
    n = ::sendmsg(socket, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Status::FromErrno("sendmsg", errno);
  // Replies are a few bytes on a fresh connection: they always fit the socket buffer.
  if (static_cast<size_t>(n) != bytes.size()) {
    return Status::IoError("sendmsg sent a partial reply");
  }
  return Status::OK();
}

Result<LineWithFd> ReceiveLineWithFd(int socket, size_t max_bytes, Deadline deadline) {
  LineWithFd out;
  while (out.line.size() < max_bytes) {
    if (deadline) {  // per byte: a peer that drips bytes still ends at the deadline
      if (std::chrono::steady_clock::now() >= *deadline) {
        return Status::Timeout("no complete answer in time");
      }
      const timeval left = TimeLeft(*deadline);
      ::setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &left, sizeof(left));
    }
    char c = 0;
    iovec iov{&c, 1};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)] = {};
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    const ssize_t n = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && deadline) {
      return Status::Timeout("no complete answer in time");
    }
    if (n < 0) return Status::FromErrno("recvmsg", errno);
    for (cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg != nullptr; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
      if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
      const size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
        UniqueFd owned(fd);  // closes every fd but the first we keep
        if (!out.fd.valid()) out.fd = std::move(owned);
      }
    }
    if (n == 0) return Status::PeerGone("the peer closed the connection");
    if (c == '\n') return out;
    out.line.push_back(c);
  }
  return Status::InvalidArgument("line longer than " + std::to_string(max_bytes));
}

}  // namespace quiver::supervisor
