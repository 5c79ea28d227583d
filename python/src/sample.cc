#include "sample.h"

#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>

#include <string>
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
  TensorView view = Unwrap(ReadTensorView(raw));  // no arrow::Tensor: numpy makes the array
  std::vector<size_t> shape(view.shape.begin(), view.shape.end());
  return ReadOnlyArray(view.data.data(), shape,
                       StridesInElements(view.strides, view.type->byte_width()),
                       DlpackType(*view.type), std::move(view.sample));
}

nb::object ImageArray(const std::shared_ptr<const Sample>& raw) {
  auto view = std::make_shared<ImageFrameView>(Unwrap(ReadImageFrame(raw)));
  return ReadOnlyArray(view->data.data(), ImageLayout(view->info), view);
}

nb::object AudioArray(const std::shared_ptr<const Sample>& raw) {
  auto view = std::make_shared<AudioFrameView>(Unwrap(ReadAudioFrame(raw)));
  return ReadOnlyArray(view->data.data(), AudioLayout(view->info), view);
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

namespace {

// Throws InvalidArgumentError naming the sample's kind unless it is `expected` (`what`).
void ExpectKind(const PySample& s, PayloadKind expected, const char* what) {
  if (s.payload_kind() != expected) {
    throw Error{ErrorCode::kInvalidArgument,
                "this sample's kind is '" + s.kind() + "', not " + what};
  }
}

}  // namespace

ImageFrameInfo PySample::image_info() const {
  ExpectKind(*this, PayloadKind::kImageFrame, "an image frame");
  return Unwrap(ReadImageFrame(raw)).info;
}

AudioFrameInfo PySample::audio_info() const {
  ExpectKind(*this, PayloadKind::kAudioFrame, "an audio frame");
  return Unwrap(ReadAudioFrame(raw)).info;
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
      .def_prop_ro("image_info", &PySample::image_info)
      .def_prop_ro("audio_info", &PySample::audio_info)
      .def("to_numpy", &PySample::ToNumpy);
}

}  // namespace quiver::python
