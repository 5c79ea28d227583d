// quiver._quiver.Subscriber: one reader of a channel. Arrow samples are decoded (and
// checked) without the GIL; receive waits in signal slices (blocking.h).
#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <utility>

#include "blocking.h"
#include "capsules.h"
#include "errors.h"
#include "module.h"
#include "quiver/arrow.h"
#include "quiver/channel.h"
#include "sample.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace quiver::python {
namespace {

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

  // Waits in slices, without the GIL, so other threads run and Ctrl-C is seen.
  PySample Receive(std::optional<double> timeout) {
    const auto start = Clock::now();
    const auto deadline = DeadlineAfter(start, timeout);
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
      RunSignalHandlers();
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

  Channel channel_;
  std::optional<ArrowSubscriber> arrow_;
  std::optional<Subscriber> raw_;
};

}  // namespace

void RegisterSubscriber(nb::module_& m) {
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

}  // namespace quiver::python
