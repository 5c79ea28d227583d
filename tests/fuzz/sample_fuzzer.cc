// libFuzzer entry point: typed samples: Arrow batch decoding (kStructure, kFull, projection),
// tensors, audio and image frames. The target itself is quiver::fuzz::FuzzSample in
// sample_target.h (shared with tests/fuzz_regression_test.cc). Run: scripts/fuzz.sh sample_fuzzer
#include <cstddef>
#include <cstdint>

#include "sample_target.h"

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  quiver::fuzz::UseSystemMemoryPool();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  quiver::fuzz::FuzzSample(data, size);
  return 0;
}
