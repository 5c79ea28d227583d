// The fuzz targets of tests/fuzz/*_fuzzer.cc, one function per target, so that the libFuzzer
// binaries and tests/fuzz_regression_test.cc (which replays every seed and every crash found
// under the normal ASan test build) run exactly the same code.
//
// Each target feeds arbitrary bytes to a parser or validator that meets untrusted input, and
// checks, besides "no crash, no leak, no sanitizer report", what the API promises: errors come
// back as a Status of the documented codes, and whatever is accepted is internally consistent
// (a handle maps exactly its bytes, a decoded batch passes ValidateFull and lies inside its
// sample, a parsed envelope serializes and parses back to itself, ...). A broken promise
// aborts with a message: libFuzzer keeps the input, a gtest run fails.
//
// The shared-memory fixtures (channels) are made once per process, on memfds: nothing is
// created in /dev/shm, so a fuzzer killed at any point leaves nothing behind.
#pragma once

#include <arrow/api.h>
#include <arrow/ipc/api.h>
#include <arrow/pretty_print.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "channel/layout.h"
#include "control/connection.h"
#include "control/envelope.h"
#include "control/handle.h"
#include "payload/schema_evolution.h"
#include "quiver/arrow.h"
#include "quiver/channel.h"
#include "quiver/frame.h"
#include "quiver/msgpack_records.h"
#include "quiver/sample_header.h"
#include "quiver/status.h"
#include "quiver/tensor.h"
#include "shm/segment.h"
#include "supervisor/arrow_schema.h"
#include "supervisor/pipeline.h"
#include "supervisor/schema_file.h"

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

// QUIVER_FUZZ_VERBOSE=1: the sample target prints what each decoder made of each input (to
// see what a corpus reaches, e.g. `sample_fuzzer -runs=0 corpus/`).
inline bool Verbose() {
  static const bool verbose = std::getenv("QUIVER_FUZZ_VERBOSE") != nullptr;
  return verbose;
}
template <typename T>
void Report(const char* what, const Result<T>& r) {
  if (Verbose()) {
    std::fprintf(stderr, "  %-12s %s\n", what,
                 r.ok() ? "ok" : r.status().ToString().substr(0, 150).c_str());
  }
}

// Before Arrow's first allocation: the wheel's jemalloc/mimalloc pools are invisible to ASan
// (and to LeakSanitizer); the system pool goes through malloc, which ASan intercepts. The
// fuzzers and the regression test set it here too, so they behave the same however started.
inline void UseSystemMemoryPool() { setenv("ARROW_DEFAULT_MEMORY_POOL", "system", 0); }

// Reads a fuzz input front to back; past its end every read yields zeros. Used instead of
// FuzzedDataProvider (which reads integers from the back) so that seeds are easy to write.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint8_t U8() {
    if (at_ >= size_) return 0;
    return data_[at_++];
  }
  uint64_t U64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t{U8()} << (8 * i);
    return v;
  }
  std::span<const uint8_t> Bytes(size_t n) {
    n = std::min(n, size_ - at_);
    std::span<const uint8_t> out(data_ + at_, n);
    at_ += n;
    return out;
  }
  std::string_view Rest() {
    std::string_view out(reinterpret_cast<const char*>(data_ + at_), size_ - at_);
    at_ = size_;
    return out;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

inline bool Contains(std::span<const std::byte> outer, const void* p, uint64_t n) {
  const auto begin = reinterpret_cast<uintptr_t>(outer.data());
  const auto at = reinterpret_cast<uintptr_t>(p);
  return at >= begin && at - begin <= outer.size() && n <= outer.size() - (at - begin);
}

inline bool Overlaps(std::span<const std::byte> outer, const void* p, uint64_t n) {
  const auto begin = reinterpret_cast<uintptr_t>(outer.data());
  const auto at = reinterpret_cast<uintptr_t>(p);
  return n > 0 && at < begin + outer.size() && begin < at + n;
}

// Touches every byte of `bytes` so that a view reaching past its mapping faults here.
inline void Touch(std::span<const std::byte> bytes) {
  uint8_t sum = 0;
  for (std::byte b : bytes) sum = static_cast<uint8_t>(sum + static_cast<uint8_t>(b));
  volatile uint8_t sink = sum;
  (void)sink;
}

// =============================================================================================
// 1. Control envelopes (src/control/envelope.cc): ParseEnvelope on one line, and the line
//    reader of src/control/connection.cc on the same bytes as a stream.
// =============================================================================================

inline void CheckEnvelopeOutcome(const control::ParseOutcome& out) {
  using control::MessageType;
  if (!out.ok()) {
    const control::EnvelopeError& e = out.error;
    QUIVER_FUZZ_CHECK(!e.code.empty() && !e.message.empty(), "error without code or message");
    QUIVER_FUZZ_CHECK(e.msg_id.empty() || control::IsUuid(e.msg_id), "error msg_id " + e.msg_id);
    // The reply a server sends must itself be a valid line the peer can read.
    const control::Envelope reply = control::MakeError(e);
    const std::string wire = control::Serialize(reply);
    QUIVER_FUZZ_CHECK(wire.find('\n') == std::string::npos, "newline in a serialized reply");
    const control::ParseOutcome back = control::ParseEnvelope(wire);
    QUIVER_FUZZ_CHECK(back.ok(), "the RES_ERROR_V2 reply to a bad line does not parse: " +
                                     back.error.code + ": " + back.error.message.substr(0, 200) +
                                     " (reply of " + std::to_string(wire.size()) + " bytes)");
    QUIVER_FUZZ_CHECK(back.envelope->type == MessageType::kResErrorV2, "reply type");
    QUIVER_FUZZ_CHECK(back.envelope->msg_id == e.msg_id, "reply msg_id");
    QUIVER_FUZZ_CHECK(!control::StatusFromError(*back.envelope).ok(), "an error reply reads OK");
    return;
  }
  const control::Envelope& env = *out.envelope;
  QUIVER_FUZZ_CHECK(env.payload.is_object(), "payload is not an object");
  QUIVER_FUZZ_CHECK(
      env.msg_id.empty() ? env.type == MessageType::kResErrorV2 : control::IsUuid(env.msg_id),
      "msg_id '" + env.msg_id + "'");
  QUIVER_FUZZ_CHECK(control::MessageTypeFromName(control::MessageTypeName(env.type)) == env.type,
                    "type name round trip");
  if (env.type == MessageType::kCmdProcess || env.type == MessageType::kResDataReady) {
    QUIVER_FUZZ_CHECK(env.shm_handle.has_value(), "CMD_PROCESS/RES_DATA_READY without handle");
  }
  if (env.shm_handle) {
    const control::ShmHandle& h = *env.shm_handle;
    QUIVER_FUZZ_CHECK(!h.segment_id.empty(), "empty segment_id accepted");
    QUIVER_FUZZ_CHECK(h.size > 0, "size 0 accepted");
    QUIVER_FUZZ_CHECK(h.offset <= std::numeric_limits<uint64_t>::max() - h.size,
                      "offset + size overflows");
  }
  if (env.type == MessageType::kResErrorV2) {
    QUIVER_FUZZ_CHECK(!control::StatusFromError(env).ok(), "RES_ERROR_V2 reads as OK");
  }
  // Serialize, parse, serialize: the same line (numbers may grow when re-printed, so a line
  // near the limit may no longer fit; that is not a round-trip failure).
  const std::string wire = control::Serialize(env);
  QUIVER_FUZZ_CHECK(wire.find('\n') == std::string::npos, "newline in a serialized envelope");
  if (wire.size() > control::kMaxLineBytes) return;
  const control::ParseOutcome again = control::ParseEnvelope(wire);
  QUIVER_FUZZ_CHECK(again.ok(), "a serialized envelope does not parse: " + again.error.code + ": " +
                                    again.error.message.substr(0, 200));
  const control::Envelope& env2 = *again.envelope;
  QUIVER_FUZZ_CHECK(env2.type == env.type && env2.msg_id == env.msg_id &&
                        env2.protocol_v == env.protocol_v && env2.shm_handle == env.shm_handle,
                    "round trip changed the envelope: " + wire.substr(0, 200));
  QUIVER_FUZZ_CHECK(control::Serialize(env2) == wire, "Serialize is not stable");
}

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

inline void FuzzEnvelope(const uint8_t* data, size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  CheckEnvelopeOutcome(control::ParseEnvelope(line));
  // The same bytes as a stream of lines, with a small limit so long lines are common.
  if (size <= 8192) FuzzLineReader(line, 256);
}

// =============================================================================================
// 2. shm handles (src/control/handle.cc): CheckHandleBounds and ResolveHandle against a real
//    channel, and the channel header validation (ValidateConfig) they rely on.
//
// Input: byte 0 selects the mode.
//   0  direct handle:  u8 offset_kind, u64 offset, u8 size_kind, u64 size, u8 format,
//                      u8 name_kind, then the segment name (name_kind odd: the fuzz channel)
//   1  JSON handle:    the rest is the value of payload.shm_handle of a CMD_PROCESS envelope
//   2  bad header:     u8 start, u8 length, then `length` bytes XORed into the real
//                      ChannelConfig at `start` (in the segment itself), then u64 offset,
//                      u64 size; resolved, then the header is restored
//   3  ValidateConfig: u64 segment size delta, then up to 176 bytes XORed into a copy of
//                      the real config; pure
// =============================================================================================

inline constexpr std::string_view kHandleChannel = "fzhandle";

struct HandleFixture {
  Channel channel;
  int fd = -1;
  uint64_t segment_bytes = 0;
  channel::ChannelConfig pristine{};
  std::byte* header = nullptr;      // our own RW mapping of the first page, to corrupt it
  const std::byte* data = nullptr;  // our own RO mapping of the data area, the reference
};

inline HandleFixture& GetHandleFixture() {
  static HandleFixture* fixture = [] {
    // 10000 bytes: a data area that is not a whole number of pages.
    auto made = Channel::Create(kHandleChannel, {.capacity = 10000,
                                                 .max_samples = 4,
                                                 .max_subscribers = 2,
                                                 .backing = Backing::kMemfd,
                                                 .type_registry_bytes = 1024});
    QUIVER_FUZZ_SETUP(made.ok(), StatusText(made.status()));
    auto* f = new HandleFixture{std::move(made).value()};
    f->fd = f->channel.fd();
    // ResolveHandle attaches by name; QUIVER_CHANNELS makes that name the memfd.
    const std::string env = std::string(kHandleChannel) + "=" + std::to_string(f->fd);
    QUIVER_FUZZ_SETUP(setenv("QUIVER_CHANNELS", env.c_str(), 1) == 0, "setenv");
    {  // Fill the data area with a pattern: a few samples.
      auto publisher = f->channel.CreatePublisher();
      QUIVER_FUZZ_SETUP(publisher.ok(), StatusText(publisher.status()));
      std::vector<std::byte> bytes(2000);
      for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = std::byte(i * 7 + 1);
      for (int k = 0; k < 5; ++k) {
        QUIVER_FUZZ_SETUP(publisher->PublishCopy(bytes).ok(), "publish");
      }
    }
    const off_t end = lseek(f->fd, 0, SEEK_END);
    QUIVER_FUZZ_SETUP(end > 0, "lseek");
    f->segment_bytes = static_cast<uint64_t>(end);
    void* header = mmap(nullptr, channel::kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
    QUIVER_FUZZ_SETUP(header != MAP_FAILED, std::strerror(errno));
    f->header = static_cast<std::byte*>(header);
    std::memcpy(&f->pristine, f->header, sizeof(f->pristine));
    QUIVER_FUZZ_SETUP(f->pristine.data_capacity >= 10000, "capacity");
    void* data = mmap(nullptr, f->pristine.data_capacity, PROT_READ, MAP_SHARED, f->fd,
                      static_cast<off_t>(f->pristine.data_offset));
    QUIVER_FUZZ_SETUP(data != MAP_FAILED, std::strerror(errno));
    f->data = static_cast<const std::byte*>(data);
    return f;
  }();
  return *fixture;
}

// Resolves `handle` and checks the outcome against what the fixture knows: for a handle to
// the fuzz channel (`ours`), a view of exactly those bytes if the range lies inside its data
// area and kHandleOutOfRange if not; for any other name, an error. Never a crash.
inline void CheckResolve(const control::ShmHandle& handle, bool ours, const std::string& what) {
  HandleFixture& f = GetHandleFixture();
  const uint64_t capacity = f.pristine.data_capacity;
  const Status bounds = control::CheckHandleBounds(handle.offset, handle.size, capacity);
  const bool inside =
      handle.size > 0 && handle.offset < capacity && handle.size <= capacity - handle.offset;
  QUIVER_FUZZ_CHECK(bounds.ok() == inside, what + ": CheckHandleBounds says " + StatusText(bounds));
  if (!bounds.ok()) {
    QUIVER_FUZZ_CHECK(bounds.code() == ErrorCode::kHandleOutOfRange, StatusText(bounds));
  }
  Result<control::HandleView> view = control::ResolveHandle(handle);
  if (!ours) {
    QUIVER_FUZZ_CHECK(!view.ok(), what + ": a handle to another segment resolved");
    const ErrorCode code = view.status().code();
    QUIVER_FUZZ_CHECK(code == ErrorCode::kNotFound || code == ErrorCode::kInvalidArgument,
                      what + ": " + StatusText(view.status()));
    return;
  }
  QUIVER_FUZZ_CHECK(
      view.ok() == inside,
      what + ": " + (view.ok() ? std::string("resolved") : StatusText(view.status())));
  if (!view.ok()) {
    QUIVER_FUZZ_CHECK(view.status().code() == ErrorCode::kHandleOutOfRange,
                      what + ": " + StatusText(view.status()));
    return;
  }
  const std::span<const std::byte> bytes = view->bytes();
  QUIVER_FUZZ_CHECK(bytes.size() == handle.size, what + ": view of the wrong size");
  QUIVER_FUZZ_CHECK(view->handle() == handle, what + ": view names another handle");
  // The very bytes of the data area at that offset (our own mapping is the reference).
  QUIVER_FUZZ_CHECK(std::memcmp(bytes.data(), f.data + handle.offset, bytes.size()) == 0,
                    what + ": the view shows other bytes than the data area at its offset");
}

inline uint64_t Around(uint8_t kind, uint64_t raw, uint64_t capacity) {
  switch (kind % 6) {
    case 0:
      return raw;
    case 1:
      return raw % (capacity + 1);
    case 2:
      return capacity - std::min<uint64_t>(capacity, raw % 4097);
    case 3:
      return capacity + raw % 4097;
    case 4:
      return std::numeric_limits<uint64_t>::max() - raw % 4097;
    default:
      return (uint64_t{1} << 63) + raw % 4097 - 2048;
  }
}

inline void CheckConfigAccepted(const channel::ChannelConfig& c, uint64_t segment_bytes,
                                const std::string& what) {
  // What ValidateConfig promises the hot path, which trusts these numbers from now on.
  auto ends_before = [](uint64_t start, uint64_t bytes, uint64_t limit) {
    return start <= limit && bytes <= limit - start;
  };
  QUIVER_FUZZ_CHECK(c.segment_bytes <= segment_bytes, what + ": segment_bytes");
  QUIVER_FUZZ_CHECK(c.max_subscribers >= 1 && c.max_subscribers <= channel::kMaxSubscribers,
                    what + ": max_subscribers");
  QUIVER_FUZZ_CHECK(c.max_samples >= 1 && c.max_samples <= channel::kMaxSamples,
                    what + ": max_samples");
  QUIVER_FUZZ_CHECK(c.overflow_policy <= 1, what + ": overflow_policy");
  QUIVER_FUZZ_CHECK(c.descs_offset >= sizeof(channel::ChannelHeader), what + ": descs_offset");
  QUIVER_FUZZ_CHECK(ends_before(c.descs_offset, uint64_t{c.max_samples} * 64, c.slots_offset),
                    what + ": descs overlap slots");
  QUIVER_FUZZ_CHECK(ends_before(c.slots_offset, uint64_t{c.max_subscribers} * 192, c.rings_offset),
                    what + ": slots overlap rings");
  QUIVER_FUZZ_CHECK(ends_before(c.rings_offset, uint64_t{c.max_subscribers} * c.max_samples * 4,
                                c.registry_offset),
                    what + ": rings overlap the registry");
  QUIVER_FUZZ_CHECK(ends_before(c.registry_offset, sizeof(channel::TypeRegistry) + c.registry_bytes,
                                c.data_offset),
                    what + ": registry overlaps data");
  QUIVER_FUZZ_CHECK(c.data_offset % channel::kPageSize == 0, what + ": data_offset alignment");
  QUIVER_FUZZ_CHECK(
      c.data_capacity > 0 && ends_before(c.data_offset, c.data_capacity, segment_bytes),
      what + ": data area outside the segment");
}

inline void FuzzShmHandle(const uint8_t* input, size_t size) {
  HandleFixture& f = GetHandleFixture();
  Reader in(input, size);
  const uint64_t capacity = f.pristine.data_capacity;
  constexpr control::ShmFormat kFormats[] = {control::ShmFormat::kRaw, control::ShmFormat::kTensor,
                                             control::ShmFormat::kArrowStream};
  switch (in.U8() % 4) {
    case 0: {
      control::ShmHandle h;
      const uint8_t offset_kind = in.U8();
      h.offset = Around(offset_kind, in.U64(), capacity);
      const uint8_t size_kind = in.U8();
      h.size = Around(size_kind, in.U64(), capacity);
      h.format = kFormats[in.U8() % 3];
      const uint8_t name_kind = in.U8();
      // Any other name gets a prefix of ours: the fuzzer must not attach to (or, when
      // stale, remove) a real channel of this user.
      h.segment_id =
          name_kind % 2 == 1 ? std::string(kHandleChannel) : "qfz" + std::string(in.Rest());
      CheckResolve(h, h.segment_id == kHandleChannel, "direct handle");
      break;
    }
    case 1: {
      const std::string line =
          R"({"protocol_v":"2.0.0","msg_id":"6f1c1f9e-3a52-4c59-9d0e-5b8f1f3e2a10",)"
          R"("type":"CMD_PROCESS","payload":{"shm_handle":)" +
          std::string(in.Rest()) + "}}";
      const control::ParseOutcome out = control::ParseEnvelope(line);
      CheckEnvelopeOutcome(out);
      if (!out.ok()) break;
      control::ShmHandle h = *out.envelope->shm_handle;
      const bool ours = h.segment_id == kHandleChannel;
      if (!ours) h.segment_id = "qfz" + h.segment_id;
      CheckResolve(h, ours, "handle from JSON");
      break;
    }
    case 2: {
      const size_t start = in.U8() % sizeof(channel::ChannelConfig);
      const size_t length = std::min<size_t>(in.U8(), sizeof(channel::ChannelConfig) - start);
      const std::span<const uint8_t> mask = in.Bytes(length);
      control::ShmHandle h{std::string(kHandleChannel), in.U64() % (capacity + 64),
                           in.U64() % (capacity + 64), control::ShmFormat::kRaw};
      channel::ChannelConfig corrupt = f.pristine;
      auto* bytes = reinterpret_cast<uint8_t*>(&corrupt);
      for (size_t i = 0; i < mask.size(); ++i) bytes[start + i] ^= mask[i];
      const Status valid = channel::ValidateConfig(corrupt, f.segment_bytes);
      if (valid.ok()) CheckConfigAccepted(corrupt, f.segment_bytes, "corrupted header");
      std::memcpy(f.header, &corrupt, sizeof(corrupt));
      {
        Result<control::HandleView> view = control::ResolveHandle(h);
        if (view.ok()) {
          // Accepted under the corrupted header: it must describe a data area inside the
          // segment, and the view must lie inside that area.
          QUIVER_FUZZ_CHECK(valid.ok(), "resolved under a header ValidateConfig refuses");
          QUIVER_FUZZ_CHECK(h.size > 0 && h.offset < corrupt.data_capacity &&
                                h.size <= corrupt.data_capacity - h.offset,
                            "resolved a range outside the (corrupted) header's data area");
          QUIVER_FUZZ_CHECK(view->bytes().size() == h.size, "view size");
          Touch(view->bytes());
        } else {
          const ErrorCode code = view.status().code();
          QUIVER_FUZZ_CHECK(code == ErrorCode::kShmCorruption ||
                                code == ErrorCode::kHandleOutOfRange ||
                                code == ErrorCode::kInvalidArgument,
                            "corrupted header: " + StatusText(view.status()));
        }
        auto attached = Channel::FromFd(f.fd);
        QUIVER_FUZZ_CHECK(attached.ok() == valid.ok(),
                          "FromFd and ValidateConfig disagree: " + StatusText(attached.status()));
      }
      std::memcpy(f.header, &f.pristine, sizeof(f.pristine));
      break;
    }
    default: {
      const uint64_t delta = in.U64();
      const uint64_t segment_bytes = (delta & 1)
                                         ? f.segment_bytes + (delta >> 1)
                                         : f.segment_bytes - std::min(f.segment_bytes, delta >> 1);
      channel::ChannelConfig config = f.pristine;
      auto* bytes = reinterpret_cast<uint8_t*>(&config);
      const std::span<const uint8_t> mask = in.Bytes(sizeof(config));
      for (size_t i = 0; i < mask.size(); ++i) bytes[i] ^= mask[i];
      const Status st = channel::ValidateConfig(config, segment_bytes);
      if (st.ok()) {
        CheckConfigAccepted(config, segment_bytes, "ValidateConfig");
      } else {
        QUIVER_FUZZ_CHECK(st.code() == ErrorCode::kShmCorruption, StatusText(st));
      }
      break;
    }
  }
}

// =============================================================================================
// 3. Typed samples (src/payload/): the input is published verbatim as one raw sample
//    (Publisher::PublishCopy) into an Arrow channel with four subscribers, which decode it as
//    a subscriber would: ArrowSubscriber::Decode with kStructure, with kFull, with kFull and a
//    reader schema (projection), and ReadTensor / ReadAudioFrame / ReadImageFrame.
// =============================================================================================

// Type version 1 of the fuzz channel.
inline std::shared_ptr<arrow::Schema> SampleSchemaV1() {
  using arrow::field;
  return arrow::schema({
      field("id", arrow::int64(), /*nullable=*/false),
      field("code", arrow::dictionary(arrow::int32(), arrow::utf8())),
      field("amount", arrow::float64()),
      field("ts", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
      field("flag", arrow::boolean()),
      field("tags", arrow::list(arrow::utf8())),
      field("data", arrow::binary()),
      field("point", arrow::struct_({field("x", arrow::int32()), field("y", arrow::float32())})),
      field("note", arrow::large_utf8()),
      field("day", arrow::date32()),
  });
}

// Type version 2: version 1 plus nullable fields of most other Arrow types (a compatible
// evolution, as ArrowPublisher would register it).
inline std::shared_ptr<arrow::Schema> SampleSchemaV2() {
  using arrow::field;
  arrow::FieldVector fields = SampleSchemaV1()->fields();
  const arrow::FieldVector more = {
      field("labels", arrow::list(arrow::dictionary(arrow::int16(), arrow::utf8()))),
      field("attrs", arrow::map(arrow::utf8(), arrow::int64())),
      field("vec", arrow::fixed_size_list(arrow::float32(), 3)),
      field("price", arrow::decimal128(12, 2)),
      field("du", arrow::dense_union({field("i", arrow::int32()), field("s", arrow::utf8())})),
      field("su",
            arrow::sparse_union({field("b", arrow::boolean()), field("f", arrow::float64())})),
      field("big", arrow::large_list(arrow::int64())),
      field("fsb", arrow::fixed_size_binary(4)),
      field("half", arrow::float16()),
      field("dur", arrow::duration(arrow::TimeUnit::NANO)),
      field("mdn", arrow::month_day_nano_interval()),
      field("ree", arrow::run_end_encoded(arrow::int32(), arrow::utf8())),
      field("sv", arrow::utf8_view()),
      field("bv", arrow::binary_view()),
      field("lv", arrow::list_view(arrow::int32())),
      field("nothing", arrow::null()),
      field("t32", arrow::time32(arrow::TimeUnit::MILLI)),
      field("u8", arrow::uint8()),
  };
  fields.insert(fields.end(), more.begin(), more.end());
  return arrow::schema(fields);
}

// The projecting subscriber's reader schema: a few fields of version 2, in another order,
// plus one no version has (an all-null column).
inline std::shared_ptr<arrow::Schema> SampleReaderSchema() {
  using arrow::field;
  return arrow::schema({
      field("amount", arrow::float64()),
      field("id", arrow::int64(), /*nullable=*/false),
      field("code", arrow::dictionary(arrow::int32(), arrow::utf8())),
      field("labels", arrow::list(arrow::dictionary(arrow::int16(), arrow::utf8()))),
      field("du", arrow::dense_union({field("i", arrow::int32()), field("s", arrow::utf8())})),
      field("point", arrow::struct_({field("x", arrow::int32()), field("y", arrow::float32())})),
      field("absent", arrow::utf8()),
  });
}

inline constexpr std::string_view kSampleChannel = "fzsample";
inline constexpr size_t kSampleCapacity = size_t{1} << 20;

struct SampleFixture {
  Channel channel;
  Publisher publisher;
  ArrowSubscriber structure;  // kStructure
  ArrowSubscriber full;       // kFull
  ArrowSubscriber projected;  // kFull + SampleReaderSchema()
  Subscriber raw;             // tensors and frames
};

// Makes the fuzz channel (type versions 1 and 2) and, for the seed generator, returns it.
inline Result<Channel> MakeSampleChannel(Backing backing) {
  QUIVER_ASSIGN_OR_RETURN(Channel channel, CreateArrowChannel(kSampleChannel, SampleSchemaV1(),
                                                              {.capacity = kSampleCapacity,
                                                               .max_samples = 8,
                                                               .max_subscribers = 4,
                                                               .backing = backing}));
  return channel;
}

inline Status RegisterSampleSchemaV2(Publisher& publisher) {
  QUIVER_RETURN_IF_ERROR(payload::CheckEvolution({SampleSchemaV1()}, *SampleSchemaV2()));
  auto serialized = arrow::ipc::SerializeSchema(*SampleSchemaV2());
  if (!serialized.ok()) return Status(ErrorCode::kInvalidArgument, serialized.status().ToString());
  QUIVER_ASSIGN_OR_RETURN(uint32_t version, publisher.RegisterType((*serialized)->ToString()));
  if (version != 2) return Status(ErrorCode::kInvalidArgument, "schema v2 got another version");
  return Status::OK();
}

inline SampleFixture& GetSampleFixture() {
  static SampleFixture* fixture = [] {
    UseSystemMemoryPool();
    auto channel = MakeSampleChannel(Backing::kMemfd);
    QUIVER_FUZZ_SETUP(channel.ok(), StatusText(channel.status()));
    // A loan that cannot be had within a second means a subscriber kept a sample: a leak
    // of the code under test, reported rather than waited out.
    auto publisher = channel->CreatePublisher({.loan_timeout = std::chrono::seconds(1)});
    QUIVER_FUZZ_SETUP(publisher.ok(), StatusText(publisher.status()));
    QUIVER_FUZZ_SETUP(RegisterSampleSchemaV2(*publisher).ok(), "schema v2");
    auto structure = ArrowSubscriber::Make(*channel, {.validation = BatchValidation::kStructure});
    auto full = ArrowSubscriber::Make(*channel, {.validation = BatchValidation::kFull});
    auto projected = ArrowSubscriber::Make(
        *channel, {.reader_schema = SampleReaderSchema(), .validation = BatchValidation::kFull});
    auto raw = channel->CreateSubscriber();
    QUIVER_FUZZ_SETUP(structure.ok() && full.ok() && projected.ok() && raw.ok(),
                      "subscribers: " + StatusText(projected.status()));
    return new SampleFixture{std::move(channel).value(),   std::move(publisher).value(),
                             std::move(structure).value(), std::move(full).value(),
                             std::move(projected).value(), std::move(raw).value()};
  }();
  return *fixture;
}

inline Sample ReceiveNow(Subscriber& subscriber) {
  auto sample = subscriber.TryReceive();
  QUIVER_FUZZ_CHECK(
      sample.ok() && sample->has_value(),
      "the published sample did not arrive: " +
          (sample.ok() ? std::string("nothing queued") : StatusText(sample.status())));
  return std::move(**sample);
}

// Every buffer of `data` (children and dictionaries included) must lie inside the sample or,
// when Arrow allocated it (an all-null column, a decompressed buffer), outside shared memory.
inline void CheckBuffersInside(const arrow::ArrayData& data, std::span<const std::byte> sample,
                               std::span<const std::byte> data_area, const std::string& what,
                               int depth = 0) {
  QUIVER_FUZZ_CHECK(depth < 256, what + ": nesting too deep");
  for (const auto& buffer : data.buffers) {
    if (buffer == nullptr || buffer->size() == 0) continue;
    QUIVER_FUZZ_CHECK(buffer->size() > 0, what + ": negative buffer size");
    const auto n = static_cast<uint64_t>(buffer->size());
    QUIVER_FUZZ_CHECK(
        Contains(sample, buffer->data(), n) || !Overlaps(data_area, buffer->data(), n),
        what + ": a buffer of " + std::to_string(n) +
            " bytes reaches outside its sample into shared memory");
  }
  for (const auto& child : data.child_data) {
    if (child) CheckBuffersInside(*child, sample, data_area, what, depth + 1);
  }
  if (data.dictionary) CheckBuffersInside(*data.dictionary, sample, data_area, what, depth + 1);
}

inline void CheckArrowOutcome(const Result<ArrowSample>& decoded, std::span<const std::byte> sample,
                              std::span<const std::byte> data_area, const SampleHeader* header,
                              bool full, const std::shared_ptr<arrow::Schema>& expected_schema,
                              const std::string& what) {
  if (!decoded.ok()) {
    const ErrorCode code = decoded.status().code();
    QUIVER_FUZZ_CHECK(code == ErrorCode::kShmCorruption || code == ErrorCode::kInvalidArgument ||
                          code == ErrorCode::kSchemaMismatch,
                      what + ": " + StatusText(decoded.status()));
    return;
  }
  QUIVER_FUZZ_CHECK(header != nullptr, what + ": decoded a sample whose header is refused");
  const arrow::RecordBatch& batch = *decoded->batch;
  QUIVER_FUZZ_CHECK(decoded->schema_version == header->type_version, what + ": schema version");
  QUIVER_FUZZ_CHECK(static_cast<uint64_t>(batch.num_rows()) == header->count, what + ": rows");
  if (expected_schema) {
    QUIVER_FUZZ_CHECK(batch.schema()->Equals(*expected_schema, /*check_metadata=*/false),
                      what + ": schema " + batch.schema()->ToString());
  }
  const arrow::Status valid = full ? batch.ValidateFull() : batch.Validate();
  QUIVER_FUZZ_CHECK(valid.ok(),
                    what + ": accepted a batch that does not validate: " + valid.ToString());
  for (int i = 0; i < batch.num_columns(); ++i) {
    CheckBuffersInside(*batch.column_data(i), sample, data_area,
                       what + ", column " + batch.schema()->field(i)->name());
  }
  // Fully validated values may be read: print a window of every column.
  if (full) {
    std::ostringstream text;
    (void)arrow::PrettyPrint(batch, 0, &text);
  }
}

inline void FuzzSample(const uint8_t* data, size_t size) {
  SampleFixture& f = GetSampleFixture();
  if (size == 0 || size > kSampleCapacity) return;
  const Status published =
      f.publisher.PublishCopy(std::as_bytes(std::span<const uint8_t>(data, size)));
  QUIVER_FUZZ_SETUP(published.ok(), StatusText(published));

  Sample for_structure = ReceiveNow(f.structure.subscriber());
  Sample for_full = ReceiveNow(f.full.subscriber());
  Sample for_projected = ReceiveNow(f.projected.subscriber());
  auto raw = std::make_shared<const Sample>(ReceiveNow(f.raw));
  const std::span<const std::byte> bytes = raw->data();
  QUIVER_FUZZ_SETUP(bytes.size() == size && std::memcmp(bytes.data(), data, size) == 0,
                    "the sample is not the input");
  const std::span<const std::byte> data_area(bytes.data() - raw->offset(), f.channel.capacity());

  // --- Arrow ---
  Result<SampleHeader> arrow_header = ReadSampleHeader(bytes, PayloadKind::kArrowBatch);
  const SampleHeader* header = arrow_header.ok() ? &*arrow_header : nullptr;
  std::shared_ptr<arrow::Schema> schema;
  if (header != nullptr && header->type_version >= 1 && header->type_version <= 2) {
    schema = header->type_version == 1 ? SampleSchemaV1() : SampleSchemaV2();
  }
  {
    Result<ArrowSample> s = f.structure.Decode(std::move(for_structure));
    Result<ArrowSample> full = f.full.Decode(std::move(for_full));
    Result<ArrowSample> projected = f.projected.Decode(std::move(for_projected));
    Report("kStructure", s);
    Report("kFull", full);
    Report("projected", projected);
    CheckArrowOutcome(s, bytes, data_area, header, false, schema, "kStructure");
    CheckArrowOutcome(full, bytes, data_area, header, true, schema, "kFull");
    CheckArrowOutcome(projected, bytes, data_area, header, true, SampleReaderSchema(),
                      "kFull + reader schema");
    QUIVER_FUZZ_CHECK(!full.ok() || s.ok(),
                      "kFull accepts what kStructure refuses: " + StatusText(s.status()));
    QUIVER_FUZZ_CHECK(full.ok() == projected.ok(),
                      "projection disagrees with kFull: " + StatusText(full.status()) + " vs " +
                          StatusText(projected.status()));
  }

  // --- Tensor ---
  {
    Result<std::shared_ptr<arrow::Tensor>> tensor = ReadTensor(raw);
    Report("tensor", tensor);
    if (tensor.ok()) {
      const arrow::Tensor& t = **tensor;
      Result<SampleHeader> h = ReadSampleHeader(bytes, PayloadKind::kTensor);
      QUIVER_FUZZ_CHECK(h.ok(), "tensor read from a refused header");
      QUIVER_FUZZ_CHECK(t.ndim() <= static_cast<int>(kMaxTensorDims), "tensor ndim");
      QUIVER_FUZZ_CHECK(static_cast<uint64_t>(t.size()) == h->count, "tensor element count");
      int64_t extent = t.type()->byte_width();
      bool empty = false;
      for (int d = 0; d < t.ndim(); ++d) {
        QUIVER_FUZZ_CHECK(t.shape()[d] >= 0 && t.strides()[d] >= 0, "negative shape or stride");
        if (t.shape()[d] == 0) empty = true;
      }
      for (int d = 0; d < t.ndim() && !empty; ++d) {
        int64_t step = 0;
        QUIVER_FUZZ_CHECK(!__builtin_mul_overflow(t.shape()[d] - 1, t.strides()[d], &step) &&
                              !__builtin_add_overflow(extent, step, &extent),
                          "tensor extent overflows");
      }
      const std::span<const std::byte> body(reinterpret_cast<const std::byte*>(t.raw_data()),
                                            static_cast<size_t>(t.data()->size()));
      QUIVER_FUZZ_CHECK(Contains(bytes, body.data(), body.size()), "tensor body outside sample");
      if (!empty) {
        QUIVER_FUZZ_CHECK(static_cast<uint64_t>(extent) <= body.size(),
                          "tensor elements reach past its body");
        Touch(body.subspan(static_cast<size_t>(extent) - 1, 1));
      }
    } else {
      const ErrorCode code = tensor.status().code();
      QUIVER_FUZZ_CHECK(code == ErrorCode::kShmCorruption || code == ErrorCode::kInvalidArgument,
                        "ReadTensor: " + StatusText(tensor.status()));
    }
  }

  // --- Audio ---
  {
    Result<AudioFrameView> audio = ReadAudioFrame(raw);
    Report("audio", audio);
    if (audio.ok()) {
      const AudioFrameInfo& info = audio->info;
      const size_t bps = BytesPerSample(info.format);
      QUIVER_FUZZ_CHECK(bps > 0 && info.channels > 0 && info.sample_rate > 0, "audio info");
      uint64_t expected = 0;
      QUIVER_FUZZ_CHECK(
          !__builtin_mul_overflow(info.frame_count, uint64_t{info.channels} * bps, &expected) &&
              expected == audio->data.size(),
          "audio data size");
      QUIVER_FUZZ_CHECK(Contains(bytes, audio->data.data(), audio->data.size()),
                        "audio data outside sample");
      Touch(audio->data);
    } else {
      const ErrorCode code = audio.status().code();
      QUIVER_FUZZ_CHECK(code == ErrorCode::kShmCorruption || code == ErrorCode::kInvalidArgument,
                        "ReadAudioFrame: " + StatusText(audio.status()));
    }
  }

  // --- Image ---
  {
    Result<ImageFrameView> image = ReadImageFrame(raw);
    Report("image", image);
    if (image.ok()) {
      const ImageFrameInfo& info = image->info;
      const size_t bpp = BytesPerPixel(info.format);
      QUIVER_FUZZ_CHECK(bpp > 0 && uint64_t{info.stride} >= uint64_t{info.width} * bpp,
                        "image stride");
      QUIVER_FUZZ_CHECK(uint64_t{info.height} * info.stride == image->data.size(), "image size");
      QUIVER_FUZZ_CHECK(Contains(bytes, image->data.data(), image->data.size()),
                        "image data outside sample");
      Touch(image->data);
      Result<std::shared_ptr<arrow::RecordBatch>> evidence = ImageFrameToEvidenceBatch(*image);
      if (evidence.ok()) {
        const arrow::Status valid = (*evidence)->ValidateFull();
        QUIVER_FUZZ_CHECK(valid.ok(), "Evidence batch: " + valid.ToString());
      } else {
        QUIVER_FUZZ_CHECK(evidence.status().code() == ErrorCode::kInvalidArgument,
                          StatusText(evidence.status()));
      }
    } else {
      const ErrorCode code = image.status().code();
      QUIVER_FUZZ_CHECK(code == ErrorCode::kShmCorruption || code == ErrorCode::kInvalidArgument,
                        "ReadImageFrame: " + StatusText(image.status()));
    }
  }
}

// =============================================================================================
// 3b. msgpack records (src/payload/msgpack_records.cc): DecodeMsgpackRecords with a fixed
//     schema of every supported type, once with an unbounded pool (whose peak is bounded by
//     the input size) and once with a pool capped below that peak.
// =============================================================================================

inline std::shared_ptr<arrow::Schema> MsgpackSchema() {
  using arrow::field;
  return arrow::schema({
      field("id", arrow::int64(), /*nullable=*/false),
      field("ok", arrow::boolean()),
      field("i8", arrow::int8()),
      field("i16", arrow::int16()),
      field("i32", arrow::int32()),
      field("u8", arrow::uint8()),
      field("u16", arrow::uint16()),
      field("u32", arrow::uint32()),
      field("u64", arrow::uint64()),
      field("f32", arrow::float32()),
      field("f64", arrow::float64()),
      field("name", arrow::utf8()),
      field("text", arrow::large_utf8()),
      field("blob", arrow::binary()),
      field("big_blob", arrow::large_binary()),
      field("nothing", arrow::null()),
      field("ts", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
      field("ts_ns", arrow::timestamp(arrow::TimeUnit::NANO)),
      field("day", arrow::date32()),
      field("tags", arrow::list(arrow::utf8())),
      field("matrix", arrow::large_list(arrow::list(arrow::float64()))),
      field("point",
            arrow::struct_({field("x", arrow::int32(), false), field("y", arrow::float64()),
                            field("label", arrow::dictionary(arrow::int32(), arrow::utf8()))})),
      field("items", arrow::list(arrow::struct_(
                         {field("sku", arrow::utf8(), false), field("qty", arrow::uint32())}))),
      field("code", arrow::dictionary(arrow::int32(), arrow::utf8())),
  });
}

// A pool that counts (and optionally caps) what it hands out.
class CountingPool final : public arrow::MemoryPool {
 public:
  explicit CountingPool(int64_t cap = std::numeric_limits<int64_t>::max())
      : base_(arrow::system_memory_pool()), cap_(cap) {}
  arrow::Status Allocate(int64_t size, int64_t alignment, uint8_t** out) override {
    if (size > cap_ - allocated_) return arrow::Status::OutOfMemory("fuzz cap");
    ARROW_RETURN_NOT_OK(base_->Allocate(size, alignment, out));
    Add(size);
    return arrow::Status::OK();
  }
  arrow::Status Reallocate(int64_t old_size, int64_t new_size, int64_t alignment,
                           uint8_t** ptr) override {
    if (new_size - old_size > cap_ - allocated_) return arrow::Status::OutOfMemory("fuzz cap");
    ARROW_RETURN_NOT_OK(base_->Reallocate(old_size, new_size, alignment, ptr));
    Add(new_size - old_size);
    return arrow::Status::OK();
  }
  void Free(uint8_t* buffer, int64_t size, int64_t alignment) override {
    base_->Free(buffer, size, alignment);
    allocated_ -= size;
  }
  int64_t bytes_allocated() const override { return allocated_; }
  int64_t max_memory() const override { return peak_; }
  int64_t total_bytes_allocated() const override { return total_; }
  int64_t num_allocations() const override { return 0; }
  std::string backend_name() const override { return "fuzz-counting"; }

 private:
  void Add(int64_t n) {
    allocated_ += n;
    if (n > 0) total_ += n;
    peak_ = std::max(peak_, allocated_);
  }
  arrow::MemoryPool* base_;
  int64_t cap_;
  int64_t allocated_ = 0;
  int64_t peak_ = 0;
  int64_t total_ = 0;
};

inline void FuzzMsgpackRecords(const uint8_t* data, size_t size) {
  UseSystemMemoryPool();
  static const std::shared_ptr<arrow::Schema> schema = MsgpackSchema();
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  int64_t peak = 0;
  bool decoded_ok = false;
  {
    CountingPool pool;
    Result<std::shared_ptr<arrow::RecordBatch>> batch = DecodeMsgpackRecords(bytes, schema, &pool);
    if (batch.ok()) {
      decoded_ok = true;
      QUIVER_FUZZ_CHECK((*batch)->schema()->Equals(*schema, false), "schema");
      const arrow::Status valid = (*batch)->ValidateFull();
      QUIVER_FUZZ_CHECK(valid.ok(), "decoded batch does not validate: " + valid.ToString());
      std::ostringstream text;
      (void)arrow::PrettyPrint(**batch, 0, &text);
    } else {
      QUIVER_FUZZ_CHECK(batch.status().code() == ErrorCode::kInvalidArgument,
                        StatusText(batch.status()));
      QUIVER_FUZZ_CHECK(
          batch.status().message().find("DecodeMsgpackRecords") != std::string::npos ||
              batch.status().message().find("record") != std::string::npos ||
              !batch.status().message().empty(),
          "error without a message");
    }
    peak = pool.max_memory();
    // "No input can make it allocate much more than the input's size (times the width of
    // the widest field)": a row of this schema costs at most ~300 bytes of builders, doubled
    // by geometric growth, and one byte of input can make a row.
    const int64_t bound = (int64_t{1} << 20) + static_cast<int64_t>(size) * 1024;
    QUIVER_FUZZ_CHECK(peak <= bound, "decoding " + std::to_string(size) + " bytes allocated " +
                                         std::to_string(peak) + " bytes at peak");
  }
  if (peak > 64) {  // the same input with too little memory: a clean kCapacityExceeded
    CountingPool capped(peak / 2);
    Result<std::shared_ptr<arrow::RecordBatch>> batch =
        DecodeMsgpackRecords(bytes, schema, &capped);
    if (batch.ok()) {
      QUIVER_FUZZ_CHECK((*batch)->ValidateFull().ok(), "capped decode does not validate");
    } else {
      const ErrorCode code = batch.status().code();
      QUIVER_FUZZ_CHECK(code == ErrorCode::kCapacityExceeded ||
                            (!decoded_ok && code == ErrorCode::kInvalidArgument),
                        "out of memory reported as " + StatusText(batch.status()));
    }
  }
}

// =============================================================================================
// 4. Pipeline files (src/supervisor/pipeline.cc, schema_file.cc): the input as pipeline TOML
//    (from a string, and from a file), as a schema file, and as a byte size.
// =============================================================================================

struct PipelineFixture {
  std::filesystem::path dir;   // base directory, with schema files in it
  std::filesystem::path file;  // where the input is written for LoadPipeline
};

inline PipelineFixture& GetPipelineFixture() {
  static PipelineFixture* fixture = [] {
    char templ[] = "/tmp/quiver-fuzz-pipeline-XXXXXX";
    const char* dir = mkdtemp(templ);
    QUIVER_FUZZ_SETUP(dir != nullptr, std::strerror(errno));
    auto* f = new PipelineFixture{dir, std::filesystem::path(dir) / "pipeline.toml"};
    std::filesystem::create_directories(f->dir / "ledger");
    const char* ledger = R"([
  {"name": "stt", "type": "int32", "nullable": false},
  {"name": "code", "type": "utf8", "nullable": false},
  {"name": "amount", "type": "float64"}
])";
    std::ofstream(f->dir / "ledger" / "schema.json") << ledger;
    std::ofstream(f->dir / "schema.json") << R"([{"name": "id", "type": "int64"}])";
    std::ofstream(f->dir / "bad.json") << R"([{"name": "id", "type": "decimal"}])";
    // The directory goes when the process exits normally (a crash leaves a few small files
    // in /tmp, named for what they are).
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(GetPipelineFixture().dir, ec);
    });
    return f;
  }();
  return *fixture;
}

inline void CheckPipeline(const Result<supervisor::Pipeline>& loaded, const std::string& what) {
  if (!loaded.ok()) {
    QUIVER_FUZZ_CHECK(loaded.status().code() == ErrorCode::kInvalidArgument,
                      what + ": " + StatusText(loaded.status()));
    QUIVER_FUZZ_CHECK(!loaded.status().message().empty(), what + ": error without a message");
    return;
  }
  // A pipeline LoadPipeline returns "can be run as is": check what the supervisor relies on.
  const supervisor::Pipeline& p = loaded.value();
  QUIVER_FUZZ_CHECK(!p.nodes.empty(), what + ": no nodes");
  std::set<std::string> channels;
  for (const supervisor::ChannelSpec& c : p.channels) {
    QUIVER_FUZZ_CHECK(shm::Segment::ValidateName(c.name).ok(), what + ": channel name " + c.name);
    QUIVER_FUZZ_CHECK(channels.insert(c.name).second, what + ": channel twice: " + c.name);
    QUIVER_FUZZ_CHECK(c.capacity >= 1 && c.capacity <= (size_t{1} << 40), what + ": capacity");
    QUIVER_FUZZ_CHECK(
        channel::ComputeLayout(c.capacity, c.max_samples, c.max_subscribers, size_t{64} << 10).ok(),
        what + ": channel '" + c.name + "' cannot be laid out");
    QUIVER_FUZZ_CHECK(c.schema_path.empty() == c.schema.empty(), what + ": schema");
    if (!c.schema.empty()) {
      auto schema = supervisor::ToArrowSchema(c.schema);
      QUIVER_FUZZ_CHECK(schema.ok(), what + ": " + StatusText(schema.status()));
      const Status evolution = payload::CheckEvolution({}, **schema);
      QUIVER_FUZZ_CHECK(evolution.ok(), what + ": " + StatusText(evolution));
    }
  }
  std::set<std::string> nodes;
  std::map<std::string, int> publishers, subscribers;
  for (const supervisor::NodeSpec& n : p.nodes) {
    QUIVER_FUZZ_CHECK(shm::Segment::ValidateName(n.name).ok(), what + ": node name " + n.name);
    QUIVER_FUZZ_CHECK(nodes.insert(n.name).second, what + ": node twice: " + n.name);
    QUIVER_FUZZ_CHECK(!n.command.empty(), what + ": empty command");
    for (const auto& [k, v] : n.env) {
      QUIVER_FUZZ_CHECK(!k.empty() && k.find('=') == std::string::npos, what + ": env " + k);
    }
    for (const std::string& c : n.publishes) {
      QUIVER_FUZZ_CHECK(channels.contains(c), what + ": publishes unknown " + c);
      ++publishers[c];
    }
    for (const std::string& c : n.subscribes) {
      QUIVER_FUZZ_CHECK(channels.contains(c), what + ": subscribes unknown " + c);
      ++subscribers[c];
    }
  }
  for (const supervisor::ChannelSpec& c : p.channels) {
    QUIVER_FUZZ_CHECK(publishers[c.name] == 1, what + ": channel '" + c.name + "' has " +
                                                   std::to_string(publishers[c.name]) +
                                                   " publishers");
    QUIVER_FUZZ_CHECK(subscribers[c.name] <= static_cast<int>(c.max_subscribers),
                      what + ": too many subscribers");
    QUIVER_FUZZ_CHECK(p.FindChannel(c.name) != nullptr, what + ": FindChannel");
  }
}

inline void FuzzPipeline(const uint8_t* data, size_t size) {
  UseSystemMemoryPool();
  PipelineFixture& f = GetPipelineFixture();
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const Result<supervisor::Pipeline> from_string =
      supervisor::LoadPipelineFromString(text, f.file.string(), f.dir);
  CheckPipeline(from_string, "LoadPipelineFromString");
  {  // The same text from a file: the same outcome.
    std::ofstream(f.file, std::ios::binary | std::ios::trunc)
        .write(text.data(), static_cast<std::streamsize>(size));
    const Result<supervisor::Pipeline> from_file = supervisor::LoadPipeline(f.file);
    QUIVER_FUZZ_CHECK(
        from_file.ok() == from_string.ok() &&
            from_file.status().ToString() == from_string.status().ToString(),
        "LoadPipeline and LoadPipelineFromString disagree: " + StatusText(from_file.status()) +
            " vs " + StatusText(from_string.status()));
  }

  const Result<std::vector<supervisor::SchemaField>> fields =
      supervisor::ParseSchemaJson(text, "fuzz.json");
  if (fields.ok()) {
    QUIVER_FUZZ_CHECK(!fields->empty(), "an empty schema accepted");
    auto schema = supervisor::ToArrowSchema(fields.value());
    QUIVER_FUZZ_CHECK(schema.ok(), "ParseSchemaJson accepts what ToArrowSchema refuses: " +
                                       StatusText(schema.status()));
    QUIVER_FUZZ_CHECK(payload::CheckEvolution({}, **schema).ok(), "schema not creatable");
  } else {
    QUIVER_FUZZ_CHECK(fields.status().code() == ErrorCode::kInvalidArgument,
                      StatusText(fields.status()));
  }

  if (size <= 64) {
    const Result<uint64_t> bytes = supervisor::ParseByteSize(text);
    if (!bytes.ok()) {
      QUIVER_FUZZ_CHECK(bytes.status().code() == ErrorCode::kInvalidArgument,
                        StatusText(bytes.status()));
    }
  }
}

}  // namespace quiver::fuzz
