// libFuzzer entry point: control envelopes (ParseEnvelope) and the control line reader.
// The target itself is quiver::fuzz::FuzzEnvelope in envelope_target.h (shared with
// tests/fuzz_regression_test.cc). Run: scripts/fuzz.sh envelope_fuzzer
#include <cstddef>
#include <cstdint>

#include "envelope_target.h"

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  quiver::fuzz::UseSystemMemoryPool();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  quiver::fuzz::FuzzEnvelope(data, size);
  return 0;
}
