// The client side of a running supervisor's late-joiner socket: finding this user's
// supervisors, listing their channels, attaching to one. Thread-safe (each call connects anew).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/unique_fd.h"
#include "quiver/channel.h"
#include "quiver/status.h"

namespace quiver::supervisor {

/// Asks the supervisor at `socket_address` (a node's QUIVER_SUPERVISOR_SOCKET) for channel
/// `channel`'s segment fd, passed with SCM_RIGHTS. kNotFound for an unknown channel or no
/// supervisor there; kPermissionDenied if the supervisor belongs to another user.
Result<UniqueFd> RequestChannelFd(std::string_view socket_address, std::string_view channel);

/// The names of the channels a running supervisor created ("list" request).
Result<std::vector<std::string>> ListSupervisedChannels(std::string_view socket_address);

/// The late-joiner socket addresses of this user's running supervisors ("@quiver-<uid>-...").
std::vector<std::string> FindSupervisors();

/// RequestChannelFd + Channel::FromFd: attaches to a running pipeline's channel.
Result<Channel> AttachFromSupervisor(std::string_view socket_address, std::string_view channel);

}  // namespace quiver::supervisor
