#include "quiver/frame.h"

#include <arrow/array.h>
#include <arrow/builder.h>
#include <arrow/record_batch.h>
#include <arrow/type.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "quiver/sample_header.h"
#include "quiver/tensor.h"

namespace quiver {
namespace {

using std::chrono::milliseconds;

std::string UniqueName(std::string_view what) {
  return "frame-" + std::string(what) + "-" + std::to_string(getpid());
}

void Fill(std::span<std::byte> bytes, uint8_t seed) {
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = std::byte(static_cast<uint8_t>(seed + i));
}

bool Matches(std::span<const std::byte> bytes, uint8_t seed) {
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] != std::byte(static_cast<uint8_t>(seed + i))) return false;
  }
  return true;
}

bool Inside(const void* p, const Sample& sample) {
  const auto* b = static_cast<const std::byte*>(p);
  return b >= sample.data().data() && b < sample.data().data() + sample.size();
}

// A channel with its publisher and one subscriber, all in this process.
struct Pipe {
  explicit Pipe(std::string_view what, size_t capacity = 1 << 20)
      : channel(*Channel::Create(UniqueName(what), {.capacity = capacity})),
        publisher(*channel.CreatePublisher()),
        subscriber(*channel.CreateSubscriber()) {}

  std::shared_ptr<const Sample> Receive() {
    auto sample = subscriber.Receive(milliseconds(200));
    EXPECT_TRUE(sample.ok()) << sample.status().ToString();
    if (!sample.ok()) return nullptr;
    return std::make_shared<const Sample>(std::move(*sample));
  }

  Channel channel;
  Publisher publisher;
  Subscriber subscriber;
};

// --- Audio ---------------------------------------------------------------------------------

TEST(AudioFrameTest, TenMillisecondsOfStereoFloat48kIs3840BytesReadInPlace) {
  Pipe pipe("audio");
  auto loan = LoanAudioFrame(
      pipe.publisher,
      {.sample_rate = 48000, .channels = 2, .format = SampleFormat::kF32, .frame_count = 480});
  ASSERT_TRUE(loan.ok()) << loan.status().ToString();
  ASSERT_EQ(loan->data().size(), 3840u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(loan->data().data()) % kBodyAlignment, 0u);
  auto* pcm = reinterpret_cast<float*>(loan->data().data());
  for (int i = 0; i < 960; ++i) pcm[i] = static_cast<float>(i % 2 == 0 ? i : -i) / 960.0f;
  ASSERT_TRUE(PublishAudioFrame(pipe.publisher, std::move(*loan)).ok());

  std::shared_ptr<const Sample> sample = pipe.Receive();
  auto frame = ReadAudioFrame(sample);
  ASSERT_TRUE(frame.ok()) << frame.status().ToString();
  EXPECT_EQ(frame->info.sample_rate, 48000u);
  EXPECT_EQ(frame->info.channels, 2u);
  EXPECT_EQ(frame->info.format, SampleFormat::kF32);
  EXPECT_EQ(frame->info.frame_count, 480u);
  ASSERT_EQ(frame->data.size(), 3840u);
  EXPECT_TRUE(Inside(frame->data.data(), *sample)) << "read in place, not copied";
  const auto* got = reinterpret_cast<const float*>(frame->data.data());
  EXPECT_EQ(got[0], 0.0f);
  EXPECT_EQ(got[959], -959.0f / 960.0f);
}

TEST(AudioFrameTest, CopyInTakesTheFrameCountFromThePcmSize) {
  Pipe pipe("audiocopy");
  std::vector<std::byte> pcm(1000);
  Fill(pcm, 9);
  const AudioFrameInfo s16_stereo{
      .sample_rate = 16000, .channels = 2, .format = SampleFormat::kS16, .frame_count = 7};
  ASSERT_TRUE(PublishAudioFrame(pipe.publisher, s16_stereo, pcm).ok());
  auto frame = ReadAudioFrame(pipe.Receive());
  ASSERT_TRUE(frame.ok()) << frame.status().ToString();
  EXPECT_EQ(frame->info.frame_count, 250u);
  EXPECT_TRUE(Matches(frame->data, 9));

  std::vector<std::byte> ragged(1002);
  EXPECT_EQ(PublishAudioFrame(pipe.publisher, s16_stereo, std::span(ragged).first(1001)).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(LoanAudioFrame(pipe.publisher, {.sample_rate = 0, .channels = 2}).status().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(LoanAudioFrame(pipe.publisher, {.sample_rate = 8000, .channels = 0}).status().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(
      LoanAudioFrame(pipe.publisher,
                     {.sample_rate = 8000, .channels = 1, .format = static_cast<SampleFormat>(42)})
          .status()
          .code(),
      ErrorCode::kInvalidArgument);
}

TEST(AudioFrameTest, FormatNamesRoundTrip) {
  for (SampleFormat f : {SampleFormat::kU8, SampleFormat::kS16, SampleFormat::kS32,
                         SampleFormat::kF32, SampleFormat::kF64}) {
    auto parsed = ParseSampleFormat(SampleFormatName(f));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, f);
  }
  EXPECT_EQ(*ParseSampleFormat("f32"), SampleFormat::kF32);
  EXPECT_EQ(ParseSampleFormat("S24").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(BytesPerSample(static_cast<SampleFormat>(0)), 0u);
}

// --- Image ---------------------------------------------------------------------------------

TEST(ImageFrameTest, Rgba1080pRoundTripsInPlace) {
  Pipe pipe("rgba", 16 << 20);
  auto loan = LoanImageFrame(pipe.publisher,
                             {.width = 1920, .height = 1080, .format = PixelFormat::kRgba8});
  ASSERT_TRUE(loan.ok()) << loan.status().ToString();
  EXPECT_EQ(loan->info().stride, 1920u * 4);
  ASSERT_EQ(loan->data().size(), 1920u * 1080 * 4);
  Fill(loan->data(), 77);
  ASSERT_TRUE(PublishImageFrame(pipe.publisher, std::move(*loan)).ok());

  std::shared_ptr<const Sample> sample = pipe.Receive();
  auto frame = ReadImageFrame(sample);
  ASSERT_TRUE(frame.ok()) << frame.status().ToString();
  EXPECT_EQ(frame->info.width, 1920u);
  EXPECT_EQ(frame->info.height, 1080u);
  EXPECT_EQ(frame->info.stride, 7680u);
  EXPECT_EQ(frame->info.format, PixelFormat::kRgba8);
  ASSERT_EQ(frame->data.size(), 8294400u);
  EXPECT_TRUE(Matches(frame->data, 77));
  EXPECT_TRUE(Inside(frame->data.data(), *sample));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(frame->data.data()) % kBodyAlignment, 0u);
}

TEST(ImageFrameTest, PaddedRowsKeepTheirStride) {
  Pipe pipe("padded");
  std::vector<std::byte> pixels(size_t{16} * 3);  // 5 RGB pixels (15 bytes) per 16-byte row
  Fill(pixels, 5);
  const ImageFrameInfo info{.width = 5, .height = 3, .format = PixelFormat::kRgb8, .stride = 16};
  ASSERT_TRUE(PublishImageFrame(pipe.publisher, info, pixels).ok());
  auto frame = ReadImageFrame(pipe.Receive());
  ASSERT_TRUE(frame.ok()) << frame.status().ToString();
  EXPECT_EQ(frame->info.stride, 16u);
  EXPECT_TRUE(Matches(frame->data, 5));

  EXPECT_EQ(LoanImageFrame(pipe.publisher, {.width = 5, .format = PixelFormat::kRgb8, .stride = 14})
                .status()
                .code(),
            ErrorCode::kInvalidArgument)
      << "a stride shorter than a row";
  EXPECT_EQ(PublishImageFrame(pipe.publisher, info, std::span(pixels).first(47)).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(LoanImageFrame(pipe.publisher, {.width = 1, .format = static_cast<PixelFormat>(0)})
                .status()
                .code(),
            ErrorCode::kInvalidArgument);
}

TEST(ImageFrameTest, FormatNamesRoundTrip) {
  for (PixelFormat f : {PixelFormat::kGray8, PixelFormat::kGray16, PixelFormat::kRgb8,
                        PixelFormat::kBgr8, PixelFormat::kRgba8, PixelFormat::kBgra8}) {
    auto parsed = ParsePixelFormat(PixelFormatName(f));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, f);
  }
  EXPECT_EQ(PixelFormatName(PixelFormat::kRgba8), "RGBA8");
  EXPECT_EQ(*ParsePixelFormat("bgra8"), PixelFormat::kBgra8);
  EXPECT_EQ(ParsePixelFormat("YUV420").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ParsePixelFormat("").status().code(), ErrorCode::kInvalidArgument);
}

TEST(FrameTest, OtherKindsAreInvalidArgument) {
  Pipe pipe("kinds");
  std::vector<std::byte> pcm(8);
  ASSERT_TRUE(PublishAudioFrame(pipe.publisher,
                                {.sample_rate = 8000, .channels = 1, .format = SampleFormat::kU8},
                                pcm)
                  .ok());
  EXPECT_EQ(ReadImageFrame(pipe.Receive()).status().code(), ErrorCode::kInvalidArgument);
  std::vector<std::byte> pixels(4);
  ASSERT_TRUE(PublishImageFrame(pipe.publisher, {.width = 1, .height = 1}, pixels).ok());
  EXPECT_EQ(ReadAudioFrame(pipe.Receive()).status().code(), ErrorCode::kInvalidArgument);
  ASSERT_TRUE(PublishImageFrame(pipe.publisher, {.width = 1, .height = 1}, pixels).ok());
  EXPECT_EQ(ReadTensor(pipe.Receive()).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ReadImageFrame(nullptr).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ReadAudioFrame(nullptr).status().code(), ErrorCode::kInvalidArgument);
}

// --- Corruption ----------------------------------------------------------------------------

// Field offsets in a frame sample: SampleHeader at 0, the frame header at 64.
constexpr size_t kMetaLength = 24, kBodyLength = 40, kCount = 48, kVersion = 64;
constexpr size_t kSampleRate = 68, kChannels = 72, kSampleFormat = 74, kFrameCount = 80;
constexpr size_t kWidth = 68, kHeight = 72, kStride = 76, kPixelFormat = 80;

struct Poke {
  size_t offset;
  size_t width;  // bytes: 2, 4 or 8
  uint64_t value;
};

struct CorruptionCase {
  const char* what;
  std::vector<Poke> pokes;
  const char* message;  // must appear in the error
};

void PokeAll(LoanedSample& loan, const std::vector<Poke>& pokes) {
  for (const Poke& p : pokes) std::memcpy(loan.data().data() + p.offset, &p.value, p.width);
}

TEST(AudioFrameTest, EveryCorruptedHeaderFieldIsShmCorruptionNotACrash) {
  // A valid 48 kHz stereo S16 frame of 100 frames (400 bytes) before the pokes.
  const std::vector<CorruptionCase> cases = {
      {"meta_length", {{kMetaLength, 8, 16}}, "meta_length"},
      {"version", {{kVersion, 4, 7}}, "version"},
      {"sample_rate", {{kSampleRate, 4, 0}}, "sample_rate"},
      {"channels", {{kChannels, 2, 0}}, "channels"},
      {"unknown sample_format", {{kSampleFormat, 2, 0}}, "sample_format"},
      {"garbage sample_format", {{kSampleFormat, 2, 0xffff}}, "sample_format"},
      {"frame_count alone", {{kFrameCount, 8, 101}}, "count"},
      {"frame_count and count", {{kFrameCount, 8, 101}, {kCount, 8, 101}}, "body_length"},
      {"frame_count overflows",
       {{kFrameCount, 8, uint64_t{1} << 62}, {kCount, 8, uint64_t{1} << 62}},
       "overflows"},
      {"more channels", {{kChannels, 2, 3}}, "body_length"},
      {"wider samples",
       {{kSampleFormat, 2, static_cast<uint16_t>(SampleFormat::kF64)}},
       "body_length"},
      {"body_length short", {{kBodyLength, 8, 399}}, "body_length"},
      {"body_length past the sample", {{kBodyLength, 8, 1 << 20}}, "body"},
  };
  Pipe pipe("audiocorrupt");
  for (const CorruptionCase& c : cases) {
    SCOPED_TRACE(c.what);
    auto loan = LoanAudioFrame(
        pipe.publisher,
        {.sample_rate = 48000, .channels = 2, .format = SampleFormat::kS16, .frame_count = 100});
    ASSERT_TRUE(loan.ok());
    Fill(loan->data(), 1);
    PokeAll(loan->sample(), c.pokes);
    ASSERT_TRUE(PublishAudioFrame(pipe.publisher, std::move(*loan)).ok());
    auto frame = ReadAudioFrame(pipe.Receive());
    ASSERT_FALSE(frame.ok()) << "accepted a corrupted " << c.what;
    EXPECT_EQ(frame.status().code(), ErrorCode::kShmCorruption) << frame.status().ToString();
    EXPECT_NE(frame.status().message().find(c.message), std::string::npos)
        << frame.status().ToString();
  }
}

TEST(ImageFrameTest, EveryCorruptedHeaderFieldIsShmCorruptionNotACrash) {
  // A valid 10x4 RGBA8 image with 48-byte rows (192 bytes) before the pokes.
  const std::vector<CorruptionCase> cases = {
      {"meta_length", {{kMetaLength, 8, 0}}, "meta_length"},
      {"version", {{kVersion, 4, 0}}, "version"},
      {"stride < width * bpp", {{kStride, 4, 39}}, "stride"},
      {"width past the stride", {{kWidth, 4, 13}}, "stride"},
      {"huge width", {{kWidth, 4, 0xffffffff}}, "stride"},
      {"wider pixels",
       {{kPixelFormat, 4, static_cast<uint32_t>(PixelFormat::kRgb8)}, {kWidth, 4, 17}},
       "stride"},
      {"unknown pixel_format", {{kPixelFormat, 4, 0}}, "pixel_format"},
      {"garbage pixel_format", {{kPixelFormat, 4, 0x80000005}}, "pixel_format"},
      {"taller", {{kHeight, 4, 5}}, "body_length"},
      {"huge height", {{kHeight, 4, 0xffffffff}}, "body_length"},
      {"larger stride", {{kStride, 4, 64}}, "body_length"},
      {"body_length short", {{kBodyLength, 8, 191}}, "body_length"},
      {"body_length past the sample", {{kBodyLength, 8, 1 << 20}}, "body"},
      {"count", {{kCount, 8, 2}}, "count"},
  };
  Pipe pipe("imagecorrupt");
  for (const CorruptionCase& c : cases) {
    SCOPED_TRACE(c.what);
    auto loan = LoanImageFrame(
        pipe.publisher, {.width = 10, .height = 4, .format = PixelFormat::kRgba8, .stride = 48});
    ASSERT_TRUE(loan.ok());
    Fill(loan->data(), 1);
    PokeAll(loan->sample(), c.pokes);
    ASSERT_TRUE(PublishImageFrame(pipe.publisher, std::move(*loan)).ok());
    auto frame = ReadImageFrame(pipe.Receive());
    ASSERT_FALSE(frame.ok()) << "accepted a corrupted " << c.what;
    EXPECT_EQ(frame.status().code(), ErrorCode::kShmCorruption) << frame.status().ToString();
    EXPECT_NE(frame.status().message().find(c.message), std::string::npos)
        << frame.status().ToString();
  }
}

// --- Evidence ------------------------------------------------------------------------------

TEST(EvidenceTest, SchemaIsTheSeedsEvidence) {
  auto schema = EvidenceSchema();
  ASSERT_EQ(schema->num_fields(), 4);
  EXPECT_TRUE(schema->field(0)->Equals(*arrow::field("data", arrow::binary())));
  EXPECT_TRUE(schema->field(1)->Equals(*arrow::field("width", arrow::int32())));
  EXPECT_TRUE(schema->field(2)->Equals(*arrow::field("height", arrow::int32())));
  EXPECT_TRUE(schema->field(3)->Equals(*arrow::field("format", arrow::utf8())));
}

TEST(EvidenceTest, ImageFrameBecomesAnEvidenceBatchWithoutCopyingPixels) {
  Pipe pipe("evidence", 16 << 20);
  auto loan = LoanImageFrame(pipe.publisher,
                             {.width = 1920, .height = 1080, .format = PixelFormat::kRgba8});
  ASSERT_TRUE(loan.ok());
  Fill(loan->data(), 21);
  ASSERT_TRUE(PublishImageFrame(pipe.publisher, std::move(*loan)).ok());

  std::shared_ptr<arrow::RecordBatch> batch;
  const std::byte* pixels = nullptr;
  {
    auto frame = ReadImageFrame(pipe.Receive());
    ASSERT_TRUE(frame.ok());
    pixels = frame->data.data();
    auto made = ImageFrameToEvidenceBatch(*frame);
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    batch = *made;
    const auto& data = static_cast<const arrow::BinaryArray&>(*batch->column(0));
    EXPECT_EQ(reinterpret_cast<const std::byte*>(data.value_data()->data()), pixels);
    EXPECT_TRUE(Inside(data.GetView(0).data(), *frame->sample))
        << "the binary value must point into the sample";
  }  // the view and its sample reference are gone; the batch alone holds the sample

  ASSERT_TRUE(batch->ValidateFull().ok()) << batch->ValidateFull().ToString();
  EXPECT_TRUE(batch->schema()->Equals(*EvidenceSchema()));
  ASSERT_EQ(batch->num_rows(), 1);
  const auto& data = static_cast<const arrow::BinaryArray&>(*batch->column(0));
  EXPECT_EQ(data.GetView(0).size(), 8294400u);
  EXPECT_EQ(reinterpret_cast<const std::byte*>(data.GetView(0).data()), pixels);
  EXPECT_TRUE(Matches(std::as_bytes(std::span(data.GetView(0))), 21));
  EXPECT_EQ(static_cast<const arrow::Int32Array&>(*batch->column(1)).Value(0), 1920);
  EXPECT_EQ(static_cast<const arrow::Int32Array&>(*batch->column(2)).Value(0), 1080);
  EXPECT_EQ(static_cast<const arrow::StringArray&>(*batch->column(3)).GetView(0), "RGBA8");
  EXPECT_EQ(pipe.channel.Stats().samples_in_use, 1u) << "the batch keeps the sample";

  batch.reset();
  EXPECT_TRUE(pipe.publisher.TryLoan(15 << 20).ok()) << "dropping the batch frees the sample";
}

TEST(EvidenceTest, EvidenceRowBecomesAnImageFrame) {
  // Two rows, as a seed would send them: a tight GRAY8 and a row-padded RGB8 image.
  std::string gray(size_t{6} * 4, '\0'), rgb(size_t{16} * 2, '\0');
  for (size_t i = 0; i < gray.size(); ++i) gray[i] = static_cast<char>(i);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<char>(100 + i);
  arrow::BinaryBuilder data;
  arrow::Int32Builder width, height;
  arrow::StringBuilder format;
  ASSERT_TRUE(data.Append(gray).ok() && data.Append(rgb).ok());
  ASSERT_TRUE(width.Append(6).ok() && width.Append(5).ok());
  ASSERT_TRUE(height.Append(4).ok() && height.Append(2).ok());
  ASSERT_TRUE(format.Append("gray8").ok() && format.Append("RGB8").ok());
  auto batch = arrow::RecordBatch::Make(
      EvidenceSchema(), 2, {*data.Finish(), *width.Finish(), *height.Finish(), *format.Finish()});

  Pipe pipe("fromevidence");
  ASSERT_TRUE(PublishEvidenceAsImageFrame(pipe.publisher, *batch, 0).ok());
  ASSERT_TRUE(PublishEvidenceAsImageFrame(pipe.publisher, *batch, 1).ok());
  auto first = ReadImageFrame(pipe.Receive());
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->info.format, PixelFormat::kGray8);
  EXPECT_EQ(first->info.stride, 6u);
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(first->data.data()), first->data.size()),
            gray);
  auto second = ReadImageFrame(pipe.Receive());
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->info.width, 5u);
  EXPECT_EQ(second->info.stride, 16u) << "stride = len(data) / height";

  // And back again: frame -> Evidence batch -> frame gives the same image.
  auto again = ImageFrameToEvidenceBatch(*second);
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(PublishEvidenceAsImageFrame(pipe.publisher, **again, 0).ok());
  auto third = ReadImageFrame(pipe.Receive());
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->info.width, second->info.width);
  EXPECT_EQ(third->info.stride, second->info.stride);
  EXPECT_TRUE(
      std::equal(third->data.begin(), third->data.end(), second->data.begin(), second->data.end()));
}

TEST(EvidenceTest, BadEvidenceRowsAreInvalidArgument) {
  auto make = [](const std::string& pixels, int32_t w, int32_t h, const std::string& fmt) {
    arrow::BinaryBuilder data;
    arrow::Int32Builder width, height;
    arrow::StringBuilder format;
    EXPECT_TRUE(data.Append(pixels).ok() && width.Append(w).ok() && height.Append(h).ok() &&
                format.Append(fmt).ok());
    return arrow::RecordBatch::Make(
        EvidenceSchema(), 1, {*data.Finish(), *width.Finish(), *height.Finish(), *format.Finish()});
  };
  Pipe pipe("badevidence");
  auto code = [&](const arrow::RecordBatch& batch, int64_t row = 0) {
    return PublishEvidenceAsImageFrame(pipe.publisher, batch, row).code();
  };
  EXPECT_EQ(code(*make(std::string(8, 'x'), 2, 1, "YUV")), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(*make(std::string(7, 'x'), 2, 1, "RGBA8")), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(*make(std::string(9, 'x'), 2, 2, "GRAY16")), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(*make(std::string(8, 'x'), -2, 1, "RGBA8")), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(*make(std::string(8, 'x'), 2, 1, "RGBA8"), 1), ErrorCode::kInvalidArgument);
  auto not_evidence = arrow::RecordBatch::Make(
      arrow::schema({arrow::field("data", arrow::utf8())}), 0,
      std::vector<std::shared_ptr<arrow::Array>>{*arrow::StringBuilder().Finish()});
  EXPECT_EQ(code(*not_evidence), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(*make(std::string(8, 'x'), 2, 1, "RGBA8")), ErrorCode::kOk);

  ImageFrameView orphan;  // a hand-made view with no sample behind it
  EXPECT_EQ(ImageFrameToEvidenceBatch(orphan).status().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace quiver
