// HandleResolver: safe handles to the samples they name, held until dropped.
#include <algorithm>

#include "quiver/control.h"

namespace quiver::control {

struct HandleResolver::Watched {
  Watched(Channel c, Subscriber s, uint64_t first)
      : channel(std::move(c)), subscriber(std::move(s)), next(first) {}
  Channel channel;
  std::mutex mu;  // guards all below
  Subscriber subscriber;
  std::map<uint64_t, Sample> held;  // received and not resolved yet, by sequence
  uint64_t next;                    // samples before this one were received, or never will be
  bool publisher_gone = false;
};

HandleResolver::HandleResolver() = default;
HandleResolver::~HandleResolver() = default;

Status HandleResolver::Watch(Channel channel) {
  std::lock_guard lock(mu_);
  if (watched_.count(channel.name()) != 0) return Status::OK();
  // Samples published before the subscriber exists never reach it: remember where they end.
  const uint64_t first = channel.Stats().published;
  QUIVER_ASSIGN_OR_RETURN(Subscriber subscriber, channel.CreateSubscriber());
  const std::string name = channel.name();
  watched_.emplace(name,
                   std::make_shared<Watched>(std::move(channel), std::move(subscriber), first));
  return Status::OK();
}

Result<Sample> HandleResolver::Resolve(const ShmHandle& handle, std::chrono::milliseconds wait) {
  const std::string what = "handle to sample " +
                           (handle.sequence ? std::to_string(*handle.sequence) : "?") +
                           " of channel '" + handle.segment_id.substr(0, 80) + "'";
  if (!handle.generation || !handle.sequence) {
    return Status::InvalidArgument(
        "the " + what +
        " names no generation and sequence: only a safe handle (HandleForLast) "
        "can be resolved");
  }
  std::shared_ptr<Watched> w;
  {
    std::lock_guard lock(mu_);
    auto it = watched_.find(handle.segment_id);
    if (it == watched_.end()) {
      std::string names;
      for (const auto& [n, ww] : watched_) names += (names.empty() ? "" : ", ") + n;
      return Status::NotFound(
          "cannot resolve the " + what + ": this resolver does not watch it (" +
          (names.empty() ? std::string("it watches none") : "it watches " + names) +
          "; Watch the channel before its samples are published)");
    }
    w = it->second;
  }
  const uint64_t sequence = *handle.sequence;
  if (Status range = CheckDataRange(handle.offset, handle.size, w->channel.capacity());
      !range.ok()) {
    return range.Wrap(ErrorCode::kHandleOutOfRange, "the " + what + " does not fit the channel");
  }
  std::lock_guard lock(w->mu);
  if (*handle.generation != w->channel.generation()) {
    return Status::StaleHandle("the " + what + " is for generation " +
                               std::to_string(*handle.generation) + " of the channel, now " +
                               std::to_string(w->channel.generation()) +
                               " (it was made anew: its samples are gone)");
  }
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    if (auto it = w->held.find(sequence); it != w->held.end()) {
      if (handle.offset != it->second.offset() || handle.size != it->second.size()) {
        return Status::HandleOutOfRange(
            "the " + what + " says bytes [" + std::to_string(handle.offset) + ", +" +
            std::to_string(handle.size) + "), the sample is [" +
            std::to_string(it->second.offset()) + ", +" + std::to_string(it->second.size()) + ")");
      }
      Sample sample = std::move(it->second);
      w->held.erase(it);
      return sample;
    }
    if (sequence < w->next) {
      return Status::StaleHandle("the " + what +
                                 " names a sample that is no longer held: resolved already, "
                                 "published before the channel was watched, or dropped");
    }
    if (w->publisher_gone) {
      return Status::StaleHandle("the " + what +
                                 " names a sample that was never published: its publisher is gone");
    }
    const auto left = deadline - std::chrono::steady_clock::now();
    Result<Sample> sample = w->subscriber.Receive(std::max(left, decltype(left)::zero()));
    if (!sample.ok()) {
      if (sample.status().code() == ErrorCode::kPeerGone) {
        w->publisher_gone = true;
        continue;
      }
      if (sample.status().code() == ErrorCode::kTimeout) {
        return sample.status().Wrap(
            ErrorCode::kTimeout,
            "the " + what + " has not arrived within " + std::to_string(wait.count()) + " ms");
      }
      return sample.status().Wrap(sample.status().code(), "cannot resolve the " + what);
    }
    w->next = std::max(w->next, sample->sequence() + 1);
    w->held.emplace(sample->sequence(), std::move(sample).value());
  }
}

void HandleResolver::Forget(const ShmHandle& handle) {
  std::shared_ptr<Watched> w;
  {
    std::lock_guard lock(mu_);
    auto it = watched_.find(handle.segment_id);
    if (it == watched_.end() || !handle.sequence) return;
    w = it->second;
  }
  std::lock_guard lock(w->mu);
  const uint64_t upto = *handle.sequence;
  // Samples still queued for the resolver up to the handle's are taken off and dropped too.
  while (w->next <= upto) {
    Result<std::optional<Sample>> queued = w->subscriber.TryReceive();
    if (!queued.ok() || !queued->has_value()) break;
    const uint64_t sequence = (*queued)->sequence();
    w->next = std::max(w->next, sequence + 1);
    if (sequence > upto) w->held.emplace(sequence, std::move(**queued));
  }
  w->held.erase(w->held.begin(), w->held.upper_bound(upto));
  w->next = std::max(w->next, upto + 1);
}

}  // namespace quiver::control
