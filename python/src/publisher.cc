#include "publisher.h"

#include <arrow/c/abi.h>
#include <arrow/c/bridge.h>
#include <arrow/record_batch.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <memory>
#include <span>
#include <utility>

#include "blocking.h"
#include "capsules.h"
#include "errors.h"
#include "module.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace quiver::python {

PyPublisher::PyPublisher(Channel channel, std::optional<double> loan_timeout)
    : channel_(std::move(channel)), loan_timeout_(loan_timeout) {
  // Loans wait one signal slice at a time; Interruptibly waits out the caller's timeout.
  PublisherOptions options;
  options.loan_timeout = kSignalSlice;
  if (channel_.type_versions() > 0) {
    arrow_.emplace(Unwrap(ArrowPublisher::Make(channel_, options)));
  } else {
    raw_.emplace(Unwrap(channel_.CreatePublisher(options)));
  }
}

ArrowPublisher& PyPublisher::arrow() {
  Check(CheckChannelCarries(channel_, PayloadKind::kArrowBatch));
  return *arrow_;
}

Publisher& PyPublisher::untyped_publisher(std::optional<PayloadKind> kind) {
  Check(CheckChannelCarries(channel_, kind));
  return *raw_;
}

void PyPublisher::PublishCArray(nb::handle schema_capsule, nb::handle array_capsule) {
  auto batch =
      arrow::ImportRecordBatch(CapsulePointer<ArrowArray>(array_capsule, "arrow_array"),
                               CapsulePointer<ArrowSchema>(schema_capsule, "arrow_schema"));
  CheckArrow(batch.status(), "importing a record batch");
  ArrowPublisher& p = arrow();
  Check(Interruptibly(channel_.name(), loan_timeout_, [&] { return p.Publish(**batch); }));
}

int64_t PyPublisher::PublishCStream(nb::handle stream_capsule) {
  auto reader = arrow::ImportRecordBatchReader(
      CapsulePointer<ArrowArrayStream>(stream_capsule, "arrow_array_stream"));
  CheckArrow(reader.status(), "importing a stream");
  ArrowPublisher& p = arrow();
  int64_t published = 0;
  for (;;) {
    std::shared_ptr<arrow::RecordBatch> batch;
    CheckArrow((*reader)->ReadNext(&batch), "reading the stream");
    if (!batch) break;
    if (batch->num_rows() == 0 && published > 0) continue;
    Check(Interruptibly(channel_.name(), loan_timeout_, [&] { return p.Publish(*batch); }));
    ++published;
  }
  return published;
}

void PyPublisher::PublishBytes(nb::bytes data) {
  const std::span<const std::byte> bytes(static_cast<const std::byte*>(data.data()), data.size());
  Publisher& p = untyped_publisher(std::nullopt);
  Check(Interruptibly(channel_.name(), loan_timeout_, [&] { return p.PublishCopy(bytes); }));
}

TensorLoan PyPublisher::LoanTensor(std::vector<int64_t> shape, const std::string& dtype) {
  Publisher& p = untyped_publisher(PayloadKind::kTensor);
  const std::shared_ptr<arrow::DataType> type = Unwrap(TensorTypeFromName(dtype));
  Result<LoanedTensor> loan = Interruptibly(channel_.name(), loan_timeout_, [&](LoanWait wait) {
    return quiver::LoanTensor(p, type, shape, wait);
  });
  return TensorLoan{Unwrap(std::move(loan)), &p};
}

void RegisterPublisher(nb::module_& m) {
  nb::class_<PyPublisher>(m, "Publisher")
      .def(nb::init<Channel, std::optional<double>>(), "channel"_a, "loan_timeout"_a.none())
      .def("publish_c_array", &PyPublisher::PublishCArray)
      .def("publish_c_stream", &PyPublisher::PublishCStream)
      .def("publish_bytes", &PyPublisher::PublishBytes)
      .def("publish_msgpack", &PyPublisher::PublishMsgpack)
      .def("loan_tensor", &PyPublisher::LoanTensor)
      // A loan keeps its publisher (and so the mapping its array points into) alive.
      .def("loan_image", &PyPublisher::LoanImage, "width"_a, "height"_a, "pixel_format"_a,
           "stride"_a.none(), nb::keep_alive<0, 1>())
      .def("publish_image", &PyPublisher::PublishImage, "pixels"_a, "pixel_format"_a,
           "stride"_a.none())
      .def("loan_audio", &PyPublisher::LoanAudio, "frame_count"_a, "sample_rate"_a, "channels"_a,
           "sample_format"_a, nb::keep_alive<0, 1>())
      .def("publish_audio", &PyPublisher::PublishAudio, "pcm"_a, "sample_rate"_a,
           "sample_format"_a.none())
      .def_prop_ro("subscriber_count", &PyPublisher::subscriber_count)
      .def_prop_ro("expected_subscribers",
                   [](PyPublisher& p) { return p.publisher().expected_subscribers(); })
      .def(
          "wait_for_subscribers",
          [](PyPublisher& p, uint32_t count, std::optional<double> timeout) {
            Publisher& publisher = p.publisher();
            Unwrap(WaitInSlices(timeout,
                                "channel '" + p.channel().name() + "' did not get " +
                                    std::to_string(count) + " subscribers",
                                [&](std::chrono::milliseconds slice) -> Result<bool> {
                                  QUIVER_RETURN_IF_ERROR(
                                      publisher.WaitForSubscribers(count, slice));
                                  return true;
                                }));
          },
          "count"_a, "timeout"_a.none())
      .def_prop_ro("channel", &PyPublisher::channel, nb::rv_policy::reference_internal);
}

}  // namespace quiver::python
