// libFuzzer entry point: shm_handle resolution (CheckDataRange, ResolveHandle) and channel
// header validation. The target itself is quiver::fuzz::FuzzShmHandle in shm_handle_target.h
// (shared with tests/fuzz_regression_test.cc). Run: scripts/fuzz.sh shm_handle_fuzzer
#include <cstddef>
#include <cstdint>

#include "shm_handle_target.h"

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  quiver::fuzz::UseSystemMemoryPool();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  quiver::fuzz::FuzzShmHandle(data, size);
  return 0;
}
