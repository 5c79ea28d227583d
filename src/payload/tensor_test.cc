#include "quiver/tensor.h"

#include <arrow/buffer.h>
#include <arrow/type.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <limits>
#include <thread>
#include <vector>

#include "quiver/arrow.h"
#include "quiver/frame.h"
#include "quiver/sample_header.h"

namespace quiver {
namespace {

using std::chrono::milliseconds;

std::string UniqueName(std::string_view what) {
  return "tensor-" + std::string(what) + "-" + std::to_string(getpid());
}

void Fill(std::span<std::byte> bytes, uint8_t seed) {
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = std::byte(static_cast<uint8_t>(seed + i));
}

bool Matches(const uint8_t* bytes, size_t size, uint8_t seed) {
  for (size_t i = 0; i < size; ++i) {
    if (bytes[i] != static_cast<uint8_t>(seed + i)) return false;
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

TEST(TensorTest, RoundTripsEveryDtypeAndShapeInPlace) {
  struct Case {
    std::shared_ptr<arrow::DataType> type;
    std::vector<int64_t> shape;
  };
  const std::vector<Case> cases = {
      {arrow::uint8(), {48, 64, 3}},  // HWC image
      {arrow::float32(), {3, 4}},
      {arrow::float64(), {7}},
      {arrow::int8(), {2, 2, 2, 2, 2, 2, 2, 2}},  // the most dimensions a header holds
      {arrow::int16(), {5, 1}},
      {arrow::int32(), {1, 9}},
      {arrow::int64(), {4, 3}},
      {arrow::uint16(), {2, 3, 4}},
      {arrow::uint32(), {6}},
      {arrow::uint64(), {2, 2}},
      {arrow::float16(), {8, 8}},
      {arrow::float64(), {}},     // 0-d: a scalar, one element
      {arrow::float32(), {0, 3}}  // empty: no elements, no body
  };
  Pipe pipe("dtypes");
  uint8_t seed = 1;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.type->ToString() + " ndim " + std::to_string(c.shape.size()));
    auto loan = LoanTensor(pipe.publisher, c.type, c.shape);
    ASSERT_TRUE(loan.ok()) << loan.status().ToString();
    EXPECT_EQ(reinterpret_cast<uintptr_t>(loan->data().data()) % kBodyAlignment, 0u);
    Fill(loan->data(), seed);
    const size_t bytes = loan->data().size();
    ASSERT_TRUE(PublishTensor(pipe.publisher, std::move(*loan)).ok());

    std::shared_ptr<const Sample> sample = pipe.Receive();
    ASSERT_NE(sample, nullptr);
    auto tensor = ReadTensor(sample);
    ASSERT_TRUE(tensor.ok()) << tensor.status().ToString();
    const arrow::Tensor& t = **tensor;
    EXPECT_TRUE(t.type()->Equals(*c.type));
    EXPECT_EQ(t.shape(), c.shape);
    EXPECT_TRUE(t.is_row_major());
    int64_t elements = 1;
    for (int64_t dim : c.shape) elements *= dim;
    EXPECT_EQ(t.size(), elements);
    EXPECT_EQ(static_cast<size_t>(t.size() * c.type->byte_width()), bytes);
    EXPECT_TRUE(Matches(t.raw_data(), bytes, seed));
    if (bytes > 0) {
      EXPECT_TRUE(Inside(t.raw_data(), *sample)) << "the tensor must read the sample in place";
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % kBodyAlignment, 0u);
    }
    // The view (what the Python binding reads) says the same, over the same bytes.
    auto view = ReadTensorView(sample);
    ASSERT_TRUE(view.ok()) << view.status().ToString();
    EXPECT_TRUE(view->type->Equals(*c.type));
    EXPECT_EQ(view->shape, t.shape());
    EXPECT_EQ(view->strides, t.strides());
    EXPECT_EQ(view->data.size(), bytes);
    if (bytes > 0) EXPECT_EQ(static_cast<const void*>(view->data.data()), t.raw_data());
    EXPECT_EQ(view->sample, sample);
    ++seed;
  }
}

TEST(TensorTest, Float32MatrixIsUsableThroughArrow) {
  Pipe pipe("matrix");
  auto loan = LoanTensor(pipe.publisher, arrow::float32(), {3, 4});
  ASSERT_TRUE(loan.ok());
  auto* values = reinterpret_cast<float*>(loan->data().data());
  for (int i = 0; i < 12; ++i) values[i] = static_cast<float>(i) * 0.5f;
  EXPECT_EQ(loan->strides(), (std::vector<int64_t>{16, 4}));
  ASSERT_TRUE(PublishTensor(pipe.publisher, std::move(*loan)).ok());

  auto tensor = ReadTensor(pipe.Receive());
  ASSERT_TRUE(tensor.ok()) << tensor.status().ToString();
  EXPECT_EQ((*tensor)->Value<arrow::FloatType>({2, 3}), 5.5f);
  EXPECT_EQ((*tensor)->Value<arrow::FloatType>({1, 0}), 2.0f);
  EXPECT_TRUE((*tensor)->Validate().ok());
}

TEST(TensorTest, NonContiguousArrowTensorIsPublishedRowMajor) {
  // A 4x6 int32 matrix, then two views of it that are not row-major.
  std::vector<int32_t> matrix(24);
  for (int i = 0; i < 24; ++i) matrix[i] = i;
  auto buffer = arrow::Buffer::Wrap(matrix);
  auto transposed = arrow::Tensor::Make(arrow::int32(), buffer, {6, 4}, {4, 24});   // [j][i]
  auto every_other = arrow::Tensor::Make(arrow::int32(), buffer, {2, 3}, {48, 8});  // [2i][2j]
  ASSERT_TRUE(transposed.ok() && every_other.ok());
  ASSERT_FALSE((*transposed)->is_row_major());
  ASSERT_FALSE((*every_other)->is_contiguous());

  Pipe pipe("strided");
  ASSERT_TRUE(PublishTensor(pipe.publisher, **transposed).ok());
  ASSERT_TRUE(PublishTensor(pipe.publisher, **every_other).ok());

  auto t = ReadTensor(pipe.Receive());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ((*t)->shape(), (std::vector<int64_t>{6, 4}));
  EXPECT_TRUE((*t)->is_row_major());
  for (int64_t j = 0; j < 6; ++j) {
    for (int64_t i = 0; i < 4; ++i) EXPECT_EQ((*t)->Value<arrow::Int32Type>({j, i}), i * 6 + j);
  }
  EXPECT_TRUE((*t)->Equals(**transposed)) << "same values, whatever the strides";

  auto e = ReadTensor(pipe.Receive());
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  const auto* v = reinterpret_cast<const int32_t*>((*e)->raw_data());
  EXPECT_EQ(std::vector<int32_t>(v, v + 6), (std::vector<int32_t>{0, 2, 4, 12, 14, 16}));
}

TEST(TensorTest, RowMajorArrowTensorIsCopiedOnce) {
  std::vector<double> values = {1.5, -2.0, 3.25, 4.0, 5.0, 6.0};
  auto source = arrow::Tensor::Make(arrow::float64(), arrow::Buffer::Wrap(values), {2, 3});
  ASSERT_TRUE(source.ok());
  Pipe pipe("copy");
  ASSERT_TRUE(PublishTensor(pipe.publisher, **source).ok());
  auto t = ReadTensor(pipe.Receive());
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE((*t)->Equals(**source));
  EXPECT_NE((*t)->raw_data(), (*source)->raw_data());
}

TEST(TensorTest, TensorKeepsItsSampleUntilDropped) {
  constexpr size_t kCapacity = 64 << 10;
  Pipe pipe("keepalive", kCapacity);
  auto loan = LoanTensor(pipe.publisher, arrow::uint8(), {48 << 10});  // most of the channel
  ASSERT_TRUE(loan.ok());
  ASSERT_TRUE(PublishTensor(pipe.publisher, std::move(*loan)).ok());

  std::shared_ptr<arrow::Tensor> tensor;
  {
    std::shared_ptr<const Sample> sample = pipe.Receive();
    auto read = ReadTensor(sample);
    ASSERT_TRUE(read.ok());
    tensor = *read;
  }  // only the tensor holds the sample now
  EXPECT_EQ(pipe.channel.Stats().samples_in_use, 1u);
  EXPECT_EQ(pipe.publisher.TryLoan(32 << 10).status().code(), ErrorCode::kChannelFull)
      << "the space under a live tensor must not be reused";

  tensor.reset();
  EXPECT_TRUE(pipe.publisher.TryLoan(32 << 10).ok()) << "dropping the tensor frees the sample";
}

TEST(TensorTest, AnotherProcessReadsTheTensorInPlace) {
  const std::string name = UniqueName("fork");
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child attaches on its own and reports through its exit code (no gtest here).
    std::optional<Subscriber> subscriber;
    for (int i = 0; i < 500 && !subscriber; ++i) {
      // Attach once the publisher exists, so the subscriber cannot take its absence for a
      // publisher that has gone.
      if (auto channel = Channel::Open(name); channel.ok() && channel->Stats().publisher_alive) {
        if (auto s = channel->CreateSubscriber(); s.ok()) subscriber.emplace(std::move(*s));
      }
      if (!subscriber) std::this_thread::sleep_for(milliseconds(10));
    }
    if (!subscriber) _exit(2);
    auto sample = subscriber->Receive(std::chrono::seconds(5));
    if (!sample.ok()) _exit(3);
    auto shared = std::make_shared<const Sample>(std::move(*sample));
    auto tensor = ReadTensor(shared);
    if (!tensor.ok()) _exit(4);
    if ((*tensor)->shape() != std::vector<int64_t>{2, 3}) _exit(5);
    if ((*tensor)->Value<arrow::Int64Type>({1, 2}) != 42) _exit(6);
    if (!Inside((*tensor)->raw_data(), *shared)) _exit(7);
    _exit(0);
  }

  auto channel = Channel::Create(name, {.capacity = 1 << 20});
  ASSERT_TRUE(channel.ok()) << channel.status().ToString();
  auto publisher = channel->CreatePublisher();
  ASSERT_TRUE(publisher.ok());
  for (int i = 0; i < 500 && publisher->subscriber_count() == 0; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_EQ(publisher->subscriber_count(), 1u);
  auto loan = LoanTensor(*publisher, arrow::int64(), {2, 3});
  ASSERT_TRUE(loan.ok());
  auto* v = reinterpret_cast<int64_t*>(loan->data().data());
  for (int i = 0; i < 6; ++i) v[i] = i == 5 ? 42 : i;
  ASSERT_TRUE(PublishTensor(*publisher, std::move(*loan)).ok());

  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "child failed at step " << WEXITSTATUS(status);
}

// LoanWait::kNo: a full channel is kChannelFull at once, not a wait (the Python binding
// tries so before it gives the GIL away); with room it loans as kForRoom does.
TEST(TensorTest, ATypedLoanThatMayNotWaitIsChannelFullAtOnceWhenThereIsNoRoom) {
  Pipe pipe("nowait", 64 << 10);
  const std::vector<int64_t> most = {48 << 10};
  {
    auto held = LoanTensor(pipe.publisher, arrow::uint8(), most);  // most of the 64 KiB
    ASSERT_TRUE(held.ok()) << held.status().ToString();
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(LoanTensor(pipe.publisher, arrow::uint8(), most, LoanWait::kNo).status().code(),
              ErrorCode::kChannelFull);
    EXPECT_EQ(
        LoanImageFrame(pipe.publisher, {.width = 64, .height = 64}, LoanWait::kNo).status().code(),
        ErrorCode::kChannelFull);
    const AudioFrameInfo audio{.sample_rate = 48000, .channels = 2, .frame_count = 8192};
    EXPECT_EQ(LoanAudioFrame(pipe.publisher, audio, LoanWait::kNo).status().code(),
              ErrorCode::kChannelFull);
    EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(100)) << "it waited";
  }  // the held loan is dropped: its space comes back
  EXPECT_TRUE(LoanTensor(pipe.publisher, arrow::uint8(), most, LoanWait::kNo).ok());
}

TEST(TensorTest, LoanRefusesWhatTheHeaderCannotCarry) {
  Pipe pipe("refuse");
  EXPECT_EQ(LoanTensor(pipe.publisher, arrow::utf8(), {3}).status().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(LoanTensor(pipe.publisher, arrow::boolean(), {3}).status().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(LoanTensor(pipe.publisher, nullptr, {3}).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(LoanTensor(pipe.publisher, arrow::uint8(), std::vector<int64_t>(9, 1)).status().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(LoanTensor(pipe.publisher, arrow::uint8(), {2, -1}).status().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(LoanTensor(pipe.publisher, arrow::uint64(), {int64_t{1} << 62}).status().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(LoanTensor(pipe.publisher, arrow::uint8(), {2 << 20}).status().code(),
            ErrorCode::kCapacityExceeded);
  EXPECT_EQ(ReadTensor(nullptr).status().code(), ErrorCode::kInvalidArgument);
}

TEST(TensorTest, OtherKindsAreInvalidArgumentNotCorruption) {
  Pipe pipe("kind");
  std::vector<std::byte> pixels(size_t{4} * 2 * 2);
  ASSERT_TRUE(PublishImageFrame(pipe.publisher, {.width = 2, .height = 2}, pixels).ok());
  auto as_tensor = ReadTensor(pipe.Receive());
  EXPECT_EQ(as_tensor.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(as_tensor.status().message().find("image_frame"), std::string::npos);

  ASSERT_TRUE(PublishTensor(pipe.publisher, *LoanTensor(pipe.publisher, arrow::uint8(), {4})).ok());
  EXPECT_EQ(ReadImageFrame(pipe.Receive()).status().code(), ErrorCode::kInvalidArgument);

  ASSERT_TRUE(pipe.publisher.PublishCopy(std::vector<std::byte>(100)).ok());
  EXPECT_EQ(ReadTensor(pipe.Receive()).status().code(), ErrorCode::kShmCorruption)
      << "an untyped sample has no magic";
}

TEST(TensorTest, AChannelWithAnArrowSchemaTakesNoTensorsOrFrames) {
  const std::string name = UniqueName("kinds");
  auto schema = arrow::schema({arrow::field("x", arrow::int64())});
  auto channel = CreateArrowChannel(name, schema, {.capacity = 1 << 16});
  ASSERT_TRUE(channel.ok()) << channel.status().ToString();
  auto publisher = channel->CreatePublisher();
  ASSERT_TRUE(publisher.ok());
  Status tensor = LoanTensor(*publisher, arrow::uint8(), {4}).status();
  EXPECT_EQ(tensor.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(tensor.message().find("publish tensors on a channel created without a schema"),
            std::string::npos)
      << tensor.ToString();
  EXPECT_EQ(LoanImageFrame(*publisher, {.width = 2, .height = 2}).status().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(LoanAudioFrame(*publisher, {.sample_rate = 8000, .channels = 1, .frame_count = 4})
                .status()
                .code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(CheckChannelCarries(*channel, std::nullopt).code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(CheckChannelCarries(*channel, PayloadKind::kArrowBatch).ok());
  Pipe pipe("untyped");
  EXPECT_EQ(CheckChannelCarries(pipe.channel, PayloadKind::kArrowBatch).code(),
            ErrorCode::kInvalidArgument);
}

TEST(TensorTest, DtypeNamesAreNumpysAndNameEveryTypeALoanTakes) {
  Pipe pipe("names");
  for (const char* name : {"uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64",
                           "float16", "float32", "float64"}) {
    SCOPED_TRACE(name);
    auto type = TensorTypeFromName(name);
    ASSERT_TRUE(type.ok()) << type.status().ToString();
    EXPECT_TRUE(LoanTensor(pipe.publisher, *type, {2}).ok());
  }
  EXPECT_TRUE((*TensorTypeFromName("float32"))->Equals(*arrow::float32()));
  for (const char* name : {"bool", "float", "complex64", "Float32", ""}) {
    const Status st = TensorTypeFromName(name).status();
    EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument) << name;
    EXPECT_NE(st.message().find("uint8, int8"), std::string::npos) << st.message();
  }
}

TEST(TensorTest, PeekPayloadKindNamesTypedSamplesOnly) {
  Pipe pipe("peek");
  ASSERT_TRUE(PublishTensor(pipe.publisher, *LoanTensor(pipe.publisher, arrow::uint8(), {4})).ok());
  EXPECT_EQ(PeekPayloadKind(pipe.Receive()->data()), PayloadKind::kTensor);
  std::vector<std::byte> pixels(size_t{4} * 2 * 2);
  ASSERT_TRUE(PublishImageFrame(pipe.publisher, {.width = 2, .height = 2}, pixels).ok());
  EXPECT_EQ(PeekPayloadKind(pipe.Receive()->data()), PayloadKind::kImageFrame);

  SampleHeader header = MakeSampleHeader(PayloadKind::kAudioFrame);
  std::vector<std::byte> bytes(sizeof(header));
  std::memcpy(bytes.data(), &header, sizeof(header));
  EXPECT_EQ(PeekPayloadKind(bytes), PayloadKind::kAudioFrame);
  EXPECT_EQ(PeekPayloadKind(std::span(bytes).first(sizeof(header) - 1)), std::nullopt);
  header.kind = 99;  // no kind this build knows
  std::memcpy(bytes.data(), &header, sizeof(header));
  EXPECT_EQ(PeekPayloadKind(bytes), std::nullopt);
  header = MakeSampleHeader(PayloadKind::kTensor);
  header.magic ^= 1;
  std::memcpy(bytes.data(), &header, sizeof(header));
  EXPECT_EQ(PeekPayloadKind(bytes), std::nullopt);
}

// Offsets of the fields in a tensor sample: SampleHeader at 0, TensorHeader at 64.
constexpr size_t kMagic = 0, kKind = 6, kMetaLength = 24, kBodyLength = 40, kCount = 48;
constexpr size_t kVersion = 64, kDtype = 68, kNdim = 72;
constexpr size_t Shape(size_t d) { return 80 + 8 * d; }
constexpr size_t Stride(size_t d) { return 144 + 8 * d; }

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

// A valid float32 [4, 5, 6] tensor (strides 120, 24, 4; body 480 bytes) with `pokes` written
// over its loaned bytes before it is published.
Result<std::shared_ptr<arrow::Tensor>> PublishCorruptedAndRead(Pipe& pipe,
                                                               const std::vector<Poke>& pokes) {
  auto loan = LoanTensor(pipe.publisher, arrow::float32(), {4, 5, 6});
  EXPECT_TRUE(loan.ok());
  Fill(loan->data(), 3);
  std::byte* bytes = loan->sample().data().data();
  for (const Poke& p : pokes) std::memcpy(bytes + p.offset, &p.value, p.width);
  EXPECT_TRUE(PublishTensor(pipe.publisher, std::move(*loan)).ok());
  return ReadTensor(pipe.Receive());
}

TEST(TensorTest, EveryCorruptedHeaderFieldIsShmCorruptionNotACrash) {
  const auto minus_4 = static_cast<uint64_t>(int64_t{-4});
  const std::vector<CorruptionCase> cases = {
      {"magic", {{kMagic, 4, 0x12345678}}, "magic"},
      {"unknown kind", {{kKind, 2, 99}}, "kind"},
      {"meta_length", {{kMetaLength, 8, 100}}, "meta_length"},
      {"tensor header version", {{kVersion, 4, 2}}, "version"},
      {"dtype utf8", {{kDtype, 4, arrow::Type::STRING}}, "dtype"},
      {"dtype bool", {{kDtype, 4, arrow::Type::BOOL}}, "dtype"},
      {"dtype garbage", {{kDtype, 4, 0xdeadbeef}}, "dtype"},
      {"dtype wider than the strides", {{kDtype, 4, arrow::Type::DOUBLE}}, "strides[2]"},
      {"ndim 9", {{kNdim, 4, 9}}, "ndim"},
      {"ndim huge", {{kNdim, 4, 0xffffffff}}, "ndim"},
      {"ndim smaller", {{kNdim, 4, 2}}, "count"},
      {"negative shape", {{Shape(0), 8, static_cast<uint64_t>(-1)}}, "shape[0]"},
      {"larger shape", {{Shape(1), 8, 6}}, "count"},
      {"larger shape and count", {{Shape(0), 8, 5}, {kCount, 8, 150}}, "body_length"},
      {"shape overflows the count", {{Shape(1), 8, uint64_t{1} << 62}}, "shape[1]"},
      {"negative stride", {{Stride(0), 8, minus_4}}, "strides[0]"},
      {"misaligned stride", {{Stride(0), 8, 121}}, "strides[0]"},
      {"stride past the body", {{Stride(0), 8, 124}}, "body_length"},
      {"stride overflows the extent",
       {{Stride(2), 8, std::numeric_limits<int64_t>::max() - 3}},
       "strides[2]"},
      {"body_length too short", {{kBodyLength, 8, 476}}, "body_length"},
      {"body_length past the sample", {{kBodyLength, 8, 1 << 20}}, "body"},
      {"count", {{kCount, 8, 121}}, "count"},
  };
  Pipe pipe("corrupt");
  for (const CorruptionCase& c : cases) {
    SCOPED_TRACE(c.what);
    auto tensor = PublishCorruptedAndRead(pipe, c.pokes);
    ASSERT_FALSE(tensor.ok()) << "accepted a corrupted " << c.what;
    EXPECT_EQ(tensor.status().code(), ErrorCode::kShmCorruption) << tensor.status().ToString();
    EXPECT_NE(tensor.status().message().find(c.message), std::string::npos)
        << tensor.status().ToString();
  }
  // The same path with nothing poked is accepted: the cases above fail for their field only.
  auto clean = PublishCorruptedAndRead(pipe, {});
  EXPECT_TRUE(clean.ok()) << clean.status().ToString();
}

}  // namespace
}  // namespace quiver
