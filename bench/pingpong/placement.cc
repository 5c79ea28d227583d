#include "pingpong/placement.h"

#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <new>

namespace quiver::bench::pingpong {

CpuBoard* g_cpu_board = nullptr;

std::string_view PlacementName(Placement p) {
  switch (p) {
    case Placement::kScheduler:
      return "sched";
    case Placement::kApart:
      return "apart";
    case Placement::kTogether:
      return "together";
  }
  return "?";
}

Pinning PinningFromEnv() {
  Pinning pin;
  const char* v = std::getenv("QUIVER_BENCH_PIN");
  if (v != nullptr && std::sscanf(v, "%d,%d", &pin.parent, &pin.child) != 2) pin = {};
  return pin;
}

bool PinTo(int cpu) {
  if (cpu < 0) return true;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof(set), &set) == 0;
}

ScopedPin::ScopedPin(int cpu) {
  if (cpu < 0) return;
  saved_ok_ = sched_getaffinity(0, sizeof(saved_), &saved_) == 0;
  ok_ = saved_ok_ && PinTo(cpu);
}

ScopedPin::~ScopedPin() {
  if (saved_ok_) sched_setaffinity(0, sizeof(saved_), &saved_);
}

bool MapCpuBoard() {
  void* board =
      mmap(nullptr, sizeof(CpuBoard), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (board == MAP_FAILED) {
    std::perror("mmap");
    return false;
  }
  g_cpu_board = new (board) CpuBoard();
  return true;
}

}  // namespace quiver::bench::pingpong
