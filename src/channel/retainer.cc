// Retainer (quiver/channel.h): a subscriber that holds a channel's last samples so that late
// joiners with from_oldest get them.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <thread>

#include "quiver/channel.h"

namespace quiver {

struct Retainer::Impl {
  struct Kept {
    Sample sample;
    std::chrono::steady_clock::time_point at;
  };

  Channel channel;
  Subscriber subscriber;
  RetainOptions options;
  size_t max_count = 0;  // the most it may hold: the options', within half the channel
  size_t max_bytes = 0;
  mutable std::mutex mu;  // guards kept and bytes
  std::deque<Kept> kept;
  size_t bytes = 0;
  std::atomic<bool> stop{false};
  std::thread thread;

  Impl(Channel c, Subscriber s, RetainOptions o)
      : channel(std::move(c)), subscriber(std::move(s)), options(o) {
    const ChannelStats stats = channel.Stats();
    max_count = std::max<size_t>(1, stats.max_samples / 2);
    if (options.samples > 0) max_count = std::min<size_t>(max_count, options.samples);
    max_bytes = std::max<size_t>(1, stats.capacity / 2);
  }

  // Drops the oldest while over a limit. Called with mu held.
  void Prune(std::chrono::steady_clock::time_point now) {
    while (!kept.empty() &&
           (kept.size() > max_count || bytes > max_bytes ||
            (options.max_age.count() > 0 && now - kept.front().at > options.max_age))) {
      bytes -= kept.front().sample.size();
      kept.pop_front();  // releases it
    }
  }

  void Run() {
    // A library's thread takes no signal meant for the process (a supervisor reads its own
    // from a signalfd, with them blocked in its thread only).
    sigset_t all;
    sigfillset(&all);
    ::pthread_sigmask(SIG_BLOCK, &all, nullptr);
    bool publisher_gone = false;
    while (!stop.load()) {
      const auto now = std::chrono::steady_clock::now();
      if (publisher_gone) {
        // Keep what there is (a late joiner may still want it); only age it out.
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        std::lock_guard lock(mu);
        Prune(now);
        continue;
      }
      Result<Sample> sample = subscriber.Receive(std::chrono::milliseconds(10));
      std::lock_guard lock(mu);
      if (sample.ok()) {
        bytes += sample->size();
        kept.push_back({std::move(*sample), now});
      } else if (sample.status().code() == ErrorCode::kPeerGone) {
        publisher_gone = true;
      }
      Prune(now);
    }
  }
};

Result<std::unique_ptr<Retainer>> Retainer::Start(Channel channel, RetainOptions options) {
  if (options.samples == 0 && options.max_age.count() <= 0) {
    return Status::InvalidArgument(
        "a retainer keeps the last samples or those of the last seconds: give one of them");
  }
  SubscriberOptions sub_options;
  sub_options.follow_restarts = false;
  QUIVER_ASSIGN_OR_RETURN(Subscriber subscriber, channel.CreateSubscriber(sub_options));
  auto impl = std::make_unique<Impl>(std::move(channel), std::move(subscriber), options);
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->Run(); });
  return std::unique_ptr<Retainer>(new Retainer(std::move(impl)));
}

Retainer::Retainer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Retainer::~Retainer() {
  impl_->stop.store(true);
  if (impl_->thread.joinable()) impl_->thread.join();
}

size_t Retainer::held() const {
  std::lock_guard lock(impl_->mu);
  return impl_->kept.size();
}

}  // namespace quiver
