// Publisher.loan_image / publish_image / loan_audio / publish_audio, the native half. Frames are
// loaned, checked and published by the C++ frame API (quiver/frame.h), format names parsed by
// its ParsePixelFormat / ParseSampleFormat; what remains here is numpy's side: the array layout
// of a frame (arrays.h, shared with Sample.to_numpy) and the one copy from a numpy array.
#include "frame_loan.h"

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "arrays.h"
#include "blocking.h"
#include "errors.h"
#include "module.h"
#include "publisher.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace quiver::python {
namespace {

[[noreturn]] void Invalid(std::string message) {
  throw Error{ErrorCode::kInvalidArgument, std::move(message)};
}

// `value` as a frame header's unsigned field of type T, or InvalidArgumentError naming `what`.
template <typename T>
T HeaderField(int64_t value, const char* what) {
  constexpr auto kMax =
      std::min<uint64_t>(std::numeric_limits<T>::max(), std::numeric_limits<int64_t>::max());
  if (value < 0 || static_cast<uint64_t>(value) > kMax) {
    Invalid(std::string(what) + " must be in [0, " + std::to_string(kMax) + "], got " +
            std::to_string(value));
  }
  return static_cast<T>(value);
}

std::string ShapeText(const std::vector<size_t>& shape) {
  std::string text = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    text += (i ? ", " : "") + std::to_string(shape[i]);
  }
  return text + (shape.size() == 1 ? ",)" : ")");
}

// A numpy array handed to publish_image / publish_audio, its strides in elements.
struct Source {
  const std::byte* data;
  std::vector<size_t> shape;
  std::vector<int64_t> strides;
  nb::dlpack::dtype dtype;
  size_t itemsize;
};

Source SourceOf(const AnyCpuArray& array) {
  std::vector<size_t> shape;
  std::vector<int64_t> strides;
  for (size_t i = 0; i < array.ndim(); ++i) {
    shape.push_back(array.shape(i));
    strides.push_back(array.stride(i));
  }
  return Source{.data = static_cast<const std::byte*>(array.data()),
                .shape = std::move(shape),
                .strides = std::move(strides),
                .dtype = array.dtype(),
                .itemsize = array.itemsize()};
}

// Refuses `source` unless it has exactly the dtype and shape of `want`; `what` names the data
// ("RGBA8 pixels"), `given` the shape the caller passed.
void CheckSource(const Source& source, const ArrayLayout& want, const std::string& what,
                 const std::string& given) {
  if (source.dtype != want.dtype || source.shape != want.shape) {
    Invalid(what + " are " + DtypeName(want.dtype) + " of shape " + ShapeText(want.shape) +
            "; got " + DtypeName(source.dtype) + " of shape " + given);
  }
}

ImageFrameInfo ImageInfo(int64_t width, int64_t height, const std::string& pixel_format,
                         std::optional<int64_t> stride) {
  ImageFrameInfo info;  // the stride stays C++'s default unless the caller gives one
  info.format = Unwrap(ParsePixelFormat(pixel_format));
  info.width = HeaderField<uint32_t>(width, "width");
  info.height = HeaderField<uint32_t>(height, "height");
  if (stride) info.stride = HeaderField<uint32_t>(*stride, "stride");
  return info;
}

AudioFrameInfo AudioInfo(int64_t frame_count, int64_t sample_rate, int64_t channels,
                         SampleFormat format) {
  AudioFrameInfo info;
  info.sample_rate = HeaderField<uint32_t>(sample_rate, "sample_rate");
  info.channels = HeaderField<uint16_t>(channels, "channels");
  info.format = format;
  info.frame_count = HeaderField<uint64_t>(frame_count, "frame_count");
  return info;
}

// The sample format whose numpy dtype (AudioDtype) is `dtype`.
SampleFormat SampleFormatOf(nb::dlpack::dtype dtype) {
  std::string names;
  // SampleFormat values are small wire numbers, and BytesPerSample is 0 for any other value:
  // this walks the C++ enum without a copy of its list.
  for (uint32_t v = 1; v <= 0xff; ++v) {
    const auto format = static_cast<SampleFormat>(v);
    if (BytesPerSample(format) == 0) continue;
    if (AudioDtype(format) == dtype) return format;
    names += (names.empty() ? "" : ", ") + std::string(SampleFormatName(format)) + " " +
             DtypeName(AudioDtype(format));
  }
  Invalid("no sample format has numpy dtype " + DtypeName(dtype) + " (" + names + ")");
}

template <typename Frame>
Frame& Active(FrameLoan<Frame>& f) {
  if (!f.loan) Invalid("the frame was already published");
  return *f.loan;
}

// Writable, owned by the loan's Python object (kept alive as the array's base).
template <typename Frame>
nb::object LoanArray(nb::handle self) {
  Frame& frame = Active(nb::cast<FrameLoan<Frame>&>(self));
  if constexpr (std::is_same_v<Frame, LoanedImageFrame>) {
    return WritableArray(frame.data().data(), ImageLayout(frame.info()), self);
  } else {
    return WritableArray(frame.data().data(), AudioLayout(frame.info()), self);
  }
}

template <typename Frame>
Frame Take(FrameLoan<Frame>& f) {
  Frame frame = std::move(Active(f));
  f.loan.reset();
  return frame;
}

// PublishImageFrame / PublishAudioFrame of a loan.
Status PublishFrame(Publisher& p, LoanedImageFrame&& frame) {
  return PublishImageFrame(p, std::move(frame));
}
Status PublishFrame(Publisher& p, LoanedAudioFrame&& frame) {
  return PublishAudioFrame(p, std::move(frame));
}

template <typename Frame>
void Publish(FrameLoan<Frame>& f, nb::handle seal) {
  Frame frame = Take(f);
  Seal(seal);
  // With the GIL held, as a tensor loan's publish (tensor_loan.cc): no copy, no wait.
  Check(PublishFrame(*f.publisher, std::move(frame)));
}

// Copies `source` into `frame`, laid out as `dst`, and publishes it.
template <typename Frame>
void CopyAndPublish(Publisher& p, const Source& source, Frame frame, const ArrayLayout& dst) {
  nb::gil_scoped_release release;
  CopyElements(source.data, source.strides, frame.data().data(), dst.strides, dst.shape,
               source.itemsize);
  Check(PublishFrame(p, std::move(frame)));
}

template <typename Frame>
void RegisterLoan(nb::module_& m, const char* name) {
  nb::class_<FrameLoan<Frame>>(m, name)
      .def_prop_ro("array", &LoanArray<Frame>)
      .def_prop_ro("info",
                   [](FrameLoan<Frame>& f) {
                     return Active(f).info();  // as written: an image's stride resolved
                   })
      // `seal`: the loan's array, made read-only (arrays.h Seal).
      .def("publish", &Publish<Frame>, "seal"_a = nb::none())
      .def(
          "discard",
          [](FrameLoan<Frame>& f, nb::handle seal) {
            f.loan.reset();
            Seal(seal);
          },
          "seal"_a = nb::none())
      .def_prop_ro("active", [](const FrameLoan<Frame>& f) { return f.loan.has_value(); });
}

}  // namespace

ImageLoan PyPublisher::LoanImage(int64_t width, int64_t height, const std::string& pixel_format,
                                 std::optional<int64_t> stride) {
  const ImageFrameInfo info = ImageInfo(width, height, pixel_format, stride);
  ImageLayout(info);  // refuses, before loaning, a stride numpy cannot express
  Publisher& p = untyped_publisher(PayloadKind::kImageFrame);
  Result<LoanedImageFrame> loan = Interruptibly(
      channel_.name(), loan_timeout_, [&](LoanWait wait) { return LoanImageFrame(p, info, wait); });
  return ImageLoan{Unwrap(std::move(loan)), &p};
}

void PyPublisher::PublishImage(const AnyCpuArray& pixels, const std::string& pixel_format,
                               std::optional<int64_t> stride) {
  Source source = SourceOf(pixels);
  const std::string given = ShapeText(source.shape);
  if (source.shape.size() != 2 && source.shape.size() != 3) {
    Invalid("an image is an array of shape (height, width[, channels]); got one of shape " + given);
  }
  const ImageFrameInfo info =
      ImageInfo(static_cast<int64_t>(source.shape[1]), static_cast<int64_t>(source.shape[0]),
                pixel_format, stride);
  const ArrayLayout want = ImageLayout(info);
  if (want.shape.size() == 2 && source.shape.size() == 3 && source.shape[2] == 1) {
    source.shape.pop_back();  // (height, width, 1) is a one-channel image too
    source.strides.pop_back();
  }
  CheckSource(source, want, std::string(PixelFormatName(info.format)) + " pixels", given);
  Publisher& p = untyped_publisher(PayloadKind::kImageFrame);
  Result<LoanedImageFrame> loan = Interruptibly(
      channel_.name(), loan_timeout_, [&](LoanWait wait) { return LoanImageFrame(p, info, wait); });
  LoanedImageFrame frame = Unwrap(std::move(loan));
  const ArrayLayout dst = ImageLayout(frame.info());
  CopyAndPublish(p, source, std::move(frame), dst);
}

AudioLoan PyPublisher::LoanAudio(int64_t frame_count, int64_t sample_rate, int64_t channels,
                                 const std::string& sample_format) {
  const AudioFrameInfo info =
      AudioInfo(frame_count, sample_rate, channels, Unwrap(ParseSampleFormat(sample_format)));
  Publisher& p = untyped_publisher(PayloadKind::kAudioFrame);
  Result<LoanedAudioFrame> loan = Interruptibly(
      channel_.name(), loan_timeout_, [&](LoanWait wait) { return LoanAudioFrame(p, info, wait); });
  return AudioLoan{Unwrap(std::move(loan)), &p};
}

void PyPublisher::PublishAudio(const AnyCpuArray& pcm, int64_t sample_rate,
                               std::optional<std::string> sample_format) {
  Source source = SourceOf(pcm);
  const std::string given = ShapeText(source.shape);
  if (source.shape.size() == 1) {  // (frames,) is mono
    source.shape.push_back(1);
    source.strides.push_back(1);
  }
  if (source.shape.size() != 2) {
    Invalid(
        "PCM is an array of shape (frames, channels), or (frames,) for mono; got one of shape " +
        given);
  }
  const SampleFormat format =
      sample_format ? Unwrap(ParseSampleFormat(*sample_format)) : SampleFormatOf(source.dtype);
  const AudioFrameInfo info = AudioInfo(static_cast<int64_t>(source.shape[0]), sample_rate,
                                        static_cast<int64_t>(source.shape[1]), format);
  CheckSource(source, AudioLayout(info), std::string(SampleFormatName(format)) + " samples", given);
  Publisher& p = untyped_publisher(PayloadKind::kAudioFrame);
  Result<LoanedAudioFrame> loan = Interruptibly(
      channel_.name(), loan_timeout_, [&](LoanWait wait) { return LoanAudioFrame(p, info, wait); });
  LoanedAudioFrame frame = Unwrap(std::move(loan));
  const ArrayLayout dst = AudioLayout(frame.info());
  CopyAndPublish(p, source, std::move(frame), dst);
}

void RegisterFrames(nb::module_& m) {
  // The headers of frames, as the C++ loans and readers return them (formats by name).
  nb::class_<ImageFrameInfo>(m, "ImageFrameInfo")
      .def_ro("width", &ImageFrameInfo::width)
      .def_ro("height", &ImageFrameInfo::height)
      .def_ro("stride", &ImageFrameInfo::stride)
      .def_prop_ro("pixel_format",
                   [](const ImageFrameInfo& i) { return std::string(PixelFormatName(i.format)); })
      .def_prop_ro("bytes_per_pixel",
                   [](const ImageFrameInfo& i) { return BytesPerPixel(i.format); })
      .def("__repr__", [](const ImageFrameInfo& i) {
        return "ImageFrameInfo(width=" + std::to_string(i.width) +
               ", height=" + std::to_string(i.height) + ", pixel_format='" +
               std::string(PixelFormatName(i.format)) + "', stride=" + std::to_string(i.stride) +
               ")";
      });
  nb::class_<AudioFrameInfo>(m, "AudioFrameInfo")
      .def_ro("sample_rate", &AudioFrameInfo::sample_rate)
      .def_ro("channels", &AudioFrameInfo::channels)
      .def_ro("frame_count", &AudioFrameInfo::frame_count)
      .def_prop_ro("sample_format",
                   [](const AudioFrameInfo& i) { return std::string(SampleFormatName(i.format)); })
      .def_prop_ro("bytes_per_sample",
                   [](const AudioFrameInfo& i) { return BytesPerSample(i.format); })
      .def("__repr__", [](const AudioFrameInfo& i) {
        return "AudioFrameInfo(sample_rate=" + std::to_string(i.sample_rate) +
               ", channels=" + std::to_string(i.channels) + ", sample_format='" +
               std::string(SampleFormatName(i.format)) +
               "', frame_count=" + std::to_string(i.frame_count) + ")";
      });
  RegisterLoan<LoanedImageFrame>(m, "ImageLoan");
  RegisterLoan<LoanedAudioFrame>(m, "AudioLoan");
}

}  // namespace quiver::python
