// WorkerPool: one core commanding several workers, with a dispatcher and retries on death.
#include <cstdlib>

#include "quiver/control.h"

namespace quiver::control {

WorkerPool::WorkerPool(Dispatch dispatch) : dispatch_(dispatch) {}

Result<std::unique_ptr<WorkerPool>> WorkerPool::FromEnvironment(Dispatch dispatch) {
  QUIVER_ASSIGN_OR_RETURN(std::vector<WorkerFd> workers, ControlWorkersFromEnvironment());
  auto pool = std::make_unique<WorkerPool>(dispatch);
  for (const WorkerFd& w : workers) {
    QUIVER_ASSIGN_OR_RETURN(std::unique_ptr<Client> client, Client::FromFds(w.fds, w.name));
    pool->Add(std::move(client));
  }
  return pool;
}

void WorkerPool::Add(std::unique_ptr<Client> worker) {
  std::lock_guard lock(mu_);
  workers_.push_back(std::move(worker));
}

Client* WorkerPool::Pick() {
  std::lock_guard lock(mu_);
  const size_t n = workers_.size();
  Client* best = nullptr;
  size_t best_load = 0, best_index = 0;
  for (size_t k = 0; k < n; ++k) {
    const size_t i = (next_ + k) % n;
    Client* c = workers_[i].get();
    if (!c->connected()) continue;
    if (dispatch_ == Dispatch::kRoundRobin) {
      best = c;
      best_index = i;
      break;
    }
    const size_t load = c->in_flight();
    if (best == nullptr || load < best_load) {
      best = c;
      best_load = load;
      best_index = i;
    }
  }
  if (best != nullptr) next_ = best_index + 1;
  return best;
}

Result<Envelope> WorkerPool::Call(const Envelope& command, PoolCallOptions options) {
  const auto deadline = std::chrono::steady_clock::now() + options.timeout;
  Envelope sent = command;
  if (sent.msg_id.empty()) sent.msg_id = NewMsgId();  // the same id on every attempt
  std::optional<Status> lost;                         // why the attempts so far failed
  std::string tried;
  for (int attempt = 0; attempt <= options.retries; ++attempt) {
    Client* worker = Pick();
    if (worker == nullptr) break;
    tried += (tried.empty() ? "" : ", ") + worker->worker();
    Result<Envelope> result = Status::OK();
    bool died = false;
    Result<PendingCall> call = worker->Send(sent);
    if (call.ok()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      result = call->Wait(std::max(left, std::chrono::milliseconds(0)));
      // Its connection ended with the command unanswered (an answer of code PEER_DIED from a
      // live worker is an answer).
      died = !result.ok() && result.status().code() == ErrorCode::kPeerGone && !worker->connected();
    } else {
      // Not even sent: the connection broke (its reader may not have seen the end yet).
      result = call.status();
      died = call.status().code() == ErrorCode::kPeerGone;
    }
    // Only the death of the worker is retried: an answer (an error too) or a timeout means
    // the command may have run, and it must not run twice.
    if (!died) return result;
    lost = lost ? result.status().Wrap(ErrorCode::kPeerGone, lost->ToString()) : result.status();
  }
  std::string what = sent.type + " (msg_id " + sent.msg_id + ")";
  if (!lost) return Status::PeerGone("no live worker to send " + what + " to: all are gone");
  return lost->Wrap(ErrorCode::kPeerGone, what + " was not answered: the workers it went to (" +
                                              tried + ") died with it in flight");
}

size_t WorkerPool::live_workers() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& w : workers_) n += w->connected() ? 1 : 0;
  return n;
}

std::map<std::string, size_t> WorkerPool::load() const {
  std::lock_guard lock(mu_);
  std::map<std::string, size_t> out;
  for (const auto& w : workers_) {
    if (w->connected()) out[w->worker()] = w->in_flight();
  }
  return out;
}

}  // namespace quiver::control
