// Waiting without the GIL and without deafness to Ctrl-C: blocking calls release the GIL
// and wake every kSignalSlice to run Python's signal handlers, then go on waiting until the
// caller's timeout. Used by the publisher and subscriber bindings.
#pragma once

#include <nanobind/nanobind.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <type_traits>

#include "common/duration.h"
#include "errors.h"
#include "quiver/channel.h"
#include "quiver/status.h"

namespace quiver::python {

using Clock = std::chrono::steady_clock;
inline constexpr auto kSignalSlice = std::chrono::milliseconds(100);

/// `start` plus `timeout` seconds (negative counts as 0); never, for no timeout.
inline Clock::time_point DeadlineAfter(Clock::time_point start, std::optional<double> timeout) {
  if (!timeout) return Clock::time_point::max();
  return start + std::chrono::duration_cast<Clock::duration>(
                     std::chrono::duration<double>(std::max(*timeout, 0.0)));
}

/// Runs Python's signal handlers; raises what one raised (KeyboardInterrupt for Ctrl-C).
inline void RunSignalHandlers() {
  if (PyErr_CheckSignals() != 0) throw nanobind::python_error();
}

/// Runs `op` (a call that may wait for room, its loans bounded by kSignalSlice) without the
/// GIL, again and again while it times out, running Python's signal handlers in between, so
/// Ctrl-C interrupts a blocked publish within a slice; gives up at `timeout` (none: never)
/// with a TimeoutError naming `channel`. Returns op's Status or Result.
///
/// An `op` that takes a LoanWait (the typed loans) is first tried with LoanWait::kNo and the
/// GIL held: with room, the usual case, a loan takes about 0.1 us, less than handing the GIL
/// over and back; only without room does it wait as above (LoanWait::kForRoom).
template <typename Op>
auto Interruptibly(const std::string& channel, std::optional<double> timeout, Op op) {
  constexpr bool kCanTry = std::is_invocable_v<Op, LoanWait>;
  if constexpr (kCanTry) {
    auto tried = op(LoanWait::kNo);
    if (tried.ok() || tried.status().code() != ErrorCode::kChannelFull) return tried;
  }
  const auto start = Clock::now();
  const auto deadline = DeadlineAfter(start, timeout);
  for (;;) {
    auto result = [&] {
      nanobind::gil_scoped_release release;
      if constexpr (kCanTry) {
        return op(LoanWait::kForRoom);
      } else {
        return op();
      }
    }();
    const Status& st = [&]() -> const Status& {
      if constexpr (std::is_same_v<decltype(result), Status>) {
        return result;
      } else {
        return result.status();
      }
    }();
    if (st.code() != ErrorCode::kTimeout) return result;
    RunSignalHandlers();
    if (Clock::now() >= deadline) {
      Throw(Status::Timeout(
          "no room in channel '" + channel + "' within " +
          FormatDuration(std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - start)) +
          " (loan_timeout): its subscribers hold it full"));
    }
  }
}

/// Runs `op(slice)`, a wait of at most `slice` that returns a Result, without the GIL, slice
/// after slice, running Python's signal handlers in between, until it gives a value or an
/// error other than kTimeout, or `timeout` seconds (none: never) have passed: then kTimeout
/// saying that `what` did not happen within the whole time asked for.
template <typename Op>
auto WaitInSlices(std::optional<double> timeout, const std::string& what, Op op)
    -> decltype(op(std::chrono::milliseconds(0))) {
  const auto start = Clock::now();
  const auto deadline = DeadlineAfter(start, timeout);
  for (;;) {
    const auto left = deadline - std::min(Clock::now(), deadline);
    const auto slice = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::min<Clock::duration>(kSignalSlice, left));
    auto result = [&] {
      nanobind::gil_scoped_release release;
      return op(slice);
    }();
    if (result.ok() || result.status().code() != ErrorCode::kTimeout) return result;
    if (Clock::now() >= deadline) {
      return Status::Timeout(
          what + " within " +
          FormatDuration(std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - start)));
    }
    RunSignalHandlers();
  }
}

}  // namespace quiver::python
