#include "common/fork_generation.h"

#include <pthread.h>

#include <atomic>

namespace quiver {
namespace {

std::atomic<uint64_t> g_generation{0};

void CountFork() { g_generation.fetch_add(1, std::memory_order_relaxed); }

// Registered while the program starts (this file is linked in by any use of ForkGeneration,
// and g_generation is constant-initialized, so no order matters): no guard on the path of
// every loan, publish and receive, which ask for the generation.
[[maybe_unused]] const bool g_registered = pthread_atfork(nullptr, nullptr, &CountFork) == 0;

}  // namespace

uint64_t ForkGeneration() { return g_generation.load(std::memory_order_relaxed); }

}  // namespace quiver
