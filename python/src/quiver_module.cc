// quiver._quiver: the nanobind bindings under the pure-Python API in python/quiver/.
// Arrow data crosses to pyarrow/polars through the Arrow C data interface (PyCapsules), so
// nothing here depends on pyarrow's C++ ABI. Blocking calls release the GIL and wake every
// 100 ms to let Python handle signals (Ctrl-C).
#include <arrow/c/abi.h>
#include <arrow/c/bridge.h>
#include <arrow/record_batch.h>
#include <arrow/tensor.h>
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <optional>

#include "common/byte_size.h"
#include "common/duration.h"
#include "common/private_dir.h"
#include "quiver/arrow.h"
#include "quiver/channel.h"
#include "quiver/frame.h"
#include "quiver/msgpack_records.h"
#include "quiver/sample_header.h"
#include "quiver/tensor.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace quiver::python {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kSignalSlice = std::chrono::milliseconds(100);

// ---- Errors -----------------------------------------------------------------------------

struct Error {
  ErrorCode code;
  std::string message;
};

std::map<ErrorCode, PyObject*>& ExceptionTypes() {
  static std::map<ErrorCode, PyObject*> types;
  return types;
}
PyObject* g_base_error = nullptr;

[[noreturn]] void Throw(const Status& st) { throw Error{st.code(), st.ToString()}; }
void Check(const Status& st) {
  if (!st.ok()) Throw(st);
}
template <typename T>
T Unwrap(Result<T> r) {
  if (!r.ok()) Throw(r.status());
  return std::move(r).value();
}
void CheckArrow(const arrow::Status& st, const char* what) {
  if (!st.ok()) throw Error{ErrorCode::kInvalidArgument, std::string(what) + ": " + st.ToString()};
}

// The exceptions, one per error code, from the one C++ table (quiver/status.h ErrorCodes):
// quiver.NotFoundError (also a LookupError), with its earlier name quiver.NotFound kept.
PyObject* BuiltinException(std::string_view name) {
  if (name == "ValueError") return PyExc_ValueError;
  if (name == "LookupError") return PyExc_LookupError;
  if (name == "TimeoutError") return PyExc_TimeoutError;
  if (name == "PermissionError") return PyExc_PermissionError;
  if (name == "OSError") return PyExc_OSError;
  return nullptr;
}

void RegisterErrors(nb::module_& m) {
  g_base_error = PyErr_NewExceptionWithDoc(
      "quiver._quiver.QuiverError", "Base class of every Quiver error.", PyExc_Exception, nullptr);
  m.attr("QuiverError") = nb::handle(g_base_error);
  nb::dict codes;
  for (const ErrorCodeInfo& info : ErrorCodes()) {
    PyObject* builtin = BuiltinException(info.python_builtin);
    PyObject* bases =
        builtin ? PyTuple_Pack(2, g_base_error, builtin) : PyTuple_Pack(1, g_base_error);
    const std::string qualified = "quiver._quiver." + std::string(info.python_class);
    const std::string doc = std::string(info.doc) + " (code " + std::string(info.name) + ")";
    PyObject* type = PyErr_NewExceptionWithDoc(qualified.c_str(), doc.c_str(), bases, nullptr);
    Py_DECREF(bases);
    ExceptionTypes()[info.code] = type;
    m.attr(std::string(info.python_class).c_str()) = nb::handle(type);
    m.attr(std::string(info.python_alias).c_str()) = nb::handle(type);
    codes[std::string(info.name).c_str()] = nb::handle(type);
  }
  m.attr("error_classes") = codes;  // wire code -> class, for the control plane
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const Error& e) {
      auto it = ExceptionTypes().find(e.code);
      PyErr_SetString(it != ExceptionTypes().end() ? it->second : g_base_error, e.message.c_str());
    }
  });
}

// ---- Capsules (Arrow C data interface) --------------------------------------------------

template <typename T>
T* CapsulePointer(nb::handle capsule, const char* name) {
  void* p = PyCapsule_GetPointer(capsule.ptr(), name);
  if (p == nullptr) throw nb::python_error();
  return static_cast<T*>(p);
}

nb::object SchemaCapsule(const arrow::Schema& schema) {
  auto* c = new ArrowSchema;
  CheckArrow(arrow::ExportSchema(schema, c), "exporting schema");
  return nb::steal(PyCapsule_New(c, "arrow_schema", [](PyObject* o) {
    auto* s = static_cast<ArrowSchema*>(PyCapsule_GetPointer(o, "arrow_schema"));
    if (s->release != nullptr) s->release(s);
    delete s;
  }));
}

nb::tuple BatchCapsules(const arrow::RecordBatch& batch) {
  auto* schema = new ArrowSchema;
  auto* array = new ArrowArray;
  // The exported array's private data holds the batch's buffers, and so the sample.
  const arrow::Status st = arrow::ExportRecordBatch(batch, array, schema);
  if (!st.ok()) {
    delete schema;
    delete array;
    CheckArrow(st, "exporting batch");
  }
  nb::object schema_capsule = nb::steal(PyCapsule_New(schema, "arrow_schema", [](PyObject* o) {
    auto* s = static_cast<ArrowSchema*>(PyCapsule_GetPointer(o, "arrow_schema"));
    if (s->release != nullptr) s->release(s);
    delete s;
  }));
  nb::object array_capsule = nb::steal(PyCapsule_New(array, "arrow_array", [](PyObject* o) {
    auto* a = static_cast<ArrowArray*>(PyCapsule_GetPointer(o, "arrow_array"));
    if (a->release != nullptr) a->release(a);
    delete a;
  }));
  return nb::make_tuple(schema_capsule, array_capsule);
}

std::shared_ptr<arrow::Schema> ImportSchemaCapsule(nb::handle capsule) {
  auto schema = arrow::ImportSchema(CapsulePointer<ArrowSchema>(capsule, "arrow_schema"));
  CheckArrow(schema.status(), "importing schema");
  return *schema;
}

std::shared_ptr<arrow::DataType> TypeFromNumpyName(const std::string& name) {
  static const std::map<std::string, std::shared_ptr<arrow::DataType>> types = {
      {"int8", arrow::int8()},       {"int16", arrow::int16()},     {"int32", arrow::int32()},
      {"int64", arrow::int64()},     {"uint8", arrow::uint8()},     {"uint16", arrow::uint16()},
      {"uint32", arrow::uint32()},   {"uint64", arrow::uint64()},   {"float16", arrow::float16()},
      {"float32", arrow::float32()}, {"float64", arrow::float64()},
  };
  auto it = types.find(name);
  if (it == types.end()) {
    throw Error{ErrorCode::kInvalidArgument,
                "unsupported dtype '" + name + "' (use a fixed-width integer or float dtype)"};
  }
  return it->second;
}

nb::dlpack::dtype DlpackType(arrow::Type::type id) {
  using nb::dlpack::dtype_code;
  auto make = [](dtype_code code, uint8_t bits) {
    return nb::dlpack::dtype{static_cast<uint8_t>(code), bits, 1};
  };
  switch (id) {
    case arrow::Type::INT8:
      return make(dtype_code::Int, 8);
    case arrow::Type::INT16:
      return make(dtype_code::Int, 16);
    case arrow::Type::INT32:
      return make(dtype_code::Int, 32);
    case arrow::Type::INT64:
      return make(dtype_code::Int, 64);
    case arrow::Type::UINT8:
      return make(dtype_code::UInt, 8);
    case arrow::Type::UINT16:
      return make(dtype_code::UInt, 16);
    case arrow::Type::UINT32:
      return make(dtype_code::UInt, 32);
    case arrow::Type::UINT64:
      return make(dtype_code::UInt, 64);
    case arrow::Type::HALF_FLOAT:
      return make(dtype_code::Float, 16);
    case arrow::Type::FLOAT:
      return make(dtype_code::Float, 32);
    case arrow::Type::DOUBLE:
      return make(dtype_code::Float, 64);
    default:
      throw Error{ErrorCode::kInvalidArgument, "no numpy dtype for this tensor"};
  }
}

// A read-only numpy array over shared memory. `keep` (any shared_ptr) lives as long as
// the array: it holds the sample.
template <typename Keep>
nb::object ReadOnlyArray(const void* data, std::vector<size_t> shape,
                         std::vector<int64_t> strides_in_elements, nb::dlpack::dtype dtype,
                         std::shared_ptr<Keep> keep) {
  auto* holder = new std::shared_ptr<Keep>(std::move(keep));
  nb::capsule owner(holder,
                    [](void* p) noexcept { delete static_cast<std::shared_ptr<Keep>*>(p); });
  nb::ndarray<nb::numpy, nb::ro> array(data, shape.size(), shape.data(), owner,
                                       strides_in_elements.data(), dtype);
  return array.cast();
}

// ---- Channel ----------------------------------------------------------------------------

Channel CreateChannel(const std::string& name, size_t capacity, uint32_t max_samples,
                      uint32_t max_subscribers, const std::string& overflow, bool memfd,
                      nb::object schema_capsule, std::optional<double> stall_timeout) {
  ChannelOptions options{.capacity = capacity,
                         .max_samples = max_samples,
                         .max_subscribers = max_subscribers,
                         .overflow = Unwrap(ParseOverflowPolicy(overflow)),
                         .backing = memfd ? Backing::kMemfd : Backing::kNamed};
  if (stall_timeout) {
    options.stall_timeout = std::chrono::milliseconds(
        std::max<int64_t>(1, static_cast<int64_t>(std::llround(*stall_timeout * 1e3))));
  }
  if (!schema_capsule.is_none()) {
    return Unwrap(CreateArrowChannel(name, ImportSchemaCapsule(schema_capsule), options));
  }
  return Unwrap(Channel::Create(name, options));
}

// The one JSON shape of a channel's counters (ChannelStats::ToJson), for json.loads.
std::string StatsJson(const Channel& channel) { return channel.Stats().ToJson(); }

// ---- Publisher --------------------------------------------------------------------------

struct TensorLoan {
  std::optional<LoanedTensor> loan;
  Publisher* publisher;
};

// Runs `op` (a call that may wait for room, its loans bounded by kSignalSlice) without the
// GIL, again and again while it times out, running Python's signal handlers in between, so
// Ctrl-C interrupts a blocked publish within a slice; gives up at `timeout` (none: never).
template <typename Op>
auto Interruptibly(const std::string& channel, std::optional<double> timeout, Op op) {
  const auto start = Clock::now();
  const auto deadline = timeout
                            ? start + std::chrono::duration_cast<Clock::duration>(
                                          std::chrono::duration<double>(std::max(*timeout, 0.0)))
                            : Clock::time_point::max();
  for (;;) {
    auto result = [&] {
      nb::gil_scoped_release release;
      return op();
    }();
    const Status& st = [&]() -> const Status& {
      if constexpr (std::is_same_v<decltype(result), Status>) {
        return result;
      } else {
        return result.status();
      }
    }();
    if (st.code() != ErrorCode::kTimeout) return result;
    if (PyErr_CheckSignals() != 0) throw nb::python_error();
    if (Clock::now() >= deadline) {
      Throw(Status::Timeout(
          "no room in channel '" + channel + "' within " +
          FormatDuration(std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - start)) +
          " (loan_timeout): its subscribers hold it full"));
    }
  }
}

class PyPublisher {
 public:
  PyPublisher(Channel channel, std::optional<double> loan_timeout)
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

  Publisher& publisher() { return arrow_ ? arrow_->publisher() : *raw_; }

  ArrowPublisher& arrow() {
    if (!arrow_) {
      throw Error{ErrorCode::kInvalidArgument,
                  "channel '" + channel_.name() +
                      "' has no Arrow schema; create it with schema=, or use publish_bytes / "
                      "loan_ndarray"};
    }
    return *arrow_;
  }

  void PublishCArray(nb::handle schema_capsule, nb::handle array_capsule) {
    auto batch =
        arrow::ImportRecordBatch(CapsulePointer<ArrowArray>(array_capsule, "arrow_array"),
                                 CapsulePointer<ArrowSchema>(schema_capsule, "arrow_schema"));
    CheckArrow(batch.status(), "importing a record batch");
    ArrowPublisher& p = arrow();
    Check(Interruptibly(channel_.name(), loan_timeout_, [&] { return p.Publish(**batch); }));
  }

  int64_t PublishCStream(nb::handle stream_capsule) {
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

  // The flexible path: msgpack-encoded records (msgspec) decoded into an Arrow batch of
  // the channel's newest schema, bound by field name, then published like any batch.
  void PublishMsgpack(nb::bytes data) {
    ArrowPublisher& p = arrow();
    auto schema = Unwrap(ChannelSchema(channel_));
    const std::string_view bytes(data.c_str(), data.size());
    std::shared_ptr<arrow::RecordBatch> batch = Unwrap([&] {
      nb::gil_scoped_release release;
      return DecodeMsgpackRecords(bytes, schema);
    }());
    Check(Interruptibly(channel_.name(), loan_timeout_, [&] { return p.Publish(*batch); }));
  }

  void PublishBytes(nb::bytes data) {
    const std::span<const std::byte> bytes(static_cast<const std::byte*>(data.data()), data.size());
    Publisher& p = publisher();
    Check(Interruptibly(channel_.name(), loan_timeout_, [&] { return p.PublishCopy(bytes); }));
  }

  TensorLoan LoanTensor(std::vector<int64_t> shape, const std::string& dtype) {
    Publisher& p = publisher();
    const std::shared_ptr<arrow::DataType> type = TypeFromNumpyName(dtype);
    Result<LoanedTensor> loan = Interruptibly(channel_.name(), loan_timeout_,
                                              [&] { return quiver::LoanTensor(p, type, shape); });
    return TensorLoan{Unwrap(std::move(loan)), &p};
  }

  uint32_t subscriber_count() { return publisher().subscriber_count(); }
  Channel& channel() { return channel_; }

 private:
  Channel channel_;
  std::optional<double> loan_timeout_;  // the caller's; loans themselves wait a slice each
  std::optional<ArrowPublisher> arrow_;
  std::optional<Publisher> raw_;
};

nb::object TensorLoanArray(nb::handle self) {
  TensorLoan& t = nb::cast<TensorLoan&>(self);
  if (!t.loan) throw Error{ErrorCode::kInvalidArgument, "the tensor was already published"};
  const LoanedTensor& loan = *t.loan;
  std::vector<size_t> shape(loan.shape().begin(), loan.shape().end());
  const int64_t elem = loan.type()->byte_width();
  std::vector<int64_t> strides;
  for (int64_t s : loan.strides()) strides.push_back(s / elem);
  // Writable, owned by the TensorLoan Python object (kept alive as the array's base).
  nb::ndarray<nb::numpy> array(loan.data().data(), shape.size(), shape.data(), self, strides.data(),
                               DlpackType(loan.type()->id()));
  return array.cast();
}

void TensorLoanPublish(TensorLoan& t) {
  if (!t.loan) throw Error{ErrorCode::kInvalidArgument, "the tensor was already published"};
  LoanedTensor loan = std::move(*t.loan);
  t.loan.reset();
  nb::gil_scoped_release release;
  Check(PublishTensor(*t.publisher, std::move(loan)));
}

// ---- Samples and the subscriber ---------------------------------------------------------

struct PySample {
  std::shared_ptr<const Sample> raw;  // set for non-Arrow samples
  ArrowSample arrow;                  // set for Arrow samples
  uint64_t sequence = 0;
  uintptr_t address = 0;
  uint64_t offset = 0;
  size_t size = 0;

  std::string kind() const {
    if (arrow.batch) return "arrow";
    if (raw->size() >= kSampleHeaderBytes) {
      SampleHeader h;
      std::memcpy(&h, raw->data().data(), sizeof(h));
      if (h.magic == kSampleMagic) {
        switch (static_cast<PayloadKind>(h.kind)) {
          case PayloadKind::kTensor:
            return "tensor";
          case PayloadKind::kAudioFrame:
            return "audio";
          case PayloadKind::kImageFrame:
            return "image";
          case PayloadKind::kArrowBatch:
            return "arrow";
        }
      }
    }
    return "raw";
  }

  const arrow::RecordBatch& batch() const {
    if (!arrow.batch)
      throw Error{ErrorCode::kInvalidArgument,
                  "this sample is a " + kind() + ", not an Arrow batch"};
    return *arrow.batch;
  }

  nb::object ToNumpy() const {
    const std::string k = kind();
    if (k == "tensor") {
      auto tensor = Unwrap(ReadTensor(raw));
      const int64_t elem = tensor->type()->byte_width();
      std::vector<size_t> shape(tensor->shape().begin(), tensor->shape().end());
      std::vector<int64_t> strides;
      for (int64_t s : tensor->strides()) strides.push_back(s / elem);
      return ReadOnlyArray(tensor->raw_data(), shape, strides, DlpackType(tensor->type_id()),
                           tensor);
    }
    if (k == "image") {
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
    if (k == "audio") {
      AudioFrameView v = Unwrap(ReadAudioFrame(raw));
      const auto channels = static_cast<int64_t>(v.info.channels);
      auto keep = std::make_shared<AudioFrameView>(v);
      nb::dlpack::dtype dtype;
      switch (v.info.format) {
        case SampleFormat::kU8:
          dtype = nb::dtype<uint8_t>();
          break;
        case SampleFormat::kS16:
          dtype = nb::dtype<int16_t>();
          break;
        case SampleFormat::kS32:
          dtype = nb::dtype<int32_t>();
          break;
        case SampleFormat::kF32:
          dtype = nb::dtype<float>();
          break;
        case SampleFormat::kF64:
          dtype = nb::dtype<double>();
          break;
      }
      return ReadOnlyArray(v.data.data(),
                           {static_cast<size_t>(v.info.frame_count), static_cast<size_t>(channels)},
                           {channels, 1}, dtype, keep);
    }
    if (k == "raw") {
      return ReadOnlyArray(raw->data().data(), {raw->size()}, {1}, nb::dtype<uint8_t>(), raw);
    }
    throw Error{ErrorCode::kInvalidArgument, "an Arrow sample has no numpy view; use to_arrow()"};
  }
};

class PySubscriber {
 public:
  PySubscriber(Channel channel, nb::object reader_schema, bool full_validation, double spin_us,
               bool from_oldest, bool follow_restarts)
      : channel_(std::move(channel)) {
    SubscriberOptions options{.spin = std::chrono::nanoseconds(static_cast<int64_t>(spin_us * 1e3)),
                              .from_oldest = from_oldest,
                              .follow_restarts = follow_restarts};
    if (channel_.type_versions() > 0) {
      ArrowSubscriberOptions o{
          .subscriber = options,
          .validation = full_validation ? BatchValidation::kFull : BatchValidation::kStructure};
      if (!reader_schema.is_none()) o.reader_schema = ImportSchemaCapsule(reader_schema);
      arrow_.emplace(Unwrap(ArrowSubscriber::Make(channel_, o)));
    } else {
      raw_.emplace(Unwrap(channel_.CreateSubscriber(options)));
    }
  }

  Subscriber& subscriber() { return arrow_ ? arrow_->subscriber() : *raw_; }

  PySample Wrap(Sample sample) {
    PySample out;
    out.sequence = sample.sequence();
    out.address = reinterpret_cast<uintptr_t>(sample.data().data());
    out.offset = sample.offset();
    out.size = sample.size();
    if (arrow_) {
      nb::gil_scoped_release release;
      out.arrow = Unwrap(arrow_->Decode(std::move(sample)));
    } else {
      out.raw = std::make_shared<const Sample>(std::move(sample));
    }
    return out;
  }

  // Waits in slices, without the GIL, so other threads run and Ctrl-C is seen.
  PySample Receive(std::optional<double> timeout) {
    const auto start = Clock::now();
    const auto deadline = timeout
                              ? start + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(std::max(*timeout, 0.0)))
                              : Clock::time_point::max();
    Subscriber& sub = subscriber();
    for (;;) {
      const auto now = Clock::now();
      const auto slice =
          std::min<Clock::duration>(kSignalSlice, deadline - std::min(now, deadline));
      Result<Sample> sample = [&] {
        nb::gil_scoped_release release;
        return sub.Receive(slice);
      }();
      if (sample.ok()) return Wrap(std::move(sample).value());
      if (sample.status().code() != ErrorCode::kTimeout) Throw(sample.status());
      if (PyErr_CheckSignals() != 0) throw nb::python_error();
      if (Clock::now() >= deadline) {
        // The timeout the caller asked for, not the last slice's.
        Throw(Status::Timeout("no sample on channel '" + channel_.name() + "' within " +
                              FormatDuration(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  deadline - start))));
      }
    }
  }

  std::optional<PySample> TryReceive() {
    std::optional<Sample> sample = Unwrap(subscriber().TryReceive());
    if (!sample) return std::nullopt;
    return Wrap(std::move(*sample));
  }

  int NotifyFd() { return Unwrap(subscriber().NotifyFd()); }
  Channel& channel() { return channel_; }

 private:
  Channel channel_;
  std::optional<ArrowSubscriber> arrow_;
  std::optional<Subscriber> raw_;
};

}  // namespace
}  // namespace quiver::python

NB_MODULE(_quiver, m) {
  using namespace quiver;
  using namespace quiver::python;
  m.doc() = "Quiver's native core; use the `quiver` package, not this module.";
  RegisterErrors(m);
  m.def("named_directory", &Channel::NamedDirectory);
  m.def("parse_byte_size", [](const std::string& text) { return Unwrap(ParseByteSize(text)); });
  m.def("release_named_segments", &Channel::ReleaseNamesHeldOnlyByThisProcess);
  m.def("default_flight_location", [] { return Unwrap(DefaultFlightLocation()); });
  m.def("named_path", [](const std::string& name) { return Channel::NamedPath(name); });

  nb::class_<Channel>(m, "Channel")
      .def_static("create", &CreateChannel, "name"_a, "capacity"_a, "max_samples"_a,
                  "max_subscribers"_a, "overflow"_a, "memfd"_a, "schema"_a.none(),
                  "stall_timeout"_a.none())
      .def_static("open", [](const std::string& name) { return Unwrap(Channel::Open(name)); })
      .def_static("from_fd", [](int fd) { return Unwrap(Channel::FromFd(fd)); })
      .def_static("attach", [](const std::string& name) { return Unwrap(Channel::Attach(name)); })
      .def_prop_ro("name", &Channel::name)
      .def_prop_ro("capacity", &Channel::capacity)
      .def_prop_ro("fd", &Channel::fd)
      .def_prop_ro("named", &Channel::named)
      .def_prop_ro("type_versions", &Channel::type_versions)
      .def("stats_json", &StatsJson)
      .def(
          "schema_capsule",
          [](const Channel& c, uint32_t version) -> nb::object {
            if (c.type_versions() == 0) return nb::none();
            return SchemaCapsule(*Unwrap(ChannelSchema(c, version)));
          },
          "version"_a = 0);

  nb::class_<TensorLoan>(m, "TensorLoan")
      .def_prop_ro("array", &TensorLoanArray)
      .def("publish", &TensorLoanPublish)
      .def("discard", [](TensorLoan& t) { t.loan.reset(); })
      .def_prop_ro("active", [](const TensorLoan& t) { return t.loan.has_value(); });

  nb::class_<PyPublisher>(m, "Publisher")
      .def(nb::init<Channel, std::optional<double>>(), "channel"_a, "loan_timeout"_a.none())
      .def("publish_c_array", &PyPublisher::PublishCArray)
      .def("publish_c_stream", &PyPublisher::PublishCStream)
      .def("publish_bytes", &PyPublisher::PublishBytes)
      .def("publish_msgpack", &PyPublisher::PublishMsgpack)
      .def("loan_tensor", &PyPublisher::LoanTensor)
      .def_prop_ro("subscriber_count", &PyPublisher::subscriber_count)
      .def_prop_ro("channel", &PyPublisher::channel, nb::rv_policy::reference_internal);

  nb::class_<PySample>(m, "Sample")
      .def_prop_ro("kind", &PySample::kind)
      .def_ro("sequence", &PySample::sequence)
      .def_ro("address", &PySample::address)
      .def_ro("offset", &PySample::offset)
      .def_ro("size", &PySample::size)
      .def_prop_ro("schema_version", [](const PySample& s) { return s.arrow.schema_version; })
      .def("arrow_capsules", [](const PySample& s) { return BatchCapsules(s.batch()); })
      .def("to_numpy", &PySample::ToNumpy);

  nb::class_<PySubscriber>(m, "Subscriber")
      .def(nb::init<Channel, nb::object, bool, double, bool, bool>(), "channel"_a,
           "reader_schema"_a.none(), "full_validation"_a, "spin_us"_a, "from_oldest"_a,
           "follow_restarts"_a)
      .def_prop_ro("awaiting_restart",
                   [](PySubscriber& s) { return s.subscriber().awaiting_restart(); })
      .def_prop_ro("restarts_followed",
                   [](PySubscriber& s) { return s.subscriber().restarts_followed(); })
      .def("receive", &PySubscriber::Receive, "timeout"_a.none())
      .def("try_receive", &PySubscriber::TryReceive)
      .def("notify_fd", &PySubscriber::NotifyFd)
      .def_prop_ro("missed", [](PySubscriber& s) { return s.subscriber().missed(); })
      .def_prop_ro("channel", &PySubscriber::channel, nb::rv_policy::reference_internal);
}
