// Rendezvous: a consumer waiting for its channel to be created, two processes that may
// each be first (open or create), and a producer waiting for its subscribers. Waiting here
// is polling with a growing pause (0.2 to 5 ms): rendezvous happen once per run, and a
// futex for them would cost every attach and publish a wake-up.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <string>
#include <thread>

#include "channel/channel_state.h"
#include "common/duration.h"
#include "quiver/channel.h"

namespace quiver {
namespace {

using Clock = std::chrono::steady_clock;

/// Sleeps the next pause (doubling from 200 us to 5 ms), never past `deadline`.
void Pause(std::chrono::microseconds& pause, Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now());
  std::this_thread::sleep_for(std::min(pause, std::max(left, std::chrono::microseconds(0))));
  pause = std::min(pause * 2, std::chrono::microseconds(5000));
}

std::string Within(std::chrono::nanoseconds timeout) {
  return " within " + FormatDuration(timeout);
}

}  // namespace

Result<Channel> Channel::Open(std::string_view name, std::chrono::nanoseconds wait) {
  const auto deadline = Clock::now() + wait;
  std::chrono::microseconds pause(200);
  for (;;) {
    Result<Channel> channel = Open(name);
    if (channel.ok() || channel.status().code() != ErrorCode::kNotFound) return channel;
    if (Clock::now() >= deadline) {
      return Status::Timeout("channel '" + std::string(name) + "' was not created" + Within(wait) +
                             " (" + channel.status().message() + ")");
    }
    Pause(pause, deadline);
  }
}

Result<Channel> Channel::OpenOrCreate(std::string_view name, const ChannelOptions& options) {
  // Open first: creating over a live channel is refused anyway, and opening is the common
  // case of the second process. Between the two calls the other process may create (then
  // Create says kAlreadyExists and we open again) or close the last handle (then Open says
  // kNotFound and we create again); a few rounds settle any interleaving.
  Status last = Status::OK();
  for (int round = 0; round < 8; ++round) {
    Result<Channel> opened = Open(name);
    if (opened.ok()) {
      if (options.type_descriptor.empty()) return opened;
      for (uint32_t v = 1; v <= opened->type_versions(); ++v) {
        QUIVER_ASSIGN_OR_RETURN(std::string_view descriptor, opened->TypeDescriptor(v));
        if (descriptor == options.type_descriptor) return opened;
      }
      return Status::SchemaMismatch("channel '" + std::string(name) + "' exists already and " +
                                    (opened->type_versions() == 0
                                         ? std::string("carries no schema")
                                         : "has another schema (none of its " +
                                               std::to_string(opened->type_versions()) +
                                               " versions is the one given)") +
                                    "; open it without a schema, or use another name");
    }
    if (opened.status().code() != ErrorCode::kNotFound) return opened.status();
    Result<Channel> created = Create(name, options);
    if (created.ok() || created.status().code() != ErrorCode::kAlreadyExists) return created;
    last = created.status();
  }
  return last;
}

Status Publisher::WaitForSubscribers(uint32_t count, std::chrono::nanoseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::chrono::microseconds pause(200);
  for (;;) {
    const uint32_t attached = subscriber_count();
    if (attached >= count) return Status::OK();
    if (Clock::now() >= deadline) {
      return Status::Timeout(std::to_string(attached) + " of " + std::to_string(count) +
                             " subscribers attached to channel '" + channel().name() + "'" +
                             Within(timeout));
    }
    Pause(pause, deadline);
  }
}

uint32_t Publisher::expected_subscribers() const {
  // Written by the supervisor; anything unreadable counts as "not in a pipeline".
  Result<std::vector<internal::EnvEntry>> entries = internal::ReadEnvList(kPipelineSubscribersEnv);
  if (!entries.ok()) return 1;
  const std::string& name = channel().name();
  for (const internal::EnvEntry& entry : *entries) {
    uint32_t count = 0;
    if (entry.name == name &&
        std::from_chars(entry.value.data(), entry.value.data() + entry.value.size(), count).ec ==
            std::errc()) {
      return count;
    }
  }
  return 1;
}

}  // namespace quiver
