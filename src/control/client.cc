// Client: the commanding end of one control connection. A reader thread matches results to
// the calls waiting for them by msg_id.
#include <fcntl.h>

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
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Result<Envelope>> result;  // guarded by mu

  void Complete(Result<Envelope> r) {
    {
      std::lock_guard lock(mu);
      if (result) return;
      result.emplace(std::move(r));
    }
    cv.notify_all();
  }
};

Result<Envelope> PendingCall::Wait(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(state_->mu);
  if (!state_->cv.wait_for(lock, timeout, [&] { return state_->result.has_value(); })) {
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
  std::lock_guard lock(state_->mu);
  return state_->result.has_value();
}

const std::string& PendingCall::msg_id() const { return state_->msg_id; }
const std::string& PendingCall::worker() const { return state_->worker; }

struct Client::Impl {
  Impl(Connection c, std::string w) : connection(std::move(c)), worker(std::move(w)) {}

  void ReadLoop() {
    Status why = Status::PeerGone("worker '" + worker + "' closed its control connection");
    for (;;) {
      Result<std::optional<std::string>> line = connection.ReadLine();
      if (!line.ok()) {
        // A line too long is skipped and reported once; the connection goes on.
        if (line.status().code() == ErrorCode::kCapacityExceeded) continue;
        why = line.status().Wrap(ErrorCode::kPeerGone,
                                 "the control connection to worker '" + worker + "' broke");
        break;
      }
      if (!line->has_value()) break;
      ParseOutcome parsed = ParseEnvelope(**line);
      const std::string& id = parsed.ok() ? parsed.envelope->msg_id : parsed.error.msg_id;
      std::shared_ptr<PendingCall::State> call;
      {
        std::lock_guard lock(mu);
        auto it = pending.find(id);
        if (it != pending.end()) {
          call = std::move(it->second);
          pending.erase(it);
        }
      }
      if (!call) continue;  // no call waits for it (unreadable, or answered already)
      if (parsed.ok()) {
        call->Complete(std::move(*parsed.envelope));
      } else {
        call->Complete(Status::InvalidArgument("worker '" + worker + "' answered " + call->type +
                                               " with a line that is not an envelope: " +
                                               parsed.error.code + ": " + parsed.error.message));
      }
    }
    std::unordered_map<std::string, std::shared_ptr<PendingCall::State>> orphans;
    {
      std::lock_guard lock(mu);
      closed = true;
      orphans.swap(pending);
    }
    for (auto& [id, call] : orphans) {
      call->Complete(why.Wrap(ErrorCode::kPeerGone, "worker '" + worker + "' is gone with " +
                                                        call->type + " (msg_id " + id +
                                                        ") unanswered"));
    }
  }

  Connection connection;
  const std::string worker;
  std::thread reader;
  std::mutex write_mu;  // one writer at a time
  mutable std::mutex mu;
  std::unordered_map<std::string, std::shared_ptr<PendingCall::State>> pending;  // by msg_id
  bool closed = false;
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  impl_->reader = std::thread([impl = impl_.get()] { impl->ReadLoop(); });
}

Client::~Client() {
  impl_->connection.Shutdown();
  if (impl_->reader.joinable()) impl_->reader.join();
}

Result<std::unique_ptr<Client>> Client::FromFd(int fd, std::string worker) {
  if (fd < 0 || fcntl(fd, F_GETFD) < 0) {
    return Status::InvalidArgument("fd " + std::to_string(fd) + " for worker '" + worker +
                                   "' is not an open file descriptor");
  }
  (void)fcntl(fd, F_SETFD, FD_CLOEXEC);  // not inherited by what this process starts
  return std::unique_ptr<Client>(
      new Client(std::make_unique<Impl>(Connection::FromSocket(UniqueFd(fd)), std::move(worker))));
}

Result<std::unique_ptr<Client>> Client::ConnectUnix(std::string_view path) {
  QUIVER_ASSIGN_OR_RETURN(Connection connection, Connection::ConnectUnix(path));
  return std::unique_ptr<Client>(
      new Client(std::make_unique<Impl>(std::move(connection), std::string(path))));
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
  return std::unique_ptr<Client>(new Client(std::make_unique<Impl>(std::move(connection), name)));
}

Result<std::unique_ptr<Client>> Client::ForWorker(std::string_view name) {
  const char* env = std::getenv(kControlWorkersEnv);
  if (env == nullptr || *env == '\0') {
    return Status::NotFound(std::string("this process commands no workers: ") + kControlWorkersEnv +
                            " is not set (run it under `quiver run` as a node whose "
                            "pipeline entry says controls = [\"" +
                            std::string(name) + "\"])");
  }
  QUIVER_ASSIGN_OR_RETURN(std::vector<WorkerFd> workers, ParseControlWorkers(env));
  std::string names;
  for (const WorkerFd& w : workers) {
    if (w.name == name) return FromFd(w.fd, w.name);
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
  return !impl_->closed;
}

const std::string& Client::worker() const { return impl_->worker; }

}  // namespace quiver::control
