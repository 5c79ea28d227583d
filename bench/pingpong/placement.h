// Where the two processes of a case run: the three placements, the CPUs they are pinned to,
// and the shared page on which the echo child says which CPU it ran on. Pinning changes the
// calling process only; the page is written by the child and read by the parent.
#pragma once

#include <sched.h>

#include <atomic>
#include <string_view>

namespace quiver::bench::pingpong {

// On a small machine the placements differ in kind, not degree: on one CPU a blocking
// wake-up is a context switch and a busy-poller starves the very process it waits for; on
// two CPUs every blocking wake-up is a cross-CPU wake-up of a sleeping CPU.
enum class Placement { kScheduler, kApart, kTogether };
constexpr Placement kPlacements[] = {Placement::kScheduler, Placement::kApart,
                                     Placement::kTogether};

// Returns the placement's name in benchmark names: "sched", "apart" or "together".
std::string_view PlacementName(Placement p);

// The CPUs of the parent and of the child when pinned apart; pinned together, both use
// `parent`.
struct Pinning {
  int parent = 0;
  int child = 1;
};

// Returns QUIVER_BENCH_PIN=P,C, or the default 0,1 if it is unset or malformed.
Pinning PinningFromEnv();

// Pins the calling process to `cpu` (nothing if negative). Returns false if it cannot.
bool PinTo(int cpu);

/// Pins the calling process to one CPU for its lifetime, then restores its affinity.
class ScopedPin {
 public:
  explicit ScopedPin(int cpu);
  ScopedPin(const ScopedPin&) = delete;
  ScopedPin& operator=(const ScopedPin&) = delete;
  ~ScopedPin();
  bool ok() const { return ok_; }

 private:
  cpu_set_t saved_{};
  bool saved_ok_ = false;
  bool ok_ = true;
};

// A spinning receiver that shares its CPU with the process it waits for delays that very
// process, so each case reports how often parent and child sat on the same CPU. The child
// publishes its CPU number here: one page shared by every child, mapped before any fork.
struct CpuBoard {
  alignas(64) std::atomic<int> child_cpu{-1};
};
extern CpuBoard* g_cpu_board;

// Maps g_cpu_board; call once, before the first fork. Returns false (after perror) if the
// mapping fails.
bool MapCpuBoard();

}  // namespace quiver::bench::pingpong
