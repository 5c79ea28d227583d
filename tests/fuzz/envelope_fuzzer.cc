// libFuzzer entry point: control envelopes (ParseEnvelope) and the control line reader.
// The target itself is quiver::fuzz::FuzzEnvelope in fuzz_targets.h (shared with
// tests/fuzz_regression_test.cc). Run: scripts/fuzz.sh envelope_fuzzer
#include <cstddef>
#include <cstdint>

#include "fuzz_targets.h"

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  quiver::fuzz::UseSystemMemoryPool();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  quiver::fuzz::FuzzEnvelope(data, size);
  return 0;
}
