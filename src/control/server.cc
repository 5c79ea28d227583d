#include "control/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <system_error>

namespace quiver::control {
namespace {

void Log(const ServeOptions& options, const EnvelopeError& error) {
  std::string line = "quiver control: answered RES_ERROR_V2 " + error.code + ": " + error.message +
                     " (msg_id " + (error.msg_id.empty() ? std::string("null") : error.msg_id) +
                     ")";
  if (options.log) {
    options.log(line);
  } else {
    line.push_back('\n');
    std::fputs(line.c_str(), stderr);
  }
}

// Constant time in the token's length: a wrong guess learns nothing from timing.
bool SameSecret(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i % std::max<size_t>(b.size(), 1)];
  return diff == 0;
}

// Why `request` may not be served before any handler sees it, or OK.
Status Admissible(const Envelope& request, const ServeOptions& options) {
  if (!request.shm_handle) return Status::OK();
  const std::string& channel = request.shm_handle->segment_id;
  if (!options.exposes || !options.exposes(channel)) {
    return Status::PermissionDenied("this server does not expose channel '" +
                                    channel.substr(0, 80) +
                                    "'; a handle may name only the channels it serves");
  }
  return Status::OK();
}

Envelope Answer(const Envelope& request, const Handler& handler) {
  Result<Envelope> response =
      Status::InvalidArgument("the handler of " + request.type + " is empty");
  try {
    if (handler) response = handler(request);
  } catch (const std::exception& e) {
    return MakeError(EnvelopeError{
        std::string(kInternal), std::string("request handler threw: ") + e.what(), request.msg_id});
  } catch (...) {
    return MakeError(
        EnvelopeError{std::string(kInternal), "request handler threw", request.msg_id});
  }
  if (!response.ok()) return MakeError(request.msg_id, response.status());
  Envelope out = std::move(response).value();
  out.msg_id = request.msg_id;
  return out;
}

}  // namespace

Result<ConnectionEnd> ServeConnection(Connection& connection, const Handlers& handlers,
                                      const ServeOptions& options, bool needs_auth) {
  bool authenticated = !needs_auth;
  for (;;) {
    Result<std::optional<std::string>> line =
        connection.ReadLine(authenticated ? options.idle_timeout : options.auth_timeout);
    Envelope response;
    bool end_after_reply = false;
    ConnectionEnd end = ConnectionEnd::kEndOfStream;
    if (!line.ok() && line.status().code() == ErrorCode::kTimeout) {
      Log(options, EnvelopeError{std::string(ErrorCodeName(ErrorCode::kTimeout)),
                                 std::string(authenticated ? "idle connection closed: "
                                                           : "no CMD_AUTH in time: ") +
                                     line.status().message(),
                                 ""});
      return ConnectionEnd::kEndOfStream;
    }
    if (!line.ok()) {
      EnvelopeError error;
      if (line.status().code() == ErrorCode::kCapacityExceeded) {
        error = {std::string(kLineTooLong), line.status().message(), ""};
      } else if (line.status().code() == ErrorCode::kPeerGone) {
        // The peer may have shut down only its writing side and still read the answer.
        error = {std::string(kInvalidEnvelope), line.status().message(), ""};
        end_after_reply = true;
      } else {
        return line.status();
      }
      Log(options, error);
      response = MakeError(error);
    } else if (!line->has_value()) {
      return ConnectionEnd::kEndOfStream;
    } else {
      ParseOutcome parsed = ParseEnvelope(**line);
      if (!authenticated) {
        // The first line decides: anything but CMD_AUTH with the token ends the connection.
        const bool ok =
            parsed.ok() && parsed.envelope->type == kCmdAuth &&
            parsed.envelope->payload.contains("token") &&
            parsed.envelope->payload["token"].is_string() &&
            SameSecret(parsed.envelope->payload["token"].get<std::string>(), options.token);
        if (ok) {
          authenticated = true;
          response.msg_id = parsed.envelope->msg_id;
          response.type = std::string(kResOk);
        } else {
          const std::string msg_id = parsed.ok() ? parsed.envelope->msg_id : parsed.error.msg_id;
          EnvelopeError error{
              std::string(ErrorCodeName(ErrorCode::kUnauthenticated)),
              "this connection must start with CMD_AUTH carrying the server's token", msg_id};
          Log(options, error);
          response = MakeError(error);
          end_after_reply = true;
        }
      } else if (!parsed.ok()) {
        Log(options, parsed.error);
        response = MakeError(parsed.error);
      } else if (parsed.envelope->type == kCmdAuth) {
        response.msg_id = parsed.envelope->msg_id;
        response.type = std::string(kResOk);
      } else if (IsResponse(parsed.envelope->type)) {
        EnvelopeError error{
            std::string(kUnexpectedType),
            parsed.envelope->type + " is a response; a worker accepts only CMD_* commands",
            parsed.envelope->msg_id};
        Log(options, error);
        response = MakeError(error);
      } else if (parsed.envelope->type == kCmdShutdown) {
        response.msg_id = parsed.envelope->msg_id;
        response.type = std::string(kResOk);
        end_after_reply = true;
        end = ConnectionEnd::kShutdown;
      } else if (const Handler* handler = handlers.Find(parsed.envelope->type);
                 handler == nullptr) {
        std::string known;
        for (const std::string& type : handlers.types())
          known += (known.empty() ? "" : ", ") + type;
        EnvelopeError error{std::string(kUnknownType),
                            "no handler for " + parsed.envelope->type + "; this worker answers " +
                                (known.empty() ? std::string("no commands") : known) +
                                " (and CMD_SHUTDOWN)",
                            parsed.envelope->msg_id};
        Log(options, error);
        response = MakeError(error);
      } else if (Status refused = Admissible(*parsed.envelope, options); !refused.ok()) {
        EnvelopeError error{std::string(ErrorCodeName(refused.code())), refused.message(),
                            parsed.envelope->msg_id};
        Log(options, error);
        response = MakeError(error);
      } else {
        response = Answer(*parsed.envelope, *handler);
      }
    }
    Status written = connection.WriteLine(Serialize(response));
    if (!written.ok()) {
      if (written.code() == ErrorCode::kPeerGone) return ConnectionEnd::kEndOfStream;
      return written;
    }
    if (end_after_reply) {
      // The peer sees the end of the stream right after the acknowledgement (or refusal).
      if (end == ConnectionEnd::kShutdown || !authenticated) connection.Shutdown();
      return end;
    }
  }
}

Server::Server(UniqueFd listener, std::string path, uint16_t port, Handlers handlers,
               ServeOptions options)
    : listener_(std::move(listener)),
      path_(std::move(path)),
      port_(port),
      handlers_(std::move(handlers)),
      options_(std::move(options)) {}

Result<std::unique_ptr<Server>> Server::ListenUnix(std::string path, Handlers handlers,
                                                   ServeOptions options) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return Status::InvalidArgument("Unix socket path must be 1.." +
                                   std::to_string(sizeof(addr.sun_path) - 1) + " bytes: '" + path +
                                   "'");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Status::FromErrno("socket(AF_UNIX)", errno);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    return Status::FromErrno("bind " + path, err)
        .Wrap(err == EADDRINUSE ? ErrorCode::kAlreadyExists : ErrorCode::kIoError,
              "cannot listen on " + path);
  }
  // Only this user may talk to the control socket.
  ::chmod(path.c_str(), 0600);
  if (::listen(fd.get(), 16) != 0) {
    const int err = errno;
    ::unlink(path.c_str());
    return Status::FromErrno("listen " + path, err);
  }
  std::unique_ptr<Server> server(
      new Server(std::move(fd), std::move(path), 0, std::move(handlers), std::move(options)));
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return Status::FromErrno("pipe2", errno);
  server->wake_read_.Reset(pipe_fds[0]);
  server->wake_write_.Reset(pipe_fds[1]);
  return server;
}

Result<std::unique_ptr<Server>> Server::ListenTcp(uint16_t port, Handlers handlers,
                                                  ServeOptions options) {
  if (options.token.empty()) {
    return Status::InvalidArgument(
        "a TCP control server needs a token (ServeOptions::token): any local user "
        "can connect to 127.0.0.1; use a Unix socket to serve this user only");
  }
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Status::FromErrno("socket(AF_INET)", errno);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  // loopback only, and a token (CMD_AUTH)
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    return Status::FromErrno("bind 127.0.0.1:" + std::to_string(port), err)
        .Wrap(err == EADDRINUSE ? ErrorCode::kAlreadyExists : ErrorCode::kIoError,
              "cannot listen on 127.0.0.1:" + std::to_string(port));
  }
  if (::listen(fd.get(), 16) != 0) return Status::FromErrno("listen", errno);
  socklen_t len = sizeof(addr);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return Status::FromErrno("getsockname", errno);
  }
  std::unique_ptr<Server> server(
      new Server(std::move(fd), "", ntohs(addr.sin_port), std::move(handlers), std::move(options)));
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return Status::FromErrno("pipe2", errno);
  server->wake_read_.Reset(pipe_fds[0]);
  server->wake_write_.Reset(pipe_fds[1]);
  return server;
}

Server::~Server() {
  Stop();
  if (background_.joinable()) background_.join();
  std::lock_guard lock(mu_);
  for (Session& s : sessions_) {
    if (s.thread.joinable()) s.thread.join();
  }
  sessions_.clear();
  if (!path_.empty()) ::unlink(path_.c_str());
}

void Server::Start() {
  background_ = std::thread([this] {
    Status st = Run();
    if (!st.ok())
      std::fprintf(stderr, "quiver control: server stopped: %s\n", st.ToString().c_str());
  });
}

void Server::Stop() {
  if (stopping_.exchange(true)) return;
  const char byte = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_write_.get(), &byte, 1);
  std::lock_guard lock(mu_);
  for (Session& s : sessions_) s.connection.Shutdown();
}

void Server::Admit(UniqueFd fd) {
  Connection connection = Connection::FromSocket(std::move(fd));
  auto refuse = [&](ErrorCode code, const std::string& why) {
    EnvelopeError error{std::string(ErrorCodeName(code)), why, ""};
    Log(options_, error);
    (void)connection.WriteLine(Serialize(MakeError(error)));
    connection.Shutdown();
  };
  if (!path_.empty()) {
    // A Unix socket: its peer's uid is the access check (the file mode only narrows the
    // window between bind and chmod; this closes it).
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(connection.read_fd(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
        cred.uid != ::geteuid()) {
      return refuse(ErrorCode::kPermissionDenied,
                    "this control server serves only uid " + std::to_string(::geteuid()));
    }
  }
  std::lock_guard lock(mu_);
  if (sessions_.size() >= options_.max_connections) {
    return refuse(ErrorCode::kResourceExhausted,
                  "too many connections (" + std::to_string(sessions_.size()) +
                      "; ServeOptions::max_connections): try again later");
  }
  Session& session = sessions_.emplace_back(std::move(connection));
  const bool needs_auth = path_.empty();  // TCP
  try {
    session.thread = std::thread([this, &session, needs_auth] {
      Result<ConnectionEnd> end =
          ServeConnection(session.connection, handlers_, options_, needs_auth);
      if (!end.ok()) {
        std::fprintf(stderr, "quiver control: connection failed: %s\n",
                     end.status().ToString().c_str());
      } else if (*end == ConnectionEnd::kShutdown && stop_on_shutdown_) {
        Stop();
      }
      session.done.store(true, std::memory_order_release);
    });
  } catch (const std::system_error& e) {
    // No thread to serve it (EAGAIN: thread or memory limits): refuse this one connection.
    Connection refused = std::move(session.connection);
    sessions_.pop_back();
    EnvelopeError error{std::string(ErrorCodeName(ErrorCode::kResourceExhausted)),
                        std::string("cannot start a thread for this connection: ") + e.what(), ""};
    Log(options_, error);
    (void)refused.WriteLine(Serialize(MakeError(error)));
    refused.Shutdown();
  }
}

void Server::ReapFinished() {
  std::lock_guard lock(mu_);
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (it->done.load(std::memory_order_acquire)) {
      it->thread.join();
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
}

Status Server::Run() {
  Status result;
  while (!stopping_.load()) {
    pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {wake_read_.get(), POLLIN, 0}};
    const int ready = ::poll(fds, 2, 1000);
    if (ready < 0) {
      if (errno == EINTR) continue;
      result = Status::FromErrno("poll control listener", errno);
      break;
    }
    ReapFinished();
    if (fds[1].revents != 0 || stopping_.load()) break;
    if ((fds[0].revents & POLLIN) == 0) continue;
    UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!fd.valid()) {
      const int err = errno;
      if (err == EINTR || err == ECONNABORTED || err == EAGAIN) continue;
      if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        // Out of fds or memory: the waiting connection stays queued. Back off instead of
        // spinning on it, and keep serving those already open.
        Log(options_,
            EnvelopeError{"RESOURCE_EXHAUSTED",
                          std::string("cannot accept a connection now: ") + std::strerror(err),
                          ""});
        ::poll(nullptr, 0, 100);
        continue;
      }
      result = Status::FromErrno("accept control connection", err);
      break;
    }
    Admit(std::move(fd));
  }
  stopping_.store(true);
  std::list<Session> sessions;
  {
    std::lock_guard lock(mu_);
    for (Session& s : sessions_) s.connection.Shutdown();
    sessions.splice(sessions.end(), sessions_);
  }
  for (Session& s : sessions) s.thread.join();
  return result;
}

}  // namespace quiver::control
