// libFuzzer entry point: DecodeMsgpackRecords with a fixed schema.
// The target itself is quiver::fuzz::FuzzMsgpackRecords in msgpack_records_target.h (shared
// with tests/fuzz_regression_test.cc). Run: scripts/fuzz.sh msgpack_records_fuzzer
#include <cstddef>
#include <cstdint>

#include "msgpack_records_target.h"

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  quiver::fuzz::UseSystemMemoryPool();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  quiver::fuzz::FuzzMsgpackRecords(data, size);
  return 0;
}
