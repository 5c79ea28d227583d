#include "supervisor/client.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <thread>

#include "common/printable.h"
#include "supervisor/fd_passing.h"

namespace quiver::supervisor {
namespace {

using Clock = std::chrono::steady_clock;
// The longest reply a client accepts (a `list` of many channels).
constexpr size_t kMaxReply = 256 << 10;
// How long a client waits for a supervisor in all (connect, request, reply).
constexpr auto kClientDeadline = std::chrono::seconds(2);

}  // namespace

namespace {

// One request to the supervisor at `socket_address`, answered within kClientDeadline by a
// process of our own user. An abstract socket has no owner or mode: anyone can bind a name
// that looks like a supervisor's, so the listener's uid (SO_PEERCRED) is checked before a
// byte is sent or believed.
Result<LineWithFd> AskSupervisor(std::string_view socket_address, const std::string& request) {
  const auto deadline = Clock::now() + kClientDeadline;
  Result<UniqueFd> connected = ConnectUnix(socket_address, deadline);
  // A full listen queue is a busy supervisor (or one flooded with connections it will drop):
  // try again until the deadline rather than wait inside connect.
  while (!connected.ok() && connected.status().code() == ErrorCode::kBusy &&
         Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    connected = ConnectUnix(socket_address, deadline);
  }
  QUIVER_ASSIGN_OR_RETURN(UniqueFd socket, std::move(connected));
  QUIVER_ASSIGN_OR_RETURN(uid_t uid, PeerUid(socket.get()));
  if (uid != ::geteuid()) {
    return Status::PermissionDenied("the socket " + Printable(socket_address) + " belongs to uid " +
                                    std::to_string(uid) +
                                    ", not to us: not our supervisor; ignored");
  }
  QUIVER_RETURN_IF_ERROR(SendWithFd(socket.get(), request, -1));
  Result<LineWithFd> reply = ReceiveLineWithFd(socket.get(), kMaxReply, deadline);
  if (!reply.ok()) {
    return reply.status().Wrap(reply.status().code(),
                               "supervisor at " + Printable(socket_address) + " did not answer");
  }
  return reply;
}

}  // namespace

Result<UniqueFd> RequestChannelFd(std::string_view socket_address, std::string_view channel) {
  // Used in place, not moved out of the Result (GCC 12 then warns of an uninitialized string).
  Result<LineWithFd> asked =
      AskSupervisor(socket_address, "channel " + std::string(channel) + "\n");
  if (!asked.ok()) return asked.status();
  LineWithFd& reply = *asked;
  if (reply.line == "ok" && reply.fd.valid()) return std::move(reply.fd);
  ErrorCode code = ErrorCode::kIoError;
  if (reply.line.starts_with("error unknown channel")) code = ErrorCode::kNotFound;
  if (reply.line.starts_with("error permission denied")) code = ErrorCode::kPermissionDenied;
  return Status(code, "supervisor at " + Printable(socket_address) + ": " + Printable(reply.line));
}

Result<std::vector<std::string>> ListSupervisedChannels(std::string_view socket_address) {
  QUIVER_ASSIGN_OR_RETURN(LineWithFd reply, AskSupervisor(socket_address, "list\n"));
  if (!reply.line.starts_with("ok")) {
    return Status::IoError("supervisor at " + Printable(socket_address) + ": " +
                           Printable(reply.line));
  }
  std::vector<std::string> names;
  std::string_view rest = std::string_view(reply.line).substr(2);
  if (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string_view name = rest.substr(0, comma);
    // Our own supervisor only sends names it validated; anything else is not a channel.
    if (!Channel::ValidateName(name).ok()) {
      return Status::IoError("supervisor at " + Printable(socket_address) +
                             " listed a bad channel name '" + Printable(name) + "'");
    }
    names.emplace_back(name);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  }
  return names;
}

std::vector<std::string> FindSupervisors() {
  // Abstract sockets have no file; the kernel lists them in /proc/net/unix with '@'.
  std::vector<std::string> found;
  std::ifstream table("/proc/net/unix");
  const std::string prefix = "@quiver-" + std::to_string(::geteuid()) + "-";
  std::string line;
  while (std::getline(table, line)) {
    const size_t at = line.rfind(' ');
    if (at == std::string::npos) continue;
    const std::string path = line.substr(at + 1);
    if (path.starts_with(prefix) && std::find(found.begin(), found.end(), path) == found.end()) {
      found.push_back(path);
    }
  }
  return found;
}

Result<Channel> AttachFromSupervisor(std::string_view socket_address, std::string_view channel) {
  QUIVER_ASSIGN_OR_RETURN(UniqueFd fd, RequestChannelFd(socket_address, channel));
  return Channel::FromFd(fd.get());  // FromFd takes its own description; ours closes here
}

}  // namespace quiver::supervisor
