// Serving control envelopes: answer each request line of a connection in order, over stdio,
// a Unix socket or loopback TCP. A Server is started and stopped from one thread; it calls
// the handler from one thread per connection.
//
// Who gets in: a Unix socket serves only peers of this user (SO_PEERCRED); a TCP connection
// must first send CMD_AUTH {"token": ...} (ServeOptions::token). What a request may name:
// only channels the server exposes (ServeOptions::exposes). How much: at most
// max_connections at once, each closed after idle_timeout without a line.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "common/unique_fd.h"
#include "control/connection.h"
#include "quiver/control.h"
#include "quiver/envelope.h"
#include "quiver/status.h"

namespace quiver::control {

/// Where protocol errors are reported, one line each. Defaults to stderr.
using LogSink = std::function<void(std::string_view line)>;

struct ServeOptions {
  LogSink log;  ///< empty: write to stderr
  /// The channels a request's shm_handle may name. A request naming another is answered
  /// RES_ERROR_V2 PERMISSION_DENIED before the handler sees it, so a peer cannot make the
  /// server read any other channel of its user. Empty: no handle is accepted.
  std::function<bool(std::string_view channel)> exposes;
  /// The bearer token TCP clients must send first (CMD_AUTH {"token"}). ListenTcp refuses to
  /// start without one: loopback is open to every local user.
  std::string token;
  /// Connections served at once (Server); one more is answered RESOURCE_EXHAUSTED and closed.
  size_t max_connections = 64;
  /// A connection with no line for this long is closed (0: never).
  std::chrono::milliseconds idle_timeout = std::chrono::minutes(10);
  /// How long a TCP connection has to authenticate (its first line).
  std::chrono::milliseconds auth_timeout = std::chrono::seconds(5);
};

/// How a connection ended.
enum class ConnectionEnd {
  kEndOfStream,  ///< the peer closed its side (or it broke)
  kShutdown,     ///< the peer sent CMD_SHUTDOWN, which was acknowledged with RES_OK
};

/// Answers the lines of `connection` in order until it ends:
/// - with `needs_auth`, the first line must be CMD_AUTH with the options' token (RES_OK),
///   else it is answered RES_ERROR_V2 UNAUTHENTICATED and the connection ends; CMD_AUTH is
///   answered RES_OK on a connection that needs none;
/// - a valid RES_* is answered RES_ERROR_V2 UNEXPECTED_TYPE;
/// - CMD_SHUTDOWN is answered RES_OK, then the connection is shut down (a socket's peer
///   reads end of stream) and the loop ends;
/// - a CMD_* that `handlers` has no handler for is answered UNKNOWN_TYPE naming those it has;
/// - a request whose shm_handle names a channel the options do not expose is answered
///   RES_ERROR_V2 PERMISSION_DENIED;
/// - any other goes to its handler (its msg_id is set on the answer; a handler's error or
///   exception is answered RES_ERROR_V2 with its chain);
/// - any line that is not a valid envelope (bad JSON, wrong version, unknown type, too
///   long, cut off by the end of the stream) is answered RES_ERROR_V2 with the line's
///   msg_id if it had a readable one (else null), and logged.
/// - a connection silent for idle_timeout (auth_timeout before CMD_AUTH) ends.
/// Returns how it ended; kIoError only if reading failed.
Result<ConnectionEnd> ServeConnection(Connection& connection, const Handlers& handlers,
                                      const ServeOptions& options = {}, bool needs_auth = false);

/// Accepts connections on a Unix socket or on 127.0.0.1 and serves each on its own thread.
/// Running out of threads or fds refuses connections (or waits for fds), never the process.
class Server {
 public:
  /// Listens on a Unix stream socket at `path` (mode 0600, removed again when the server is
  /// destroyed) for peers of this user only. kAlreadyExists if something is at `path`.
  static Result<std::unique_ptr<Server>> ListenUnix(std::string path, Handlers handlers,
                                                    ServeOptions options = {});
  /// Listens on 127.0.0.1:`port`; port 0 picks a free ephemeral port (see port()). Needs
  /// options.token (kInvalidArgument without): every connection authenticates first.
  static Result<std::unique_ptr<Server>> ListenTcp(uint16_t port, Handlers handlers,
                                                   ServeOptions options = {});

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  /// Stops and joins every connection thread.
  ~Server();

  /// Accepts and serves connections until Stop() (or, with stop_on_shutdown, until a
  /// connection ends with CMD_SHUTDOWN). Call from one thread.
  Status Run();
  /// Runs on a background thread of the server's own.
  void Start();
  /// Makes Run() return and closes every open connection. Safe from any thread, and from
  /// a handler.
  void Stop();

  /// The TCP port (0 for a Unix socket).
  uint16_t port() const { return port_; }
  /// The Unix socket path (empty for TCP).
  const std::string& path() const { return path_; }
  /// With true, a CMD_SHUTDOWN on any connection stops the whole server after it is
  /// acknowledged. Set before Run().
  void set_stop_on_shutdown(bool stop) { stop_on_shutdown_ = stop; }

 private:
  struct Session {
    explicit Session(Connection c) : connection(std::move(c)) {}
    Connection connection;
    std::thread thread;
    std::atomic<bool> done{false};
  };

  Server(UniqueFd listener, std::string path, uint16_t port, Handlers handlers,
         ServeOptions options);
  void ReapFinished();
  // Serves a new connection on a thread of its own, or refuses it with one RES_ERROR_V2.
  void Admit(UniqueFd fd);

  UniqueFd listener_;
  UniqueFd wake_read_;  // a pipe: Stop() writes a byte to wake Run()'s poll
  UniqueFd wake_write_;
  std::string path_;
  uint16_t port_ = 0;
  Handlers handlers_;
  ServeOptions options_;
  bool stop_on_shutdown_ = false;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;  // guards sessions_
  std::list<Session> sessions_;
  std::thread background_;
};

}  // namespace quiver::control
