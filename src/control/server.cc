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

Envelope Answer(const Envelope& request, const Handler& handler) {
  Result<Envelope> response = Status(ErrorCode::kInvalidArgument, "no handler");
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

Result<ConnectionEnd> ServeConnection(Connection& connection, const Handler& handler,
                                      const ServeOptions& options) {
  for (;;) {
    Result<std::optional<std::string>> line = connection.ReadLine();
    Envelope response;
    bool end_after_reply = false;
    ConnectionEnd end = ConnectionEnd::kEndOfStream;
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
      if (!parsed.ok()) {
        Log(options, parsed.error);
        response = MakeError(parsed.error);
      } else if (parsed.envelope->type == MessageType::kCmdShutdown) {
        response.msg_id = parsed.envelope->msg_id;
        response.type = MessageType::kResOk;
        end_after_reply = true;
        end = ConnectionEnd::kShutdown;
      } else if (IsResponse(parsed.envelope->type)) {
        EnvelopeError error{std::string(kUnexpectedType),
                            std::string(MessageTypeName(parsed.envelope->type)) +
                                " is a response; a server accepts only CMD_* requests",
                            parsed.envelope->msg_id};
        Log(options, error);
        response = MakeError(error);
      } else {
        response = Answer(*parsed.envelope, handler);
      }
    }
    Status written = connection.WriteLine(Serialize(response));
    if (!written.ok()) {
      if (written.code() == ErrorCode::kPeerGone) return ConnectionEnd::kEndOfStream;
      return written;
    }
    if (end_after_reply) {
      // The peer sees the end of the stream right after the acknowledgement.
      if (end == ConnectionEnd::kShutdown) connection.Shutdown();
      return end;
    }
  }
}

Server::Server(UniqueFd listener, std::string path, uint16_t port, Handler handler,
               ServeOptions options)
    : listener_(std::move(listener)),
      path_(std::move(path)),
      port_(port),
      handler_(std::move(handler)),
      options_(std::move(options)) {}

Result<std::unique_ptr<Server>> Server::ListenUnix(std::string path, Handler handler,
                                                   ServeOptions options) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return Status(ErrorCode::kInvalidArgument, "Unix socket path must be 1.." +
                                                   std::to_string(sizeof(addr.sun_path) - 1) +
                                                   " bytes: '" + path + "'");
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
      new Server(std::move(fd), std::move(path), 0, std::move(handler), std::move(options)));
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return Status::FromErrno("pipe2", errno);
  server->wake_read_.Reset(pipe_fds[0]);
  server->wake_write_.Reset(pipe_fds[1]);
  return server;
}

Result<std::unique_ptr<Server>> Server::ListenTcp(uint16_t port, Handler handler,
                                                  ServeOptions options) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Status::FromErrno("socket(AF_INET)", errno);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  // loopback only: no authentication
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
      new Server(std::move(fd), "", ntohs(addr.sin_port), std::move(handler), std::move(options)));
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
      if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN) continue;
      result = Status::FromErrno("accept control connection", errno);
      break;
    }
    std::lock_guard lock(mu_);
    Session& session = sessions_.emplace_back(Connection::FromSocket(std::move(fd)));
    session.thread = std::thread([this, &session] {
      Result<ConnectionEnd> end = ServeConnection(session.connection, handler_, options_);
      if (!end.ok()) {
        std::fprintf(stderr, "quiver control: connection failed: %s\n",
                     end.status().ToString().c_str());
      } else if (*end == ConnectionEnd::kShutdown && stop_on_shutdown_) {
        Stop();
      }
      session.done.store(true, std::memory_order_release);
    });
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
