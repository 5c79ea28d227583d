// What every fuzz target in tests/fuzz/ shares: how a broken promise is reported, the memory
// pool they all use, and a probe that faults on a view reaching past its mapping.
//
// Each target (<name>_target.h, one function run by <name>_fuzzer.cc and replayed by
// tests/fuzz_regression_test.cc under the normal ASan test build, so both run exactly the same
// code) feeds arbitrary bytes to a parser or validator that meets untrusted input, and checks,
// besides "no crash, no leak, no sanitizer report", what the API promises: errors come back as
// a Status of the documented codes, and whatever is accepted is internally consistent (a
// handle maps exactly its bytes, a decoded batch passes ValidateFull and lies inside its
// sample, a parsed envelope serializes and parses back to itself, ...). A broken promise
// aborts with a message: libFuzzer keeps the input, a gtest run fails.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>

#include "quiver/status.h"

namespace quiver::fuzz {

[[noreturn]] inline void Fail(const char* what, const char* file, int line,
                              const std::string& detail) {
  std::fprintf(stderr, "\nquiver fuzz: invariant broken at %s:%d: %s\n  %s\n", file, line, what,
               detail.c_str());
  std::fflush(stderr);
  std::abort();
}

// Checks a promise of the code under test (not of the fuzzer's own setup).
#define QUIVER_FUZZ_CHECK(cond, detail)                                                \
  do {                                                                                 \
    if (!(cond)) ::quiver::fuzz::Fail(#cond, __FILE__, __LINE__, std::string(detail)); \
  } while (false)

// The fuzzer's own setup failed: the machine, not the code under test.
#define QUIVER_FUZZ_SETUP(cond, detail)                                                          \
  do {                                                                                           \
    if (!(cond)) ::quiver::fuzz::Fail("setup: " #cond, __FILE__, __LINE__, std::string(detail)); \
  } while (false)

inline std::string StatusText(const Status& st) { return st.ToString(); }

// Before Arrow's first allocation: the wheel's jemalloc/mimalloc pools are invisible to ASan
// (and to LeakSanitizer); the system pool goes through malloc, which ASan intercepts. The
// fuzzers and the regression test set it here too, so they behave the same however started.
inline void UseSystemMemoryPool() { setenv("ARROW_DEFAULT_MEMORY_POOL", "system", 0); }

// Touches every byte of `bytes` so that a view reaching past its mapping faults here.
inline void Touch(std::span<const std::byte> bytes) {
  uint8_t sum = 0;
  for (std::byte b : bytes) sum = static_cast<uint8_t>(sum + static_cast<uint8_t>(b));
  volatile uint8_t sink = sum;
  (void)sink;
}

}  // namespace quiver::fuzz
