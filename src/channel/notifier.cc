#include "channel/notifier.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

namespace quiver::channel {
namespace {

socklen_t MakeAddress(std::string_view name, sockaddr_un* addr) {
  std::memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  // sun_path[0] == '\0' selects the abstract namespace.
  std::memcpy(addr->sun_path + 1, name.data(), name.size());
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
}

}  // namespace

Result<NotifyReceiver> NotifyReceiver::Bind(std::string_view name) {
  if (name.empty() || name.size() > 47) {
    return Status::InvalidArgument("notify socket name must be 1 to 47 bytes");
  }
  UniqueFd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Status::FromErrno("socket(AF_UNIX)", errno);
  sockaddr_un addr{};
  socklen_t len = MakeAddress(name, &addr);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    return Status::FromErrno("binding notify socket", errno);
  }
  return NotifyReceiver(std::move(fd));
}

void NotifyReceiver::Drain() const {
  char buf[64];
  while (recv(fd_.get(), buf, sizeof(buf), MSG_DONTWAIT) >= 0) {
  }
}

void NotifySender::Signal(std::string_view name) {
  if (!fd_.valid()) {
    fd_.Reset(socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd_.valid()) return;
  }
  sockaddr_un addr{};
  socklen_t len = MakeAddress(name, &addr);
  const char byte = 1;
  (void)sendto(fd_.get(), &byte, 1, MSG_DONTWAIT | MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr),
               len);
}

}  // namespace quiver::channel
