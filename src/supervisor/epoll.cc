#include "supervisor/epoll.h"

#include <cerrno>

namespace quiver::supervisor {

Result<Epoll> Epoll::Create() {
  UniqueFd fd(::epoll_create1(EPOLL_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno("epoll_create1", errno);
  return Epoll(std::move(fd));
}

Status Epoll::Add(int fd, uint32_t events, uint64_t tag) {
  epoll_event event{};
  event.events = events;
  event.data.u64 = tag;
  if (::epoll_ctl(fd_.get(), EPOLL_CTL_ADD, fd, &event) != 0) {
    return Status::FromErrno("epoll_ctl ADD", errno);
  }
  return Status::OK();
}

Status Epoll::Remove(int fd) {
  if (::epoll_ctl(fd_.get(), EPOLL_CTL_DEL, fd, nullptr) != 0) {
    return Status::FromErrno("epoll_ctl DEL", errno);
  }
  return Status::OK();
}

Result<std::span<epoll_event>> Epoll::Wait(std::span<epoll_event> events, int timeout_ms) {
  const int n = ::epoll_wait(fd_.get(), events.data(), static_cast<int>(events.size()), timeout_ms);
  if (n < 0 && errno == EINTR) return events.first(0);
  if (n < 0) return Status::FromErrno("epoll_wait", errno);
  return events.first(static_cast<size_t>(n));
}

}  // namespace quiver::supervisor
