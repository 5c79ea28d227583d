// The Flight server of `quiver serve`: this machine's Arrow channels served over Flight
// (gRPC) to other hosts. Its calls run on gRPC's threads; Start and Shutdown are the owner's.
//
//   flight      channel
//   ListFlights one FlightInfo per Arrow channel: schema, counters as JSON app_metadata
//   DoGet       ticket "NAME[?from=latest|from=oldest]": a live tail of the channel (from
//               the next batch, or from the backlog other subscribers still hold), batches
//               sent from the shared mapping without a copy; ends when the publisher is gone
//   DoPut       descriptor path [NAME]: the uploaded batches are published into the channel
//               (created with the stream's schema if absent; schema checked if present)
//   DoAction    list-channels, stats (body: NAME)
//
// Backpressure crosses the wire: a DoGet writes one batch at a time into gRPC's bounded
// flow-control window; while the remote reader is slow the server's subscriber holds back
// and the channel's overflow policy applies (block: the publisher waits; drop-oldest: the
// remote reader misses samples). Nothing is buffered beyond that window.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "quiver/channel.h"
#include "quiver/status.h"

namespace quiver::flight {

/// The default listening address: a Unix socket in this user's private runtime directory,
/// "grpc+unix://$XDG_RUNTIME_DIR/quiver/flight.sock" (or /tmp/quiver-<uid>/flight.sock when
/// XDG_RUNTIME_DIR is unset). The directory (mode 0700) is what keeps other users out.
Result<std::string> DefaultListen();

struct ServerOptions {
  /// Where to listen. Empty: DefaultListen(). "grpc+unix:///PATH": a Unix socket, whose
  /// directory must be ours and closed to other users. "grpc://HOST:PORT" (grpc+tcp:// is the
  /// same; grpc+tls:// needs the TLS files): TCP, which needs a bearer token, loopback
  /// included. Port 0 picks a free port (see Server::location()).
  std::string listen;
  /// PEM files; both or neither. With them the server speaks TLS.
  std::string tls_cert_file;
  std::string tls_key_file;
  /// A bearer token every call must carry ("authorization: Bearer TOKEN"). Required for TCP;
  /// on a Unix socket, checked if given.
  std::string token;
  /// A non-loopback address needs TLS unless this is set (the token is required anyway).
  bool allow_insecure_remote = false;
  /// Channels that a DoPut creates.
  size_t put_capacity = size_t{64} << 20;
  OverflowPolicy put_overflow = OverflowPolicy::kBlock;
  /// What DoPut streams may create at once (channels they hold now): how many and how many
  /// bytes in all. A DoPut past either gets kResourceExhausted; a stream's channel is given
  /// back when the stream ends or fails.
  size_t put_max_channels = 16;
  size_t put_max_bytes = size_t{1} << 30;
  /// The largest gRPC message the server accepts (a DoPut batch, an action body); larger ones
  /// are refused with RESOURCE_EXHAUSTED before they are buffered. 0: put_capacity + 1 MiB (a
  /// batch that fits a channel DoPut creates, with room for its metadata).
  size_t max_message_bytes = 0;
  /// How often a waiting DoGet/DoPut checks for a cancelled call or a shutdown.
  std::chrono::milliseconds poll = std::chrono::milliseconds(100);
};

/// A running Flight server. Its calls run on gRPC's threads.
class Server {
 public:
  /// Checks the options, binds and starts serving.
  static Result<std::unique_ptr<Server>> Start(const ServerOptions& options);
  ~Server();

  /// The URI clients connect to, with the port resolved (e.g. "grpc://127.0.0.1:50051", or
  /// "grpc+unix:///run/user/1000/quiver/flight.sock").
  const std::string& location() const;
  /// The receive limit in force (ServerOptions::max_message_bytes, resolved).
  size_t max_message_bytes() const;
  /// Ends live tails and DoPuts (they see the shutdown within ServerOptions::poll), waits
  /// up to `grace` for calls to finish, then cancels the rest.
  void Shutdown(std::chrono::milliseconds grace = std::chrono::seconds(2));

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace quiver::flight
