#include "common/fork_generation.h"

#include <pthread.h>

#include <atomic>

namespace quiver {
namespace {

std::atomic<uint64_t> g_generation{0};

void CountFork() { g_generation.fetch_add(1, std::memory_order_relaxed); }

}  // namespace

uint64_t ForkGeneration() {
  // Registered by the first call, which comes before any object that records a generation.
  static const bool registered = [] { return pthread_atfork(nullptr, nullptr, &CountFork) == 0; }();
  (void)registered;
  return g_generation.load(std::memory_order_relaxed);
}

}  // namespace quiver
