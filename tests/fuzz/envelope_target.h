// The envelope target: ParseEnvelope (src/control/envelope.cc) on the input as one line, the
// line reader of src/control/connection.cc on the same bytes as a stream, each checked
// against what it promises (envelope_oracle.h; a model of Connection::ReadLine), and the
// control-connection variables (ParseControlFds, ParseControlWorkers: what a node reads from
// QUIVER_CONTROL / QUIVER_CONTROL_WORKERS), which must round-trip through their Format.
// Run by envelope_fuzzer.cc; replayed by tests/fuzz_regression_test.cc.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/unique_fd.h"
#include "control/connection.h"
#include "quiver/control.h"
#include "quiver/envelope.h"
#include "envelope_oracle.h"
#include "fuzz_support.h"
#include "quiver/status.h"

namespace quiver::fuzz {

// The bytes as a stream through Connection::ReadLine (limit `max_line`), checked against a
// model of what it promises: each complete line back as is, one kCapacityExceeded per line
// longer than the limit, kPeerGone for a short unterminated tail, then end of stream.
inline void FuzzLineReader(std::string_view bytes, size_t max_line) {
  int fds[2];
  QUIVER_FUZZ_SETUP(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0,
                    std::strerror(errno));
  UniqueFd writer(fds[1]);
  control::Connection reader = control::Connection::FromSocket(UniqueFd(fds[0]), max_line);
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(writer.get(), bytes.data() + written, bytes.size() - written);
    QUIVER_FUZZ_SETUP(n > 0, std::strerror(errno));
    written += static_cast<size_t>(n);
  }
  writer.Reset();

  // The model.
  struct Expected {
    bool line;  // else an error of `code`
    ErrorCode code;
    std::string_view text;
  };
  std::vector<Expected> expected;
  std::string_view rest = bytes;
  for (size_t nl; (nl = rest.find('\n')) != std::string_view::npos; rest.remove_prefix(nl + 1)) {
    const std::string_view line = rest.substr(0, nl);
    if (line.size() > max_line) {
      expected.push_back({false, ErrorCode::kCapacityExceeded, {}});
    } else {
      expected.push_back({true, ErrorCode::kOk, line});
    }
  }
  if (!rest.empty()) {
    expected.push_back(
        {false, rest.size() > max_line ? ErrorCode::kCapacityExceeded : ErrorCode::kPeerGone, {}});
  }

  for (size_t i = 0;; ++i) {
    QUIVER_FUZZ_CHECK(i <= expected.size(), "ReadLine returned more than the model");
    Result<std::optional<std::string>> got = reader.ReadLine();
    const std::string where = "ReadLine #" + std::to_string(i);
    if (i == expected.size()) {
      QUIVER_FUZZ_CHECK(got.ok() && !got->has_value(),
                        where + ": expected the end of the stream, got " +
                            (got.ok() ? "a line" : StatusText(got.status())));
      break;
    }
    const Expected& e = expected[i];
    if (e.line) {
      QUIVER_FUZZ_CHECK(got.ok() && got->has_value() && **got == e.text,
                        where + ": expected a line of " + std::to_string(e.text.size()) +
                            " bytes, got " +
                            (got.ok() ? (got->has_value() ? "another line" : "end of stream")
                                      : StatusText(got.status())));
      CheckEnvelopeOutcome(control::ParseEnvelope(**got));
    } else {
      QUIVER_FUZZ_CHECK(!got.ok() && got.status().code() == e.code,
                        where + ": expected " + std::string(ErrorCodeName(e.code)) + ", got " +
                            (got.ok() ? "a line or end" : StatusText(got.status())));
    }
  }
}

// What a node reads from its environment: parsed values are sane and survive a round trip.
inline void FuzzControlVariables(std::string_view text) {
  if (text.size() > 4096) return;
  Result<control::ControlFds> fds = control::ParseControlFds(text);
  if (fds.ok()) {
    QUIVER_FUZZ_CHECK(fds->read_fd >= 0 && fds->write_fd >= 0, "negative fd accepted");
    auto again = control::ParseControlFds(control::FormatControlFds(*fds));
    QUIVER_FUZZ_CHECK(again.ok() && *again == *fds, "ControlFds does not round-trip");
  } else {
    QUIVER_FUZZ_CHECK(fds.status().code() == ErrorCode::kInvalidArgument,
                      StatusText(fds.status()));
  }
  Result<std::vector<control::WorkerFd>> workers = control::ParseControlWorkers(text);
  if (workers.ok()) {
    for (size_t i = 0; i < workers->size(); ++i) {
      const control::WorkerFd& w = (*workers)[i];
      QUIVER_FUZZ_CHECK(!w.name.empty() && w.fds.read_fd >= 0 && w.fds.write_fd >= 0,
                        "a worker entry without name or fds accepted");
      for (size_t j = 0; j < i; ++j) {
        QUIVER_FUZZ_CHECK((*workers)[j].name != w.name, "a worker named twice accepted");
      }
    }
    auto again = control::ParseControlWorkers(control::FormatControlWorkers(*workers));
    QUIVER_FUZZ_CHECK(again.ok() && *again == *workers, "worker list does not round-trip");
  } else {
    QUIVER_FUZZ_CHECK(workers.status().code() == ErrorCode::kInvalidArgument,
                      StatusText(workers.status()));
  }
}

inline void FuzzEnvelope(const uint8_t* data, size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  CheckEnvelopeOutcome(control::ParseEnvelope(line));
  FuzzControlVariables(line);
  // The same bytes as a stream of lines, with a small limit so long lines are common.
  if (size <= 8192) FuzzLineReader(line, 256);
}

}  // namespace quiver::fuzz
