// Flight addresses and tickets: the URIs `quiver serve --listen` and `quiver bridge` take
// apart (server, remote channel) and the DoGet ticket. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "quiver/status.h"

namespace quiver::flight {

/// "grpc[+tcp|+tls]://HOST:PORT[/PATH]" or "grpc+unix:///SOCKET" taken apart; `what` names it
/// in errors.
struct Address {
  std::string host;  ///< without brackets for IPv6; empty for a Unix socket
  int port = 0;
  bool tls = false;
  std::string path;         ///< TCP: after the first '/' (may be empty)
  std::string unix_socket;  ///< grpc+unix: the socket's absolute path
};
Result<Address> ParseAddress(std::string_view uri, std::string_view what);

/// A DoGet ticket: "NAME", "NAME?from=latest" (the default: batches published from now
/// on) or "NAME?from=oldest" (first the channel's backlog: SubscriberOptions::from_oldest).
struct Ticket {
  std::string channel;
  bool from_oldest = false;
};
/// kInvalidArgument naming what is wrong (unknown option, from= twice, empty name).
Result<Ticket> ParseTicket(std::string_view text);

/// "grpc[+tcp|+tls]://HOST:PORT/CHANNEL[?from=latest|from=oldest]" (or
/// "grpc+unix:///SOCKET/CHANNEL[?...]": the last path element is the channel) split into a
/// location and a ticket.
struct RemoteChannel {
  std::string location;  ///< "grpc+tcp://HOST:PORT", "grpc+tls://HOST:PORT", "grpc+unix:///P"
  std::string ticket;    ///< "CHANNEL[?...]", validated by ParseTicket
  std::string channel;
};
Result<RemoteChannel> ParseRemoteChannel(std::string_view uri);

}  // namespace quiver::flight
