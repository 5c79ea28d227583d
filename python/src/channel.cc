// quiver._quiver.Channel: create, open and attach channels, their schemas and counters.
#include "quiver/channel.h"

#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/unique_ptr.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <string>

#include "blocking.h"
#include "capsules.h"
#include "errors.h"
#include "module.h"
#include "quiver/arrow.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace quiver::python {
namespace {

ChannelOptions Options(size_t capacity, uint32_t max_samples, uint32_t max_subscribers,
                       const std::string& overflow, bool memfd,
                       std::optional<double> stall_timeout) {
  ChannelOptions options{.capacity = capacity,
                         .max_samples = max_samples,
                         .max_subscribers = max_subscribers,
                         .overflow = Unwrap(ParseOverflowPolicy(overflow)),
                         .backing = memfd ? Backing::kMemfd : Backing::kNamed};
  if (stall_timeout) {
    options.stall_timeout = Unwrap(StallTimeoutFromSeconds(*stall_timeout));
  }
  return options;
}

Channel CreateChannel(const std::string& name, size_t capacity, uint32_t max_samples,
                      uint32_t max_subscribers, const std::string& overflow, bool memfd,
                      nb::object schema_capsule, std::optional<double> stall_timeout,
                      const std::string& evolution) {
  const ChannelOptions options =
      Options(capacity, max_samples, max_subscribers, overflow, memfd, stall_timeout);
  const SchemaEvolution rule = Unwrap(ParseSchemaEvolution(evolution));
  if (!schema_capsule.is_none()) {
    return Unwrap(CreateArrowChannel(name, ImportSchemaCapsule(schema_capsule), options, rule));
  }
  return Unwrap(Channel::Create(name, options));
}

Channel OpenOrCreateChannel(const std::string& name, size_t capacity, uint32_t max_samples,
                            uint32_t max_subscribers, const std::string& overflow,
                            nb::object schema_capsule, std::optional<double> stall_timeout,
                            const std::string& evolution) {
  const ChannelOptions options =
      Options(capacity, max_samples, max_subscribers, overflow, false, stall_timeout);
  const SchemaEvolution rule = Unwrap(ParseSchemaEvolution(evolution));
  if (!schema_capsule.is_none()) {
    const std::shared_ptr<arrow::Schema> schema = ImportSchemaCapsule(schema_capsule);
    nb::gil_scoped_release release;
    return Unwrap(OpenOrCreateArrowChannel(name, schema, options, rule));
  }
  nb::gil_scoped_release release;
  return Unwrap(Channel::OpenOrCreate(name, options));
}

/// Opens `name`, waiting `wait` seconds (none: for ever) for it to be created, slice by
/// slice so that Ctrl-C interrupts the wait.
Channel OpenWaiting(const std::string& name, std::optional<double> wait) {
  return Unwrap(
      WaitInSlices(wait, "channel '" + name + "' was not created",
                   [&](std::chrono::milliseconds slice) { return Channel::Open(name, slice); }));
}

// The one JSON shape of a channel's counters (ChannelStats::ToJson), for json.loads.
std::string StatsJson(const Channel& channel) { return channel.Stats().ToJson(); }

}  // namespace

void RegisterChannel(nb::module_& m) {
  // A Retainer that close() can end before the object goes.
  struct PyRetainer {
    std::unique_ptr<Retainer> retainer;
  };
  nb::class_<PyRetainer>(m, "Retainer")
      .def_prop_ro("held", [](const PyRetainer& r) { return r.retainer ? r.retainer->held() : 0; })
      .def("close", [](PyRetainer& r) {
        nb::gil_scoped_release release;
        r.retainer.reset();
      });

  nb::class_<Channel>(m, "Channel")
      .def(
          "retain",
          [](Channel& c, uint32_t samples, double seconds) {
            RetainOptions options;
            options.samples = samples;
            options.max_age = std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
            return std::make_unique<PyRetainer>(Unwrap(Retainer::Start(c, options)));
          },
          "samples"_a, "seconds"_a)
      .def_static("create", &CreateChannel, "name"_a, "capacity"_a, "max_samples"_a,
                  "max_subscribers"_a, "overflow"_a, "memfd"_a, "schema"_a.none(),
                  "stall_timeout"_a.none(), "evolution"_a)
      .def_static("open_or_create", &OpenOrCreateChannel, "name"_a, "capacity"_a, "max_samples"_a,
                  "max_subscribers"_a, "overflow"_a, "schema"_a.none(), "stall_timeout"_a.none(),
                  "evolution"_a)
      .def_static("open", [](const std::string& name) { return Unwrap(Channel::Open(name)); })
      .def_static("open_waiting", &OpenWaiting, "name"_a, "wait"_a.none())
      .def_static("from_fd", [](int fd) { return Unwrap(Channel::FromFd(fd)); })
      .def_static("attach", [](const std::string& name) { return Unwrap(Channel::Attach(name)); })
      .def_prop_ro("name", &Channel::name)
      .def_prop_ro("capacity", &Channel::capacity)
      .def_prop_ro("fd", &Channel::fd)
      .def_prop_ro("named", &Channel::named)
      .def_prop_ro("type_versions", &Channel::type_versions)
      .def_prop_ro("evolution",
                   [](const Channel& c) -> std::optional<std::string> {
                     if (c.type_versions() == 0) return std::nullopt;
                     return std::string(SchemaEvolutionName(Unwrap(ChannelEvolution(c))));
                   })
      .def("stats_json", &StatsJson)
      .def(
          "schema_capsule",
          [](const Channel& c, uint32_t version) -> nb::object {
            if (c.type_versions() == 0) return nb::none();
            return SchemaCapsule(*Unwrap(ChannelSchema(c, version)));
          },
          "version"_a = 0);
}

}  // namespace quiver::python
