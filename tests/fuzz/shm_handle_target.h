// The shm handle target: CheckDataRange and HandleResolver (src/control/resolver.cc) against
// a real channel, and the channel header validation (ValidateConfig) that attaching relies
// on. Before each handle is resolved a fresh sample is published; a handle must resolve to
// exactly the sample it names (its sequence, offset, size and bytes) or be refused with its
// code; a header ValidateConfig accepts must describe a layout that fits its segment. Run by
// shm_handle_fuzzer.cc; replayed by tests/fuzz_regression_test.cc.
//
// Input: byte 0 selects the mode.
//   0  direct handle:  u8 offset_kind, u64 offset, u8 size_kind, u64 size, u8 format,
//                      u8 name_kind, then the segment name (name_kind odd: the fuzz channel).
//                      name_kind also picks the safe fields: bits 1-2 the sequence (none,
//                      the fresh sample's, one before or after it, offset_kind's raw value),
//                      bit 3 another generation, bit 4 the fresh sample's offset and size
//   1  JSON handle:    the rest is the value of payload.shm_handle of a CMD_PROCESS envelope
//   2  bad header:     u8 start, u8 length, then `length` bytes XORed into the real
//                      ChannelConfig at `start` (in the segment itself), then u64 offset,
//                      u64 size; the channel attached under it, then the header is restored
//   3  ValidateConfig: u64 segment size delta, then up to 176 bytes XORed into a copy of
//                      the real config; pure
//
// The channel is made once per process, on a memfd: nothing is created in /dev/shm, so a
// fuzzer killed at any point leaves nothing behind.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "channel/layout.h"
#include "envelope_oracle.h"
#include "fuzz_support.h"
#include "quiver/channel.h"
#include "quiver/control.h"
#include "quiver/envelope.h"
#include "quiver/status.h"

namespace quiver::fuzz {

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

inline constexpr std::string_view kHandleChannel = "fzhandle";

struct HandleFixture {
  Channel channel;
  std::optional<Publisher> publisher;
  control::HandleResolver resolver;
  std::map<uint64_t, PublishedSample> published;  // what each sequence was, for the oracle
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
                                                 .overflow = OverflowPolicy::kDropOldest,
                                                 .backing = Backing::kMemfd,
                                                 .type_registry_bytes = 1024});
    QUIVER_FUZZ_SETUP(made.ok(), StatusText(made.status()));
    auto* f = new HandleFixture{std::move(made).value()};
    f->fd = f->channel.fd();
    // Channel::Attach (mode 2) finds the name; QUIVER_CHANNELS makes that name the memfd.
    const std::string env = std::string(kHandleChannel) + "=" + std::to_string(f->fd);
    QUIVER_FUZZ_SETUP(setenv("QUIVER_CHANNELS", env.c_str(), 1) == 0, "setenv");
    auto publisher = f->channel.CreatePublisher();
    QUIVER_FUZZ_SETUP(publisher.ok(), StatusText(publisher.status()));
    f->publisher.emplace(std::move(publisher).value());
    const Status watched = f->resolver.Watch(f->channel);
    QUIVER_FUZZ_SETUP(watched.ok(), StatusText(watched));
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

// Publishes a fresh sample (bytes that differ from sample to sample) and returns its handle.
inline control::ShmHandle PublishFresh(size_t size) {
  HandleFixture& f = GetHandleFixture();
  std::vector<std::byte> bytes(size);
  const uint64_t salt = f.published.empty() ? 0 : f.published.rbegin()->first + 1;
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = std::byte(i * 7 + salt);
  QUIVER_FUZZ_SETUP(f.publisher->PublishCopy(bytes).ok(), "publish");
  auto handle = control::HandleForLast(*f.publisher);
  QUIVER_FUZZ_SETUP(handle.ok(), StatusText(handle.status()));
  f.published[*handle->sequence] = {*handle->sequence, handle->offset, handle->size};
  return *handle;
}

// Resolves `handle` (without waiting) and checks the outcome against what the fixture knows:
// a handle without generation and sequence is kInvalidArgument; one naming another channel
// kNotFound; a range outside the data area kHandleOutOfRange; another generation
// kStaleHandle; a resolved handle is exactly a published sample, its bytes those of the data
// area. Then everything held is forgotten. Never a crash.
inline void CheckResolve(const control::ShmHandle& handle, bool ours, const std::string& what) {
  HandleFixture& f = GetHandleFixture();
  const uint64_t capacity = f.pristine.data_capacity;
  const Status bounds = CheckDataRange(handle.offset, handle.size, capacity);
  const bool inside =
      handle.size > 0 && handle.offset < capacity && handle.size <= capacity - handle.offset;
  QUIVER_FUZZ_CHECK(bounds.ok() == inside, what + ": CheckDataRange says " + StatusText(bounds));
  if (!bounds.ok()) {
    QUIVER_FUZZ_CHECK(bounds.code() == ErrorCode::kHandleOutOfRange, StatusText(bounds));
  }
  Result<Sample> sample = f.resolver.Resolve(handle, std::chrono::milliseconds(0));
  const ErrorCode code = sample.status().code();
  const std::string outcome =
      what + ": " + (sample.ok() ? "resolved" : StatusText(sample.status()));
  if (!handle.generation || !handle.sequence) {
    QUIVER_FUZZ_CHECK(code == ErrorCode::kInvalidArgument, outcome);
  } else if (!ours) {
    QUIVER_FUZZ_CHECK(code == ErrorCode::kNotFound, outcome);
  } else if (!inside) {
    QUIVER_FUZZ_CHECK(code == ErrorCode::kHandleOutOfRange, outcome);
  } else if (*handle.generation != f.channel.generation()) {
    QUIVER_FUZZ_CHECK(code == ErrorCode::kStaleHandle, outcome);
  } else if (sample.ok()) {
    auto known = f.published.find(*handle.sequence);
    QUIVER_FUZZ_CHECK(known != f.published.end(), outcome + " to a sample never published");
    QUIVER_FUZZ_CHECK(known->second.offset == handle.offset && known->second.size == handle.size &&
                          sample->sequence() == *handle.sequence &&
                          sample->offset() == handle.offset && sample->size() == handle.size,
                      outcome + " to another sample than the handle names");
    QUIVER_FUZZ_CHECK(std::memcmp(sample->data().data(), f.data + handle.offset, handle.size) == 0,
                      what + ": the sample shows other bytes than the data area at its offset");
  } else {
    QUIVER_FUZZ_CHECK(code == ErrorCode::kStaleHandle || code == ErrorCode::kHandleOutOfRange ||
                          code == ErrorCode::kTimeout,
                      outcome);
  }
  if (!f.published.empty()) {
    control::ShmHandle last = handle;
    last.segment_id = std::string(kHandleChannel);
    last.sequence = f.published.rbegin()->first;
    f.resolver.Forget(last);
  }
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
  QUIVER_FUZZ_CHECK(ends_before(c.rings_offset, uint64_t{c.max_subscribers} * c.max_samples * 8,
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
      const control::ShmHandle fresh = PublishFresh(1 + h.size % 3000);
      const uint64_t fresh_sequence = *fresh.sequence;
      switch ((name_kind >> 1) % 4) {
        case 0:
          break;  // an unsafe handle
        case 1:
          h.sequence = fresh_sequence;
          break;
        case 2:
          h.sequence = fresh_sequence + (offset_kind % 2 == 0 ? 1 : -1);
          break;
        default:
          h.sequence = h.offset;
      }
      if (h.sequence) {
        h.generation = fresh.generation.value() ^ ((name_kind >> 3) & 1);
      }
      if ((name_kind >> 4) & 1) {
        h.offset = fresh.offset;
        h.size = fresh.size;
      }
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
      (void)PublishFresh(1 + h.size % 3000);
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
        // Attached by name under the corrupted header (as a resolver's Watch would be):
        // accepted only if the header's data area lies inside the segment, and then a range
        // is handed out only inside that area.
        Result<Channel> by_name = Channel::Attach(kHandleChannel);
        if (by_name.ok()) {
          QUIVER_FUZZ_CHECK(valid.ok(), "attached under a header ValidateConfig refuses");
          Result<std::span<const std::byte>> range = by_name->DataRange(h.offset, h.size);
          if (range.ok()) {
            QUIVER_FUZZ_CHECK(h.size > 0 && h.offset < corrupt.data_capacity &&
                                  h.size <= corrupt.data_capacity - h.offset,
                              "a range outside the (corrupted) header's data area");
            Touch(*range);
          } else {
            QUIVER_FUZZ_CHECK(range.status().code() == ErrorCode::kHandleOutOfRange,
                              StatusText(range.status()));
          }
        } else {
          const ErrorCode code = by_name.status().code();
          QUIVER_FUZZ_CHECK(
              code == ErrorCode::kShmCorruption || code == ErrorCode::kInvalidArgument,
              "corrupted header: " + StatusText(by_name.status()));
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

}  // namespace quiver::fuzz
