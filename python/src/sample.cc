#include "sample.h"

#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>

#include <vector>

#include "arrays.h"
#include "capsules.h"
#include "errors.h"
#include "module.h"
#include "quiver/frame.h"
#include "quiver/tensor.h"

namespace nb = nanobind;

namespace quiver::python {
namespace {

nb::object TensorArray(const std::shared_ptr<const Sample>& raw) {
  std::shared_ptr<arrow::Tensor> tensor = Unwrap(ReadTensor(raw));
  std::vector<size_t> shape(tensor->shape().begin(), tensor->shape().end());
  return ReadOnlyArray(tensor->raw_data(), shape,
                       StridesInElements(tensor->strides(), tensor->type()->byte_width()),
                       DlpackType(*tensor->type()), tensor);
}

nb::object ImageArray(const std::shared_ptr<const Sample>& raw) {
  ImageFrameView v = Unwrap(ReadImageFrame(raw));
  const size_t bpp = BytesPerPixel(v.info.format);
  const auto h = static_cast<size_t>(v.info.height), w = static_cast<size_t>(v.info.width);
  auto keep = std::make_shared<ImageFrameView>(v);
  if (v.info.format == PixelFormat::kGray16) {
    return ReadOnlyArray(v.data.data(), {h, w}, {static_cast<int64_t>(v.info.stride / 2), 1},
                         nb::dtype<uint16_t>(), keep);
  }
  return ReadOnlyArray(v.data.data(), {h, w, bpp},
                       {static_cast<int64_t>(v.info.stride), static_cast<int64_t>(bpp), 1},
                       nb::dtype<uint8_t>(), keep);
}

// The numpy dtype of each PCM encoding.
nb::dlpack::dtype AudioDtype(SampleFormat format) {
  switch (format) {
    case SampleFormat::kU8:
      return nb::dtype<uint8_t>();
    case SampleFormat::kS16:
      return nb::dtype<int16_t>();
    case SampleFormat::kS32:
      return nb::dtype<int32_t>();
    case SampleFormat::kF32:
      return nb::dtype<float>();
    case SampleFormat::kF64:
      return nb::dtype<double>();
  }
  throw Error{ErrorCode::kInvalidArgument, "no numpy dtype for this audio format"};
}

nb::object AudioArray(const std::shared_ptr<const Sample>& raw) {
  AudioFrameView v = Unwrap(ReadAudioFrame(raw));
  const auto channels = static_cast<int64_t>(v.info.channels);
  auto keep = std::make_shared<AudioFrameView>(v);
  return ReadOnlyArray(v.data.data(),
                       {static_cast<size_t>(v.info.frame_count), static_cast<size_t>(channels)},
                       {channels, 1}, AudioDtype(v.info.format), keep);
}

}  // namespace

std::optional<PayloadKind> PySample::payload_kind() const {
  if (arrow.batch) return PayloadKind::kArrowBatch;
  return PeekPayloadKind(raw->data());
}

std::string PySample::kind() const {
  const std::optional<PayloadKind> k = payload_kind();
  if (!k) return "raw";
  switch (*k) {
    case PayloadKind::kArrowBatch:
      return "arrow";
    case PayloadKind::kTensor:
      return "tensor";
    case PayloadKind::kAudioFrame:
      return "audio";
    case PayloadKind::kImageFrame:
      return "image";
  }
  return "raw";
}

const arrow::RecordBatch& PySample::batch() const {
  if (!arrow.batch) {
    throw Error{ErrorCode::kInvalidArgument, "this sample is a " + kind() + ", not an Arrow batch"};
  }
  return *arrow.batch;
}

nb::object PySample::ToNumpy() const {
  const std::optional<PayloadKind> k = payload_kind();
  if (!k) return ReadOnlyArray(raw->data().data(), {raw->size()}, {1}, nb::dtype<uint8_t>(), raw);
  switch (*k) {
    case PayloadKind::kTensor:
      return TensorArray(raw);
    case PayloadKind::kImageFrame:
      return ImageArray(raw);
    case PayloadKind::kAudioFrame:
      return AudioArray(raw);
    case PayloadKind::kArrowBatch:
      break;
  }
  throw Error{ErrorCode::kInvalidArgument, "an Arrow sample has no numpy view; use to_arrow()"};
}

void RegisterSample(nb::module_& m) {
  nb::class_<PySample>(m, "Sample")
      .def_prop_ro("kind", &PySample::kind)
      .def_ro("sequence", &PySample::sequence)
      .def_ro("address", &PySample::address)
      .def_ro("offset", &PySample::offset)
      .def_ro("size", &PySample::size)
      .def_prop_ro("schema_version", [](const PySample& s) { return s.arrow.schema_version; })
      .def("arrow_capsules", [](const PySample& s) { return BatchCapsules(s.batch()); })
      .def("to_numpy", &PySample::ToNumpy);
}

}  // namespace quiver::python
