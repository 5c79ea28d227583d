// libFuzzer entry point: pipeline files (TOML), schema files and byte sizes.
// The target itself is quiver::fuzz::FuzzPipeline in pipeline_target.h (shared with
// tests/fuzz_regression_test.cc). Run: scripts/fuzz.sh pipeline_fuzzer
#include <cstddef>
#include <cstdint>

#include "pipeline_target.h"

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  quiver::fuzz::UseSystemMemoryPool();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  quiver::fuzz::FuzzPipeline(data, size);
  return 0;
}
