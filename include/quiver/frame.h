// Media frame samples: interleaved PCM audio and images, written in place and read in place,
// plus an Arrow view of an image frame (one row: data, width, height, format). Free functions;
// loans are thread-compatible like the LoanedSample they own, views are immutable (thread-safe).
//
// A frame sample is [SampleHeader | AudioFrameHeader or ImageFrameHeader | padding | data],
// the data starting at a multiple of 64 bytes. The layout is a wire format:
// docs/ARCHITECTURE.md, "Typed samples".
//
//   auto loan = quiver::LoanAudioFrame(publisher, {.sample_rate = 48000, .channels = 2,
//                                                  .format = quiver::SampleFormat::kF32,
//                                                  .frame_count = 480});  // 10 ms, 3840 B
//   capture.Read(loan->data());
//   quiver::PublishAudioFrame(publisher, std::move(*loan));
#pragma once

#include <arrow/type_fwd.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <type_traits>

#include "quiver/channel.h"
#include "quiver/status.h"

namespace quiver {

static_assert(std::endian::native == std::endian::little,
              "typed sample headers are little-endian and copied as raw structs");

inline constexpr uint32_t kAudioFrameHeaderVersion = 1;
inline constexpr uint32_t kImageFrameHeaderVersion = 1;

/// PCM sample encodings (interleaved, little-endian). Values are part of the wire format.
enum class SampleFormat : uint16_t {
  kU8 = 1,   ///< unsigned 8-bit, silence at 128
  kS16 = 2,  ///< signed 16-bit
  kS32 = 3,  ///< signed 32-bit
  kF32 = 4,  ///< IEEE float32, nominal range [-1, 1]
  kF64 = 5,  ///< IEEE float64, nominal range [-1, 1]
};

/// Pixel layouts, one byte per channel except kGray16 (little-endian). Values are part of the
/// wire format.
enum class PixelFormat : uint32_t {
  kGray8 = 1,
  kGray16 = 2,
  kRgb8 = 3,
  kBgr8 = 4,
  kRgba8 = 5,
  kBgra8 = 6,
};

/// Returns 1, 2, 4, 4 or 8; 0 for a value that is not a SampleFormat.
size_t BytesPerSample(SampleFormat format);
/// Returns "U8", "S16", "S32", "F32", "F64"; "UNKNOWN" otherwise.
std::string_view SampleFormatName(SampleFormat format);
/// The format named `name` (case-insensitive); kInvalidArgument for any other name.
Result<SampleFormat> ParseSampleFormat(std::string_view name);

/// Returns 1, 2, 3, 3, 4 or 4; 0 for a value that is not a PixelFormat.
size_t BytesPerPixel(PixelFormat format);
/// Returns "GRAY8", "GRAY16", "RGB8", "BGR8", "RGBA8", "BGRA8"; "UNKNOWN" otherwise.
std::string_view PixelFormatName(PixelFormat format);
/// The format named `name` (case-insensitive, e.g. "RGBA8" or "rgba8"); kInvalidArgument for
/// any other name.
Result<PixelFormat> ParsePixelFormat(std::string_view name);

/// The kind-specific header of a kAudioFrame sample, at SampleHeader::meta_offset
/// (meta_length == sizeof(AudioFrameHeader)). Little-endian, 24 bytes. The body is exactly
/// frame_count * channels * BytesPerSample(sample_format) bytes; SampleHeader::count is
/// frame_count.
struct AudioFrameHeader {
  uint32_t version;        // kAudioFrameHeaderVersion
  uint32_t sample_rate;    // Hz, > 0
  uint16_t channels;       // > 0; samples of one frame are adjacent (interleaved)
  uint16_t sample_format;  // SampleFormat
  uint32_t reserved;       // 0
  uint64_t frame_count;    // frames (one sample per channel each); 0 is allowed
};
static_assert(std::is_trivially_copyable_v<AudioFrameHeader> && sizeof(AudioFrameHeader) == 24 &&
              alignof(AudioFrameHeader) == 8 && offsetof(AudioFrameHeader, frame_count) == 16);

/// The kind-specific header of a kImageFrame sample, at SampleHeader::meta_offset
/// (meta_length == sizeof(ImageFrameHeader)). Little-endian, 24 bytes. The body is exactly
/// height * stride bytes, row 0 first; SampleHeader::count is 1.
struct ImageFrameHeader {
  uint32_t version;       // kImageFrameHeaderVersion
  uint32_t width;         // pixels; 0 is allowed (an empty image)
  uint32_t height;        // rows; 0 is allowed
  uint32_t stride;        // bytes from one row to the next, >= width * BytesPerPixel
  uint32_t pixel_format;  // PixelFormat
  uint32_t reserved;      // 0
};
static_assert(std::is_trivially_copyable_v<ImageFrameHeader> && sizeof(ImageFrameHeader) == 24 &&
              alignof(ImageFrameHeader) == 4 && offsetof(ImageFrameHeader, pixel_format) == 16);

/// What an audio frame holds, in host form.
struct AudioFrameInfo {
  uint32_t sample_rate = 0;
  uint16_t channels = 0;
  SampleFormat format = SampleFormat::kS16;
  uint64_t frame_count = 0;
};

/// What an image frame holds, in host form.
struct ImageFrameInfo {
  uint32_t width = 0;
  uint32_t height = 0;
  PixelFormat format = PixelFormat::kRgba8;
  /// Bytes per row; 0 when loaning means tightly packed (width * BytesPerPixel).
  uint32_t stride = 0;
};

/// A received audio frame: its header and a read-only view of its PCM, valid while `sample`
/// (which the view shares) lives.
struct AudioFrameView {
  AudioFrameInfo info;
  std::span<const std::byte> data;
  std::shared_ptr<const Sample> sample;
};

/// A received image frame: its header (stride resolved) and a read-only view of its rows,
/// valid while `sample` (which the view shares) lives.
struct ImageFrameView {
  ImageFrameInfo info;
  std::span<const std::byte> data;
  std::shared_ptr<const Sample> sample;
};

template <typename Info>
class LoanedFrame;
using LoanedAudioFrame = LoanedFrame<AudioFrameInfo>;
using LoanedImageFrame = LoanedFrame<ImageFrameInfo>;

/// An audio or image frame being written in place in a loaned sample. Its headers are
/// already written; fill data() and publish it. Dropping it unpublished gives the space back.
/// Move-only.
template <typename Info>
class LoanedFrame {
 public:
  /// The frame's bytes, 64-byte aligned, not zeroed.
  std::span<std::byte> data() const { return data_; }
  /// The header as written (for images, with the stride resolved).
  const Info& info() const { return info_; }
  /// The whole loaned sample, headers included. For tests and tools that need the raw bytes;
  /// writing outside data() produces a sample readers will refuse.
  LoanedSample& sample() { return sample_; }

 private:
  friend Result<LoanedAudioFrame> LoanAudioFrame(Publisher&, const AudioFrameInfo&, LoanWait);
  friend Result<LoanedImageFrame> LoanImageFrame(Publisher&, const ImageFrameInfo&, LoanWait);
  LoanedFrame(LoanedSample sample, std::span<std::byte> data, const Info& info)
      : sample_(std::move(sample)), data_(data), info_(info) {}

  LoanedSample sample_;
  std::span<std::byte> data_;
  Info info_;
};

/// Loans a sample for an audio frame and writes its headers. kInvalidArgument for a zero
/// sample rate or channel count, an unknown format or a size that overflows.
Result<LoanedAudioFrame> LoanAudioFrame(Publisher& publisher, const AudioFrameInfo& info,
                                        LoanWait wait = LoanWait::kForRoom);
/// Publishes a frame loaned by LoanAudioFrame.
Status PublishAudioFrame(Publisher& publisher, LoanedAudioFrame&& frame);
/// Publishes a copy of interleaved `pcm`; info.frame_count is ignored and taken from the size
/// of `pcm`, which must be a whole number of frames (else kInvalidArgument).
Status PublishAudioFrame(Publisher& publisher, AudioFrameInfo info, std::span<const std::byte> pcm);
/// Returns the audio frame in `sample` without copying, after checking every header field:
/// kShmCorruption (naming the field) if one is wrong; kInvalidArgument if `sample` is null or
/// a valid sample of another kind.
Result<AudioFrameView> ReadAudioFrame(std::shared_ptr<const Sample> sample);

/// Loans a sample for an image frame and writes its headers. kInvalidArgument for an unknown
/// format or a stride smaller than a row.
Result<LoanedImageFrame> LoanImageFrame(Publisher& publisher, const ImageFrameInfo& info,
                                        LoanWait wait = LoanWait::kForRoom);
/// Publishes a frame loaned by LoanImageFrame.
Status PublishImageFrame(Publisher& publisher, LoanedImageFrame&& frame);
/// Publishes a copy of `pixels`, which must be exactly height * stride bytes (stride 0: tight).
Status PublishImageFrame(Publisher& publisher, const ImageFrameInfo& info,
                         std::span<const std::byte> pixels);
/// Returns the image frame in `sample` without copying, after checking every header field:
/// kShmCorruption (naming the field) if one is wrong; kInvalidArgument if `sample` is null or
/// a valid sample of another kind.
Result<ImageFrameView> ReadImageFrame(std::shared_ptr<const Sample> sample);

/// An image as one Arrow row, as the document example (examples/evidence) carries pages: [data:
/// binary, width: int32, height: int32, format: utf8]. `format` holds a PixelFormatName. Evidence
/// has no stride column: a row's stride is len(data) / height, which is width * BytesPerPixel when
/// the rows are tightly packed.
std::shared_ptr<arrow::Schema> EvidenceSchema();

/// A one-row Evidence batch over `frame` without copying its pixels: the `data` column's value
/// buffer is a slice of the sample (which the batch keeps alive); only the offsets and the
/// small columns are allocated. kInvalidArgument if the view has no sample, its data lies
/// outside the sample, or a dimension does not fit the int32 columns.
Result<std::shared_ptr<arrow::RecordBatch>> ImageFrameToEvidenceBatch(const ImageFrameView& frame);

/// Publishes row `row` of an Evidence batch as an image frame (one copy of its pixels).
/// kInvalidArgument if the batch does not have the Evidence fields, the row is null or out of
/// range, the format is unknown, or the data does not hold `height` rows of at least a
/// width's worth of pixels.
Status PublishEvidenceAsImageFrame(Publisher& publisher, const arrow::RecordBatch& evidence,
                                   int64_t row);

}  // namespace quiver
