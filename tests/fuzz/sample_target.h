// The sample target (src/payload/): the input is published verbatim as one raw sample
// (Publisher::PublishCopy) into an Arrow channel with four subscribers, which decode it as a
// subscriber would: ArrowSubscriber::Decode with kStructure, with kFull, with kFull and a
// reader schema (projection), and ReadTensor / ReadAudioFrame / ReadImageFrame. Whatever is
// accepted must validate and lie inside its sample; whatever is refused, with the documented
// codes. Run by sample_fuzzer.cc; replayed by tests/fuzz_regression_test.cc, which with
// make_seeds.cc also uses the channel and its schemas.
//
// The channel is made once per process, on a memfd: nothing is created in /dev/shm, so a
// fuzzer killed at any point leaves nothing behind.
#pragma once

#include <arrow/api.h>
#include <arrow/ipc/api.h>
#include <arrow/pretty_print.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

#include "fuzz_support.h"
#include "payload/schema_evolution.h"
#include "quiver/arrow.h"
#include "quiver/channel.h"
#include "quiver/frame.h"
#include "quiver/sample_header.h"
#include "quiver/status.h"
#include "quiver/tensor.h"

namespace quiver::fuzz {

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
  if (!serialized.ok()) return Status::InvalidArgument(serialized.status().ToString());
  QUIVER_ASSIGN_OR_RETURN(uint32_t version, publisher.RegisterType((*serialized)->ToString()));
  if (version != 2) return Status::InvalidArgument("schema v2 got another version");
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

}  // namespace quiver::fuzz
