#include "quiver/sample_header.h"

#include <cstring>
#include <string>

#include "quiver/channel.h"

namespace quiver {

Status CheckChannelCarries(const Channel& channel, std::optional<PayloadKind> kind) {
  const bool typed = channel.type_versions() > 0;
  const bool arrow = kind == PayloadKind::kArrowBatch;
  if (typed == arrow) return Status::OK();
  if (arrow) {
    return Status::InvalidArgument("channel '" + channel.name() +
                                   "' has no Arrow schema; create it with a schema to publish "
                                   "Arrow batches, or publish tensors, frames or bytes on it");
  }
  const std::string what = !kind                               ? "raw bytes"
                           : *kind == PayloadKind::kTensor     ? "tensors"
                           : *kind == PayloadKind::kImageFrame ? "image frames"
                                                               : "audio frames";
  return Status::InvalidArgument("channel '" + channel.name() +
                                 "' has an Arrow schema, and its subscribers read every sample "
                                 "as a record batch; publish " +
                                 what + " on a channel created without a schema");
}

std::string_view PayloadKindName(PayloadKind kind) {
  switch (kind) {
    case PayloadKind::kArrowBatch:
      return "arrow_batch";
    case PayloadKind::kTensor:
      return "tensor";
    case PayloadKind::kAudioFrame:
      return "audio_frame";
    case PayloadKind::kImageFrame:
      return "image_frame";
  }
  return "unknown";
}

SampleHeader MakeSampleHeader(PayloadKind kind) {
  SampleHeader h{};
  h.magic = kSampleMagic;
  h.version = kSampleHeaderVersion;
  h.kind = static_cast<uint16_t>(kind);
  return h;
}

std::optional<PayloadKind> PeekPayloadKind(std::span<const std::byte> sample) {
  if (sample.size() < sizeof(SampleHeader)) return std::nullopt;
  SampleHeader h;
  std::memcpy(&h, sample.data(), sizeof(h));
  const auto kind = static_cast<PayloadKind>(h.kind);
  if (h.magic != kSampleMagic || PayloadKindName(kind) == "unknown") return std::nullopt;
  return kind;
}

Result<SampleHeader> ReadSampleHeader(std::span<const std::byte> sample, PayloadKind expected) {
  auto corrupt = [&](const std::string& what) {
    return Status::ShmCorruption("sample of " + std::to_string(sample.size()) + " bytes: " + what);
  };
  if (sample.size() < sizeof(SampleHeader)) return corrupt("too small for a sample header");
  SampleHeader h;
  std::memcpy(&h, sample.data(), sizeof(h));
  if (h.magic != kSampleMagic) return corrupt("bad magic (not a typed Quiver sample)");
  if (h.version != kSampleHeaderVersion) {
    return corrupt("header version " + std::to_string(h.version) + ", this build reads " +
                   std::to_string(kSampleHeaderVersion));
  }
  if (h.kind != static_cast<uint16_t>(expected)) {
    const auto kind = static_cast<PayloadKind>(h.kind);
    if (PayloadKindName(kind) == "unknown") {
      return corrupt("unknown payload kind " + std::to_string(h.kind));
    }
    return Status::InvalidArgument("sample carries a " + std::string(PayloadKindName(kind)) +
                                   ", not a " + std::string(PayloadKindName(expected)));
  }
  const uint64_t size = sample.size();
  if (h.meta_offset < sizeof(SampleHeader) || h.meta_offset > size ||
      h.meta_length > size - h.meta_offset) {
    return corrupt("metadata [" + std::to_string(h.meta_offset) + ", +" +
                   std::to_string(h.meta_length) + ") lies outside it");
  }
  if (h.body_offset % kBodyAlignment != 0 || h.body_offset < sizeof(SampleHeader) ||
      h.body_offset > size || h.body_length > size - h.body_offset) {
    return corrupt("body [" + std::to_string(h.body_offset) + ", +" +
                   std::to_string(h.body_length) + ") lies outside it or is not " +
                   std::to_string(kBodyAlignment) + "-byte aligned");
  }
  return h;
}

}  // namespace quiver
