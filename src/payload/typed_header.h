// The front of every typed sample: the SampleHeader at 0, then the kind's own header at
// kSampleHeaderBytes (TensorHeader, AudioFrameHeader, ImageFrameHeader, an Arrow sample's
// MessageTable). The one writer and the one reader of both, for every kind. Pure functions
// over sample bytes, thread-safe; LoanTypedSample is thread-compatible, as its Publisher.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "quiver/channel.h"
#include "quiver/sample_header.h"
#include "quiver/status.h"

namespace quiver::payload {

constexpr uint64_t AlignUp(uint64_t v, uint64_t alignment) {
  return (v + alignment - 1) / alignment * alignment;
}

/// Where the body starts when `meta_length` bytes of metadata follow the SampleHeader: the
/// next multiple of kBodyAlignment.
constexpr uint64_t BodyOffsetAfter(uint64_t meta_length) {
  return AlignUp(kSampleHeaderBytes + meta_length, kBodyAlignment);
}

/// Writes `header` at the start of `sample` and `kind_header` at header.meta_offset, which
/// must be kSampleHeaderBytes (every writer puts the kind header right after the header).
void WriteTypedHeader(std::span<std::byte> sample, const SampleHeader& header,
                      std::span<const std::byte> kind_header);

/// For kinds whose metadata is their kind header alone (tensors, frames): loans a sample
/// whose body of `body_length` bytes starts at BodyOffsetAfter(kind_header.size()), zeroes
/// everything before the body (padding too: no stale bytes leak to readers) and writes both
/// headers, with `count` as SampleHeader::count.
Result<LoanedSample> LoanTypedSample(Publisher& publisher, PayloadKind kind,
                                     std::span<const std::byte> kind_header, uint64_t body_length,
                                     uint64_t count, LoanWait wait = LoanWait::kForRoom);

/// How long a kind's metadata is, next to its kind header.
enum class MetaLength {
  kExact,    ///< the kind header alone (tensors, frames)
  kAtLeast,  ///< the kind header, then more (an Arrow sample's entries and flatbuffers)
};

/// Checks `sample`'s SampleHeader (ReadSampleHeader: kShmCorruption, or kInvalidArgument
/// for a sample of another kind) and that its metadata is as long as `length` says, then
/// copies the kind header that opens the metadata into `kind_header`. One copy out of shared
/// memory: every later check and use reads the copy, so a writer that changes the shared
/// bytes afterwards cannot get a checked value swapped for an unchecked one.
Result<SampleHeader> ReadTypedHeader(std::span<const std::byte> sample, PayloadKind kind,
                                     std::span<std::byte> kind_header,
                                     MetaLength length = MetaLength::kExact);

}  // namespace quiver::payload
