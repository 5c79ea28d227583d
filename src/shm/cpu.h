// CpuRelax: the busy-wait hint instruction, for spin loops on shared words.
#pragma once

namespace quiver::shm {

/// Tells the CPU this is a spin-wait (x86 `pause`, arm64 `yield`): saves power and lets a
/// sibling hyper-thread run. Returns after some tens of cycles.
inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace quiver::shm
