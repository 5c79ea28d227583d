// Endpoint: one side of a ping-pong, sending messages that carry a sequence number and
// receiving the other side's. One per process; not thread-safe.
#pragma once

#include <sched.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "shm/cpu.h"

namespace quiver::bench::pingpong {

using Clock = std::chrono::steady_clock;

// The sequence number that tells the echo child to exit.
constexpr uint64_t kStop = ~uint64_t{0};
// A receiver that hears nothing for this long gives up: a lost wake-up shows as a failed
// case, not as a hung run.
constexpr auto kSilenceLimit = std::chrono::seconds(10);
// Blocking waits come back this often to check that the peer process still lives.
constexpr auto kLivenessSlice = std::chrono::milliseconds(100);
// Busy-pollers yield the CPU after this long without a message, as Quiver's own spin gives
// up after its default 20 us. While the two processes run on different CPUs the peer answers
// long before; when both share one CPU, a pure busy-poll would hold it for a whole time slice
// (4 ms here) while the peer it waits for cannot run.
constexpr auto kSpinBeforeYield = std::chrono::microseconds(20);

class Endpoint {
 public:
  virtual ~Endpoint() = default;
  /// Produces and sends one message carrying `seq`. False on failure (see error()).
  virtual bool Send(uint64_t seq) = 0;
  /// Waits for the next message. Nullopt on failure, or if the peer is gone.
  virtual std::optional<uint64_t> Receive() = 0;
  const std::string& error() const { return error_; }

 protected:
  explicit Endpoint(std::function<bool()> peer_alive) : peer_alive_(std::move(peer_alive)) {}
  // Called from the slow path of a wait. False (with error_ set) once the wait should end.
  bool KeepWaiting(Clock::time_point since);

  // Busy-pollers call this after every empty poll. False (error_ set) once the wait should
  // end. The clock is read every 64 polls only, so the fast path stays a load and a pause;
  // inline, since it is on the measured path.
  struct PollState {
    uint64_t polls = 0;
    Clock::time_point start{}, last_yield{}, last_check{};
  };
  bool PollAgain(PollState& st) {
    quiver::shm::CpuRelax();
    if (++st.polls % 64 != 0) return true;
    const Clock::time_point now = Clock::now();
    if (st.polls == 64) {
      st.start = st.last_yield = st.last_check = now;
      return true;
    }
    if (now - st.last_yield >= kSpinBeforeYield) {
      sched_yield();
      st.last_yield = Clock::now();
    }
    if (now - st.last_check >= kLivenessSlice) {
      st.last_check = now;
      return KeepWaiting(st.start);
    }
    return true;
  }

  std::string error_;
  std::function<bool()> peer_alive_;
};

}  // namespace quiver::bench::pingpong
