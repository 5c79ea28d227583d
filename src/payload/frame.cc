#include "quiver/frame.h"

#include <arrow/array.h>
#include <arrow/buffer.h>
#include <arrow/record_batch.h>
#include <arrow/scalar.h>
#include <arrow/type.h>

#include <cstring>
#include <limits>
#include <optional>
#include <string>

#include "payload/sample_buffer.h"
#include "payload/typed_header.h"
#include "quiver/sample_header.h"
#include "shm/stream_copy.h"

namespace quiver {
namespace {

// Both frame headers are 24 bytes, so both kinds put their data at the same aligned offset.
constexpr uint64_t kFrameBodyOffset = payload::BodyOffsetAfter(sizeof(AudioFrameHeader));
static_assert(sizeof(ImageFrameHeader) == sizeof(AudioFrameHeader));

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

Status Invalid(const std::string& what) { return Status::InvalidArgument(what); }

Status AudioCorrupt(const std::string& what) {
  return Status::ShmCorruption("audio_frame sample: " + what);
}

Status ImageCorrupt(const std::string& what) {
  return Status::ShmCorruption("image_frame sample: " + what);
}

// Bytes of `info`'s PCM, or nullopt on overflow.
std::optional<uint64_t> AudioBytes(const AudioFrameInfo& info) {
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(info.frame_count, uint64_t{info.channels}, &bytes) ||
      __builtin_mul_overflow(bytes, BytesPerSample(info.format), &bytes)) {
    return std::nullopt;
  }
  return bytes;
}

}  // namespace

size_t BytesPerSample(SampleFormat format) {
  switch (format) {
    case SampleFormat::kU8:
      return 1;
    case SampleFormat::kS16:
      return 2;
    case SampleFormat::kS32:
    case SampleFormat::kF32:
      return 4;
    case SampleFormat::kF64:
      return 8;
  }
  return 0;
}

std::string_view SampleFormatName(SampleFormat format) {
  switch (format) {
    case SampleFormat::kU8:
      return "U8";
    case SampleFormat::kS16:
      return "S16";
    case SampleFormat::kS32:
      return "S32";
    case SampleFormat::kF32:
      return "F32";
    case SampleFormat::kF64:
      return "F64";
  }
  return "UNKNOWN";
}

Result<SampleFormat> ParseSampleFormat(std::string_view name) {
  for (SampleFormat f : {SampleFormat::kU8, SampleFormat::kS16, SampleFormat::kS32,
                         SampleFormat::kF32, SampleFormat::kF64}) {
    if (EqualsIgnoreCase(name, SampleFormatName(f))) return f;
  }
  return Invalid("unknown sample format '" + std::string(name) + "'");
}

size_t BytesPerPixel(PixelFormat format) {
  switch (format) {
    case PixelFormat::kGray8:
      return 1;
    case PixelFormat::kGray16:
      return 2;
    case PixelFormat::kRgb8:
    case PixelFormat::kBgr8:
      return 3;
    case PixelFormat::kRgba8:
    case PixelFormat::kBgra8:
      return 4;
  }
  return 0;
}

std::string_view PixelFormatName(PixelFormat format) {
  switch (format) {
    case PixelFormat::kGray8:
      return "GRAY8";
    case PixelFormat::kGray16:
      return "GRAY16";
    case PixelFormat::kRgb8:
      return "RGB8";
    case PixelFormat::kBgr8:
      return "BGR8";
    case PixelFormat::kRgba8:
      return "RGBA8";
    case PixelFormat::kBgra8:
      return "BGRA8";
  }
  return "UNKNOWN";
}

Result<PixelFormat> ParsePixelFormat(std::string_view name) {
  for (PixelFormat f : {PixelFormat::kGray8, PixelFormat::kGray16, PixelFormat::kRgb8,
                        PixelFormat::kBgr8, PixelFormat::kRgba8, PixelFormat::kBgra8}) {
    if (EqualsIgnoreCase(name, PixelFormatName(f))) return f;
  }
  return Invalid("unknown pixel format '" + std::string(name) + "'");
}

// --- Audio ---------------------------------------------------------------------------------

Result<LoanedAudioFrame> LoanAudioFrame(Publisher& publisher, const AudioFrameInfo& info,
                                        LoanWait wait) {
  if (info.sample_rate == 0 || info.channels == 0) {
    return Invalid("audio frame needs a sample rate and at least one channel");
  }
  if (BytesPerSample(info.format) == 0) {
    return Invalid("unknown sample format " + std::to_string(static_cast<int>(info.format)));
  }
  const std::optional<uint64_t> body = AudioBytes(info);
  if (!body) return Invalid("audio frame too large");
  AudioFrameHeader h{};
  h.version = kAudioFrameHeaderVersion;
  h.sample_rate = info.sample_rate;
  h.channels = info.channels;
  h.sample_format = static_cast<uint16_t>(info.format);
  h.frame_count = info.frame_count;
  QUIVER_ASSIGN_OR_RETURN(
      LoanedSample loan,
      payload::LoanTypedSample(publisher, PayloadKind::kAudioFrame, std::as_bytes(std::span(&h, 1)),
                               *body, info.frame_count, wait));
  std::span<std::byte> data = loan.data().subspan(kFrameBodyOffset, *body);
  return LoanedAudioFrame(std::move(loan), data, info);
}

Status PublishAudioFrame(Publisher& publisher, LoanedAudioFrame&& frame) {
  return publisher.Publish(std::move(frame.sample()));
}

Status PublishAudioFrame(Publisher& publisher, AudioFrameInfo info,
                         std::span<const std::byte> pcm) {
  const uint64_t frame_bytes = uint64_t{info.channels} * BytesPerSample(info.format);
  if (frame_bytes == 0 || pcm.size() % frame_bytes != 0) {
    return Invalid("PCM of " + std::to_string(pcm.size()) +
                   " bytes is not a whole number of frames of " + std::to_string(frame_bytes) +
                   " bytes");
  }
  info.frame_count = pcm.size() / frame_bytes;
  QUIVER_ASSIGN_OR_RETURN(LoanedAudioFrame loan, LoanAudioFrame(publisher, info));
  if (!pcm.empty()) shm::CopyToShared(loan.data().data(), pcm.data(), pcm.size());
  return PublishAudioFrame(publisher, std::move(loan));
}

Result<AudioFrameView> ReadAudioFrame(std::shared_ptr<const Sample> sample) {
  if (sample == nullptr) return Invalid("null sample");
  AudioFrameHeader h;
  QUIVER_ASSIGN_OR_RETURN(SampleHeader header,
                          payload::ReadTypedHeader(sample->data(), PayloadKind::kAudioFrame,
                                                   std::as_writable_bytes(std::span(&h, 1))));
  if (h.version != kAudioFrameHeaderVersion) {
    return AudioCorrupt("audio header version " + std::to_string(h.version) +
                        ", this build reads " + std::to_string(kAudioFrameHeaderVersion));
  }
  if (h.sample_rate == 0) return AudioCorrupt("sample_rate is 0");
  if (h.channels == 0) return AudioCorrupt("channels is 0");
  const auto format = static_cast<SampleFormat>(h.sample_format);
  if (BytesPerSample(format) == 0) {
    return AudioCorrupt("unknown sample_format " + std::to_string(h.sample_format));
  }
  if (header.count != h.frame_count) {
    return AudioCorrupt("count " + std::to_string(header.count) + " but frame_count " +
                        std::to_string(h.frame_count));
  }
  const AudioFrameInfo info{.sample_rate = h.sample_rate,
                            .channels = h.channels,
                            .format = format,
                            .frame_count = h.frame_count};
  const std::optional<uint64_t> bytes = AudioBytes(info);
  if (!bytes) return AudioCorrupt("frame_count " + std::to_string(h.frame_count) + " overflows");
  if (*bytes != header.body_length) {
    return AudioCorrupt("body_length " + std::to_string(header.body_length) + " but frame_count " +
                        std::to_string(h.frame_count) + " needs " + std::to_string(*bytes));
  }
  std::span<const std::byte> data = sample->data().subspan(header.body_offset, *bytes);
  return AudioFrameView{.info = info, .data = data, .sample = std::move(sample)};
}

// --- Image ---------------------------------------------------------------------------------

Result<LoanedImageFrame> LoanImageFrame(Publisher& publisher, const ImageFrameInfo& info,
                                        LoanWait wait) {
  const size_t bpp = BytesPerPixel(info.format);
  if (bpp == 0) {
    return Invalid("unknown pixel format " + std::to_string(static_cast<uint32_t>(info.format)));
  }
  const uint64_t row = uint64_t{info.width} * bpp;
  if (info.stride != 0 && info.stride < row) {
    return Invalid("stride " + std::to_string(info.stride) + " < a row of " + std::to_string(row) +
                   " bytes");
  }
  if (row > std::numeric_limits<uint32_t>::max()) return Invalid("image row too wide");
  ImageFrameInfo resolved = info;
  if (resolved.stride == 0) resolved.stride = static_cast<uint32_t>(row);
  const uint64_t body = uint64_t{resolved.height} * resolved.stride;  // < 2^64: 32 x 32 bits
  ImageFrameHeader h{};
  h.version = kImageFrameHeaderVersion;
  h.width = resolved.width;
  h.height = resolved.height;
  h.stride = resolved.stride;
  h.pixel_format = static_cast<uint32_t>(resolved.format);
  QUIVER_ASSIGN_OR_RETURN(LoanedSample loan,
                          payload::LoanTypedSample(publisher, PayloadKind::kImageFrame,
                                                   std::as_bytes(std::span(&h, 1)), body, 1, wait));
  std::span<std::byte> data = loan.data().subspan(kFrameBodyOffset, body);
  return LoanedImageFrame(std::move(loan), data, resolved);
}

Status PublishImageFrame(Publisher& publisher, LoanedImageFrame&& frame) {
  return publisher.Publish(std::move(frame.sample()));
}

Status PublishImageFrame(Publisher& publisher, const ImageFrameInfo& info,
                         std::span<const std::byte> pixels) {
  QUIVER_ASSIGN_OR_RETURN(LoanedImageFrame loan, LoanImageFrame(publisher, info));
  if (pixels.size() != loan.data().size()) {
    return Invalid("image of " + std::to_string(pixels.size()) + " bytes; height * stride is " +
                   std::to_string(loan.data().size()));
  }
  if (!pixels.empty()) shm::CopyToShared(loan.data().data(), pixels.data(), pixels.size());
  return PublishImageFrame(publisher, std::move(loan));
}

Result<ImageFrameView> ReadImageFrame(std::shared_ptr<const Sample> sample) {
  if (sample == nullptr) return Invalid("null sample");
  ImageFrameHeader h;
  QUIVER_ASSIGN_OR_RETURN(SampleHeader header,
                          payload::ReadTypedHeader(sample->data(), PayloadKind::kImageFrame,
                                                   std::as_writable_bytes(std::span(&h, 1))));
  if (h.version != kImageFrameHeaderVersion) {
    return ImageCorrupt("image header version " + std::to_string(h.version) +
                        ", this build reads " + std::to_string(kImageFrameHeaderVersion));
  }
  const auto format = static_cast<PixelFormat>(h.pixel_format);
  const uint64_t bpp = BytesPerPixel(format);
  if (bpp == 0) return ImageCorrupt("unknown pixel_format " + std::to_string(h.pixel_format));
  if (h.stride < uint64_t{h.width} * bpp) {
    return ImageCorrupt("stride " + std::to_string(h.stride) + " < width " +
                        std::to_string(h.width) + " * " + std::to_string(bpp) + " bytes");
  }
  if (header.count != 1) return ImageCorrupt("count " + std::to_string(header.count) + ", not 1");
  const uint64_t bytes = uint64_t{h.height} * h.stride;
  if (bytes != header.body_length) {
    return ImageCorrupt("body_length " + std::to_string(header.body_length) + " but height " +
                        std::to_string(h.height) + " * stride " + std::to_string(h.stride) +
                        " is " + std::to_string(bytes));
  }
  const ImageFrameInfo info{
      .width = h.width, .height = h.height, .format = format, .stride = h.stride};
  std::span<const std::byte> data = sample->data().subspan(header.body_offset, bytes);
  return ImageFrameView{.info = info, .data = data, .sample = std::move(sample)};
}

// --- Evidence ------------------------------------------------------------------------------

std::shared_ptr<arrow::Schema> EvidenceSchema() {
  return arrow::schema(
      {arrow::field("data", arrow::binary()), arrow::field("width", arrow::int32()),
       arrow::field("height", arrow::int32()), arrow::field("format", arrow::utf8())});
}

Result<std::shared_ptr<arrow::RecordBatch>> ImageFrameToEvidenceBatch(const ImageFrameView& frame) {
  if (frame.sample == nullptr) return Invalid("image frame view without its sample");
  // Views are plain structs a caller could assemble by hand: check the span before slicing.
  const auto data_at = reinterpret_cast<uintptr_t>(frame.data.data());
  const auto sample_at = reinterpret_cast<uintptr_t>(frame.sample->data().data());
  if (!frame.data.empty() && (data_at < sample_at || data_at - sample_at > frame.sample->size() ||
                              frame.data.size() > frame.sample->size() - (data_at - sample_at))) {
    return Invalid("image frame data lies outside its sample");
  }
  constexpr uint64_t kInt32Max = std::numeric_limits<int32_t>::max();
  if (frame.info.width > kInt32Max || frame.info.height > kInt32Max ||
      frame.data.size() > kInt32Max) {
    return Invalid("image frame too large for Evidence's int32 columns and binary offsets");
  }
  const auto size = static_cast<int32_t>(frame.data.size());

  // The one allocation on the pixel path: two int32 offsets, [0, size).
  auto offsets = arrow::AllocateBuffer(2 * sizeof(int32_t));
  if (!offsets.ok()) return Status::IoError(offsets.status().ToString());
  const int32_t offset_values[2] = {0, size};
  std::memcpy((*offsets)->mutable_data(), offset_values, sizeof(offset_values));
  // An empty span may carry any pointer: slice it at the sample's start.
  const auto offset = frame.data.empty() ? 0 : static_cast<int64_t>(data_at - sample_at);
  std::shared_ptr<arrow::Buffer> values =
      arrow::SliceBuffer(payload::WrapSample(frame.sample), offset, size);
  auto data = std::make_shared<arrow::BinaryArray>(
      1, std::shared_ptr<arrow::Buffer>(std::move(*offsets)), std::move(values));

  auto column = [](const arrow::Scalar& scalar) { return arrow::MakeArrayFromScalar(scalar, 1); };
  auto width = column(arrow::Int32Scalar(static_cast<int32_t>(frame.info.width)));
  auto height = column(arrow::Int32Scalar(static_cast<int32_t>(frame.info.height)));
  auto format = column(arrow::StringScalar(std::string(PixelFormatName(frame.info.format))));
  if (!width.ok() || !height.ok() || !format.ok()) {
    return Status::IoError("cannot build Evidence columns");
  }
  return arrow::RecordBatch::Make(EvidenceSchema(), 1, {data, *width, *height, *format});
}

Status PublishEvidenceAsImageFrame(Publisher& publisher, const arrow::RecordBatch& evidence,
                                   int64_t row) {
  auto data = evidence.GetColumnByName("data");
  auto width = evidence.GetColumnByName("width");
  auto height = evidence.GetColumnByName("height");
  auto format = evidence.GetColumnByName("format");
  if (!data || !width || !height || !format || data->type_id() != arrow::Type::BINARY ||
      width->type_id() != arrow::Type::INT32 || height->type_id() != arrow::Type::INT32 ||
      format->type_id() != arrow::Type::STRING) {
    return Invalid("not an Evidence batch: " + evidence.schema()->ToString() + "; expected " +
                   EvidenceSchema()->ToString());
  }
  if (row < 0 || row >= evidence.num_rows()) {
    return Invalid("row " + std::to_string(row) + " of a batch of " +
                   std::to_string(evidence.num_rows()));
  }
  if (data->IsNull(row) || width->IsNull(row) || height->IsNull(row) || format->IsNull(row)) {
    return Invalid("Evidence row " + std::to_string(row) + " has a null field");
  }
  const std::string_view pixels = static_cast<const arrow::BinaryArray&>(*data).GetView(row);
  const int32_t w = static_cast<const arrow::Int32Array&>(*width).Value(row);
  const int32_t h = static_cast<const arrow::Int32Array&>(*height).Value(row);
  QUIVER_ASSIGN_OR_RETURN(
      PixelFormat pixel_format,
      ParsePixelFormat(static_cast<const arrow::StringArray&>(*format).GetView(row)));
  if (w < 0 || h < 0) return Invalid("negative Evidence width or height");
  // Evidence has no stride column: the rows share the data evenly, padding included.
  const uint64_t row_bytes = uint64_t(w) * BytesPerPixel(pixel_format);
  const uint64_t stride = h == 0 ? row_bytes : pixels.size() / uint64_t(h);
  if (stride * uint64_t(h) != pixels.size() || stride < row_bytes ||
      stride > std::numeric_limits<uint32_t>::max()) {
    return Invalid("Evidence data of " + std::to_string(pixels.size()) + " bytes does not hold " +
                   std::to_string(h) + " rows of " + std::to_string(row_bytes) + " bytes");
  }
  const ImageFrameInfo info{.width = static_cast<uint32_t>(w),
                            .height = static_cast<uint32_t>(h),
                            .format = pixel_format,
                            .stride = static_cast<uint32_t>(stride)};
  return PublishImageFrame(publisher, info, std::as_bytes(std::span(pixels)));
}

}  // namespace quiver
