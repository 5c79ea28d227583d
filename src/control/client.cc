// Client: the commanding end of one control connection. Callers that wait read the
// connection themselves, one at a time, and match results to calls by msg_id.
#include <fcntl.h>
#include <poll.h>

#include <condition_variable>
#include <cstdlib>
#include <thread>
#include <unordered_map>

#include "control/connection.h"
#include "quiver/control.h"

namespace quiver::control {

struct PendingCall::State {
  std::string msg_id;
  std::string type;
  std::string worker;
  std::shared_ptr<Client::Impl> client;    // the connection it waits on
  std::optional<Result<Envelope>> result;  // guarded by the client's mu
};

// No thread of its own: a caller that waits reads the connection itself (one at a time; the
// others wait for their result or for the reading to be free), so a result reaches its
// caller with one wake-up, as a plain pipe would. Results that arrive for other calls are
// handed to them on the way.
struct Client::Impl {
  Impl(Connection c, std::string w) : connection(std::move(c)), worker(std::move(w)) {
    connection.set_spin(kClientSpin);
  }

  // Waits until `call` has its result, reading the connection while nobody else does, up to
  // `deadline`. Returns with the lock held.
  void WaitFor(PendingCall::State& call, std::unique_lock<std::mutex>& lock,
               std::chrono::steady_clock::time_point deadline) {
    while (!call.result) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return;
      if (reading) {
        cv.wait_until(lock, deadline);
        continue;
      }
      reading = true;
      lock.unlock();
      ReadOne(std::chrono::ceil<std::chrono::milliseconds>(deadline - now));
      lock.lock();
      reading = false;
      cv.notify_all();  // results came in, or another caller may read now
    }
  }

  // Reads and dispatches one line, waiting at most `idle` for it (0: only what is there).
  // The caller holds the reading role, not the lock.
  void ReadOne(std::chrono::milliseconds idle) {
    Result<std::optional<std::string>> line =
        connection.ReadLine(std::max(idle, std::chrono::milliseconds(1)));
    if (!line.ok()) {
      const ErrorCode code = line.status().code();
      // A line too long was skipped (reported once); nothing came yet: both go on.
      if (code == ErrorCode::kCapacityExceeded || code == ErrorCode::kTimeout) return;
      Close(line.status().Wrap(ErrorCode::kPeerGone,
                               "the control connection to worker '" + worker + "' broke"));
      return;
    }
    if (!line->has_value()) {
      Close(Status::PeerGone("worker '" + worker + "' closed its control connection"));
      return;
    }
    ParseOutcome parsed = ParseEnvelope(**line);
    const std::string& id = parsed.ok() ? parsed.envelope->msg_id : parsed.error.msg_id;
    std::lock_guard lock(mu);
    auto it = pending.find(id);
    if (it == pending.end()) return;  // no call waits for it (unreadable, or answered already)
    std::shared_ptr<PendingCall::State> call = std::move(it->second);
    pending.erase(it);
    if (parsed.ok()) {
      call->result.emplace(std::move(*parsed.envelope));
    } else {
      call->result.emplace(
          Status::InvalidArgument("worker '" + worker + "' answered " + call->type +
                                  " with a line that is not an envelope: " + parsed.error.code +
                                  ": " + parsed.error.message));
    }
  }

  // The connection ended: every pending call fails naming the worker and its command.
  void Close(const Status& why) {
    std::lock_guard lock(mu);
    closed = true;
    for (auto& [id, call] : pending) {
      call->result.emplace(why.Wrap(ErrorCode::kPeerGone, "worker '" + worker + "' is gone with " +
                                                              call->type + " (msg_id " + id +
                                                              ") unanswered"));
    }
    pending.clear();
    cv.notify_all();
  }

  Connection connection;
  const std::string worker;
  std::mutex write_mu;  // one writer at a time
  std::mutex mu;        // guards all below
  std::condition_variable cv;
  bool reading = false;  // a caller is reading the connection
  std::unordered_map<std::string, std::shared_ptr<PendingCall::State>> pending;  // by msg_id
  bool closed = false;
};

Result<Envelope> PendingCall::Wait(std::chrono::milliseconds timeout) const {
  Client::Impl* client = state_->client.get();
  std::unique_lock lock(client->mu);
  client->WaitFor(*state_, lock, std::chrono::steady_clock::now() + timeout);
  if (!state_->result) {
    return Status::Timeout("worker '" + state_->worker + "' has not answered " + state_->type +
                           " (msg_id " + state_->msg_id + ") within " +
                           std::to_string(timeout.count()) + " ms");
  }
  const Result<Envelope>& r = *state_->result;
  if (!r.ok()) return r.status();
  if (r.value().type == kResErrorV2) return StatusFromError(r.value());
  return r.value();
}

bool PendingCall::done() const {
  std::lock_guard lock(state_->client->mu);
  return state_->result.has_value();
}

const std::string& PendingCall::msg_id() const { return state_->msg_id; }
const std::string& PendingCall::worker() const { return state_->worker; }

Client::Client(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Client::~Client() {
  impl_->connection.Shutdown();
  // A caller still waiting on another thread is the caller's bug; pending calls fail.
  impl_->Close(Status::PeerGone("the client of worker '" + impl_->worker + "' was closed"));
}

Result<std::unique_ptr<Client>> Client::FromFd(int fd, std::string worker) {
  if (fd < 0 || fcntl(fd, F_GETFD) < 0) {
    return Status::InvalidArgument("fd " + std::to_string(fd) + " for worker '" + worker +
                                   "' is not an open file descriptor");
  }
  (void)fcntl(fd, F_SETFD, FD_CLOEXEC);  // not inherited by what this process starts
  return std::unique_ptr<Client>(
      new Client(std::make_shared<Impl>(Connection::FromSocket(UniqueFd(fd)), std::move(worker))));
}

Result<std::unique_ptr<Client>> Client::FromFds(ControlFds fds, std::string worker) {
  if (fds.read_fd == fds.write_fd) return FromFd(fds.read_fd, std::move(worker));
  for (int fd : {fds.read_fd, fds.write_fd}) {
    if (fd < 0 || fcntl(fd, F_GETFD) < 0) {
      return Status::InvalidArgument("fd " + std::to_string(fd) + " for worker '" + worker +
                                     "' is not an open file descriptor");
    }
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  return std::unique_ptr<Client>(new Client(std::make_shared<Impl>(
      Connection::FromFds(UniqueFd(fds.read_fd), UniqueFd(fds.write_fd)), std::move(worker))));
}

Result<std::unique_ptr<Client>> Client::ConnectUnix(std::string_view path, std::string worker) {
  QUIVER_ASSIGN_OR_RETURN(Connection connection, Connection::ConnectUnix(path));
  if (worker.empty()) worker = std::string(path);
  return std::unique_ptr<Client>(
      new Client(std::make_shared<Impl>(std::move(connection), std::move(worker))));
}

Result<std::unique_ptr<Client>> Client::ConnectTcp(uint16_t port, std::string_view token) {
  QUIVER_ASSIGN_OR_RETURN(Connection connection, Connection::ConnectTcp(port));
  const std::string name = "127.0.0.1:" + std::to_string(port);
  // Authenticate before the reader thread starts: the first line decides.
  Envelope auth = MakeEnvelope(kCmdAuth, {{"token", std::string(token)}});
  QUIVER_RETURN_IF_ERROR(connection.WriteLine(Serialize(auth)));
  QUIVER_ASSIGN_OR_RETURN(std::optional<std::string> line,
                          connection.ReadLine(std::chrono::seconds(10)));
  if (!line) return Status::PeerGone(name + " closed the connection before answering CMD_AUTH");
  ParseOutcome answer = ParseEnvelope(*line);
  if (!answer.ok()) {
    return Status::InvalidArgument(name + " answered CMD_AUTH with " + answer.error.code + ": " +
                                   answer.error.message);
  }
  if (answer.envelope->type == kResErrorV2) return StatusFromError(*answer.envelope);
  if (answer.envelope->type != kResOk) {
    return Status::InvalidArgument(name + " answered CMD_AUTH with " + answer.envelope->type);
  }
  return std::unique_ptr<Client>(new Client(std::make_shared<Impl>(std::move(connection), name)));
}

Result<std::unique_ptr<Client>> Client::ForWorker(std::string_view name) {
  QUIVER_ASSIGN_OR_RETURN(std::vector<WorkerFd> workers, ControlWorkersFromEnvironment());
  std::string names;
  for (const WorkerFd& w : workers) {
    if (w.name == name) return FromFds(w.fds, w.name);
    names += (names.empty() ? "" : ", ") + w.name;
  }
  return Status::NotFound("this node does not command a worker '" + std::string(name) +
                          "'; it commands " + names);
}

Result<PendingCall> Client::Send(Envelope command) {
  if (IsResponse(command.type)) {
    return Status::InvalidArgument(command.type + " is a response; a client sends CMD_* commands");
  }
  QUIVER_RETURN_IF_ERROR(ValidateTypeName(command.type));
  if (command.msg_id.empty()) command.msg_id = NewMsgId();
  auto state = std::make_shared<PendingCall::State>();
  state->msg_id = command.msg_id;
  state->type = command.type;
  state->worker = impl_->worker;
  state->client = impl_;
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->closed) {
      return Status::PeerGone("worker '" + impl_->worker +
                              "' is gone: its control connection closed");
    }
    if (!impl_->pending.emplace(command.msg_id, state).second) {
      return Status::InvalidArgument("msg_id " + command.msg_id + " is already in flight");
    }
  }
  Status written;
  {
    std::lock_guard lock(impl_->write_mu);
    written = impl_->connection.WriteLine(Serialize(command));
  }
  // Take in answers already there while nobody waits, so that a caller sending many commands
  // before waiting never lets them fill the connection.
  {
    std::unique_lock lock(impl_->mu);
    if (!impl_->reading && !impl_->closed) {
      pollfd readable{impl_->connection.read_fd(), POLLIN, 0};
      if (::poll(&readable, 1, 0) > 0) {
        impl_->reading = true;
        lock.unlock();
        impl_->ReadOne(std::chrono::milliseconds(1));
        lock.lock();
        impl_->reading = false;
        impl_->cv.notify_all();
      }
    }
  }
  if (!written.ok()) {
    std::lock_guard lock(impl_->mu);
    impl_->pending.erase(command.msg_id);
    return written.Wrap(ErrorCode::kPeerGone,
                        "cannot send " + command.type + " to worker '" + impl_->worker + "'");
  }
  return PendingCall(std::move(state));
}

Result<Envelope> Client::Call(Envelope command, std::chrono::milliseconds timeout) {
  QUIVER_ASSIGN_OR_RETURN(PendingCall call, Send(std::move(command)));
  return call.Wait(timeout);
}

size_t Client::in_flight() const {
  std::lock_guard lock(impl_->mu);
  return impl_->pending.size();
}

bool Client::connected() const {
  std::lock_guard lock(impl_->mu);
  if (impl_->closed) return false;
  // Nobody may be reading: ask the socket whether the worker hung up.
  pollfd fd{impl_->connection.read_fd(), POLLRDHUP, 0};
  return !(::poll(&fd, 1, 0) > 0 && (fd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0);
}

const std::string& Client::worker() const { return impl_->worker; }

}  // namespace quiver::control
