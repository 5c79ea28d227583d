// SampleHeader: the first 64 bytes of every typed sample (Arrow batch, tensor, frame).
// A wire format between processes and languages: little-endian, fixed layout, versioned.
// Documented in docs/ARCHITECTURE.md ("Typed samples"); change both together.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>

#include "quiver/status.h"

namespace quiver {

inline constexpr uint32_t kSampleMagic = 0x31535651;  // "QVS1" little-endian
inline constexpr uint16_t kSampleHeaderVersion = 1;
inline constexpr size_t kSampleHeaderBytes = 64;
/// Bodies (Arrow IPC bodies, tensor data, frame data) start at a multiple of this offset
/// within the sample, which itself starts 64-byte aligned: SIMD-ready in every process.
inline constexpr size_t kBodyAlignment = 64;

enum class PayloadKind : uint16_t {
  kArrowBatch = 1,  ///< meta: an Arrow IPC message (metadata); body: its body
  kTensor = 2,      ///< meta: TensorHeader; body: the elements
  kAudioFrame = 3,  ///< meta: AudioFrameHeader; body: interleaved PCM
  kImageFrame = 4,  ///< meta: ImageFrameHeader; body: rows of pixels
};

/// Returns "arrow_batch", "tensor", "audio_frame", "image_frame" or "unknown".
std::string_view PayloadKindName(PayloadKind kind);

class Channel;

/// What a channel carries, one rule for every publisher: a channel created with an Arrow
/// schema carries Arrow batches only (its subscribers decode every sample as one); tensors,
/// frames and raw bytes (`kind` nullopt) go on a channel created without one, and Arrow
/// batches need one. kInvalidArgument naming the channel and what to do otherwise.
Status CheckChannelCarries(const Channel& channel, std::optional<PayloadKind> kind);

struct SampleHeader {
  uint32_t magic;         // kSampleMagic
  uint16_t version;       // kSampleHeaderVersion
  uint16_t kind;          // PayloadKind
  uint32_t type_version;  // Arrow: the channel type (schema) version; 0 for other kinds
  uint32_t reserved0;
  uint64_t meta_offset;  // kind-specific metadata, from the sample start
  uint64_t meta_length;
  uint64_t body_offset;  // from the sample start; a multiple of kBodyAlignment
  uint64_t body_length;
  uint64_t count;  // rows (Arrow), elements (tensor), frames (audio), 1 (image)
  uint64_t reserved1;
};
static_assert(std::is_trivially_copyable_v<SampleHeader> &&
              sizeof(SampleHeader) == kSampleHeaderBytes && alignof(SampleHeader) == 8);

/// Copies the header out of `sample` and checks it: magic, version, kind == `expected`, and
/// that the metadata and body ranges lie inside the sample. kShmCorruption (naming the
/// field) if not; kInvalidArgument if the sample is a valid sample of another kind.
Result<SampleHeader> ReadSampleHeader(std::span<const std::byte> sample, PayloadKind expected);

/// The kind `sample` says it carries, from its magic and kind fields only: nullopt for bytes
/// that are no typed sample (a raw one) or of a kind this build does not know. Checks nothing
/// else: the reader of that kind (ReadTensor, ReadImageFrame, ...) checks the whole header.
std::optional<PayloadKind> PeekPayloadKind(std::span<const std::byte> sample);

/// A header for `kind` with the magic and version filled in, the rest zero.
SampleHeader MakeSampleHeader(PayloadKind kind);

}  // namespace quiver
