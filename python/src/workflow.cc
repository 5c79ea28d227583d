// quiver._quiver.workflow: the command/result workflow of quiver/control.h (Client, Worker,
// WorkerPool, HandleResolver, StartStream, HandleForLast) for python/quiver/control.py.
// Envelopes cross as lines (the one codec parses and writes them on both sides); waits
// release the GIL and run Python's signal handlers every slice (blocking.h); Python handlers
// run with the GIL taken again.
#include <arrow/c/bridge.h>
#include <nanobind/nanobind.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/string_view.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>

#include <memory>
#include <string>

#include "blocking.h"
#include "capsules.h"
#include "errors.h"
#include "module.h"
#include "publisher.h"
#include "quiver/arrow.h"
#include "quiver/control.h"
#include "sample.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace quiver::python {
namespace {

using control::Envelope;

control::Envelope ParseLine(nb::bytes line) {
  control::ParseOutcome out = control::ParseEnvelope(std::string_view(line.c_str(), line.size()));
  if (!out.ok()) {
    Throw(Status::InvalidArgument("not an envelope: " + out.error.code + ": " + out.error.message));
  }
  return std::move(*out.envelope);
}

nb::bytes ToLine(const Envelope& e) {
  const std::string line = control::Serialize(e);
  return nb::bytes(line.data(), line.size());
}

control::ShmHandle ParseHandleJson(const std::string& text) {
  const nlohmann::json value = nlohmann::json::parse(text, nullptr, false);
  control::ShmHandle handle;
  if (value.is_discarded()) Throw(Status::InvalidArgument("shm_handle is not valid JSON"));
  if (auto e = control::ParseShmHandle(value, &handle)) {
    Throw(Status::InvalidArgument(e->code + ": " + e->message));
  }
  return handle;
}

std::string HandleJson(const control::ShmHandle& handle) {
  Envelope e = control::MakeEnvelope(control::kResDataReady);
  e.shm_handle = handle;
  return nlohmann::json::parse(control::Serialize(e))["payload"]["shm_handle"].dump();
}

// Waits for `call` in signal slices, up to `timeout` seconds (none: as long as it takes).
nb::bytes WaitFor(const control::PendingCall& call, std::optional<double> timeout) {
  return ToLine(Unwrap(WaitInSlices(
      timeout, "worker '" + call.worker() + "' has not answered (msg_id " + call.msg_id() + ")",
      [&](std::chrono::milliseconds slice) { return call.Wait(slice); })));
}

// A Python handler: takes the command's line, returns the answer's line (a RES_ERROR_V2 line
// for an error: control.py turns exceptions into one, with their code and chain).
control::Handler PythonHandler(nb::callable fn) {
  auto held = std::make_shared<nb::callable>(std::move(fn));
  return [held](const Envelope& command) -> Result<Envelope> {
    nb::gil_scoped_acquire gil;
    try {
      nb::object answer = (*held)(ToLine(command));
      control::ParseOutcome out = control::ParseEnvelope(nb::cast<std::string>(answer));
      if (!out.ok()) {
        return Status::InvalidArgument(
            "the handler of " + command.type +
            " answered a line that is not an envelope: " + out.error.message);
      }
      if (out.envelope->type == control::kResErrorV2)
        return control::StatusFromError(*out.envelope);
      return std::move(*out.envelope);
    } catch (nb::python_error& e) {
      return Status::InvalidArgument("the handler of " + command.type + " raised " + e.what());
    } catch (const std::exception& e) {
      return Status::InvalidArgument("the handler of " + command.type + " failed: " + e.what());
    }
  };
}

class PyWorker {
 public:
  explicit PyWorker(nb::dict handlers) {
    for (auto [type, fn] : handlers) {
      Check(handlers_.Add(nb::cast<std::string>(type), PythonHandler(nb::cast<nb::callable>(fn))));
    }
  }
  void AddStreams() {
    streams_ = std::make_shared<control::Streams>();
    Check(handlers_.Add(control::kCmdStreamStart, streams_->handler()));
  }
  std::vector<std::string> types() const { return handlers_.types(); }
  template <typename Serve>
  void Run(Serve serve) {
    control::Worker worker(handlers_);
    Status st;
    {
      nb::gil_scoped_release release;
      st = serve(worker);
    }
    Check(st);
  }

 private:
  control::Handlers handlers_;
  std::shared_ptr<control::Streams> streams_;
};

class PyResolver {
 public:
  void Watch(const Channel& channel) {
    Check(resolver_.Watch(channel));
    channels_.emplace(channel.name(), channel);
  }
  PySample Resolve(const std::string& handle_json, std::optional<double> wait) {
    const control::ShmHandle handle = ParseHandleJson(handle_json);
    Sample sample = Unwrap(WaitInSlices(
        wait.value_or(1.0),
        "the sample of the handle (channel '" + handle.segment_id.substr(0, 80) +
            "') has not arrived",
        [&](std::chrono::milliseconds slice) { return resolver_.Resolve(handle, slice); }));
    return Wrap(channels_.at(handle.segment_id), std::move(sample));
  }
  void Forget(const std::string& handle_json) { resolver_.Forget(ParseHandleJson(handle_json)); }

 private:
  static PySample Wrap(const Channel& channel, Sample sample) {
    PySample out;
    out.sequence = sample.sequence();
    out.address = reinterpret_cast<uintptr_t>(sample.data().data());
    out.offset = sample.offset();
    out.size = sample.size();
    if (channel.type_versions() > 0) {
      nb::gil_scoped_release release;
      out.arrow = Unwrap(DecodeArrowSample(channel, std::move(sample)));
    } else {
      out.raw = std::make_shared<const Sample>(std::move(sample));
    }
    return out;
  }

  control::HandleResolver resolver_;
  std::map<std::string, Channel, std::less<>> channels_;
};

// Where a Python service handler's batches go during one call; refuses use after it.
class ServiceResults {
 public:
  explicit ServiceResults(control::ServiceCall* call) : publisher_(&call->results), call_(call) {}
  void Publish(nb::handle schema_capsule, nb::handle array_capsule) {
    if (publisher_ == nullptr) {
      Throw(Status::InvalidArgument("the call these results belonged to has ended"));
    }
    // A cancelled call: stop the handler (its generator gets the exception) instead of
    // computing for nobody.
    if (call_->caller_gone()) Throw(Status::PeerGone("the caller went away"));
    auto batch =
        arrow::ImportRecordBatch(CapsulePointer<ArrowArray>(array_capsule, "arrow_array"),
                                 CapsulePointer<ArrowSchema>(schema_capsule, "arrow_schema"));
    CheckArrow(batch.status(), "importing a record batch");
    Status st;
    {
      nb::gil_scoped_release release;  // it waits for room while the caller reads slowly
      st = publisher_->Publish(**batch);
    }
    Check(st);
  }
  void End() { publisher_ = nullptr; }

 private:
  ArrowPublisher* publisher_;
  control::ServiceCall* call_;
};

// The batches a DoExchange client streams into a Python service's call; refuses use after it.
class ServiceInputs {
 public:
  explicit ServiceInputs(ArrowSubscriber* inputs) : inputs_(inputs) {}
  // The next batch, or None once the client has sent them all.
  std::optional<PySample> Next() {
    if (inputs_ == nullptr) {
      Throw(Status::InvalidArgument("the call these inputs belonged to has ended"));
    }
    while (true) {
      Result<ArrowSample> sample = [&] {
        nb::gil_scoped_release release;
        return inputs_->Receive(std::chrono::milliseconds(100));
      }();
      if (sample.ok()) {
        PySample out;
        out.sequence = sample->sequence;
        out.arrow = std::move(*sample);
        return out;
      }
      if (sample.status().code() == ErrorCode::kTimeout) continue;
      if (sample.status().code() == ErrorCode::kPeerGone) return std::nullopt;
      Throw(sample.status());
    }
  }
  void End() { inputs_ = nullptr; }

 private:
  ArrowSubscriber* inputs_;
};

// A compute service whose handler is Python: called with the request (JSON text) and a
// ServiceResults; an exception fails the call with its text.
class PyService {
 public:
  PyService(const std::string& name, nb::handle schema_capsule, nb::callable handler,
            const std::string& description)
      : handler_(std::make_shared<nb::callable>(std::move(handler))) {
    // The lambda's copy is never the last: the callable dies with this object, GIL held.
    std::shared_ptr<nb::callable> held = handler_;
    service_ = Unwrap(control::Service::Listen(
        name, ImportSchemaCapsule(schema_capsule),
        [held](control::ServiceCall& call) -> Status {
          nb::gil_scoped_acquire gil;
          auto out = std::make_shared<ServiceResults>(&call);
          auto in = call.inputs != nullptr ? std::make_shared<ServiceInputs>(call.inputs) : nullptr;
          try {
            (*held)(call.request.dump(), nb::cast(out), in ? nb::cast(in) : nb::none());
            out->End();
            if (in) in->End();
            return Status::OK();
          } catch (nb::python_error& e) {
            out->End();
            if (in) in->End();
            return Status::InvalidArgument(std::string("the handler raised ") + e.what());
          }
        },
        {.description = description}));
  }
  ~PyService() { Stop(); }
  void Start() {
    if (!service_) Throw(Status::InvalidArgument("the service was closed"));
    service_->Start();
  }
  void Stop() {
    if (!service_) return;
    nb::gil_scoped_release release;  // joins calls, whose handlers take the GIL
    service_.reset();
  }
  bool running() const { return service_ != nullptr; }
  std::string path() const { return service_ ? service_->path() : ""; }

 private:
  std::shared_ptr<nb::callable> handler_;
  std::unique_ptr<control::Service> service_;
};

control::Dispatch DispatchOf(const std::string& name) {
  if (name == "round-robin") return control::Dispatch::kRoundRobin;
  if (name == "least-loaded") return control::Dispatch::kLeastLoaded;
  Throw(Status::InvalidArgument("dispatch '" + name +
                                "' is neither \"round-robin\" nor \"least-loaded\""));
}

}  // namespace

void RegisterWorkflow(nb::module_& m) {
  nb::module_ w = m.def_submodule("workflow", "The command/result workflow (quiver/control.h).");
  w.attr("CONTROL_ENV") = control::kControlEnv;
  w.attr("CONTROL_WORKERS_ENV") = control::kControlWorkersEnv;

  nb::class_<control::PendingCall>(w, "PendingCall")
      .def("wait", &WaitFor, "timeout"_a.none())
      .def_prop_ro("done", &control::PendingCall::done)
      .def_prop_ro("msg_id", &control::PendingCall::msg_id)
      .def_prop_ro("worker", &control::PendingCall::worker);

  nb::class_<control::Client>(w, "Client")
      .def_static("from_fd",
                  [](int fd, const std::string& worker) {
                    return Unwrap(control::Client::FromFd(fd, worker));
                  })
      .def_static("from_fds",
                  [](int read_fd, int write_fd, const std::string& worker) {
                    return Unwrap(control::Client::FromFds({read_fd, write_fd}, worker));
                  })
      .def_static(
          "connect_unix",
          [](const std::string& path) { return Unwrap(control::Client::ConnectUnix(path)); })
      .def_static("connect_tcp",
                  [](uint16_t port, const std::string& token) {
                    return Unwrap(control::Client::ConnectTcp(port, token));
                  })
      .def_static("for_worker",
                  [](const std::string& name) { return Unwrap(control::Client::ForWorker(name)); })
      .def("send",
           [](control::Client& c, nb::bytes line) { return Unwrap(c.Send(ParseLine(line))); })
      .def_prop_ro("in_flight", &control::Client::in_flight)
      .def_prop_ro("connected", &control::Client::connected)
      .def_prop_ro("worker", &control::Client::worker);

  nb::class_<control::WorkerPool>(w, "WorkerPool")
      .def_static("from_environment",
                  [](const std::string& dispatch) {
                    return Unwrap(control::WorkerPool::FromEnvironment(DispatchOf(dispatch)));
                  })
      .def_static("make",
                  [](const std::string& dispatch) {
                    return std::make_unique<control::WorkerPool>(DispatchOf(dispatch));
                  })
      // Takes the client over: the Python object is unusable afterwards (control.py drops it).
      .def(
          "add",
          [](control::WorkerPool& pool, std::unique_ptr<control::Client> client) {
            pool.Add(std::move(client));
          },
          "client"_a)
      .def("call",
           [](control::WorkerPool& pool, nb::bytes line, double timeout, int retries) {
             Envelope command = ParseLine(line);
             control::PoolCallOptions options;
             options.timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout * 1000));
             options.retries = retries;
             Result<Envelope> r = [&] {
               nb::gil_scoped_release release;
               return pool.Call(command, options);
             }();
             return ToLine(Unwrap(std::move(r)));
           })
      .def_prop_ro("live_workers", &control::WorkerPool::live_workers)
      .def("load", &control::WorkerPool::load);

  nb::enum_<control::Dispatch>(w, "Dispatch")
      .value("round_robin", control::Dispatch::kRoundRobin)
      .value("least_loaded", control::Dispatch::kLeastLoaded);

  nb::class_<PyWorker>(w, "Worker")
      .def(nb::init<nb::dict>())
      .def("add_streams", &PyWorker::AddStreams)
      .def_prop_ro("types", &PyWorker::types)
      .def("serve_fd",
           [](PyWorker& w, int fd) { w.Run([fd](control::Worker& x) { return x.ServeFd(fd); }); })
      .def("serve_fds",
           [](PyWorker& w, int read_fd, int write_fd) {
             w.Run([&](control::Worker& x) { return x.ServeFds({read_fd, write_fd}); });
           })
      .def("serve_stdio",
           [](PyWorker& w) { w.Run([](control::Worker& x) { return x.ServeStdio(); }); })
      .def("serve_from_environment",
           [](PyWorker& w) { w.Run([](control::Worker& x) { return x.ServeFromEnvironment(); }); });

  nb::class_<PyResolver>(w, "HandleResolver")
      .def(nb::init<>())
      .def("watch", &PyResolver::Watch)
      .def("resolve", &PyResolver::Resolve, "handle_json"_a, "wait"_a.none())
      .def("forget", &PyResolver::Forget);

  nb::class_<ServiceInputs>(w, "ServiceInputs").def("next", &ServiceInputs::Next);
  nb::class_<ServiceResults>(w, "ServiceResults")
      .def("publish", &ServiceResults::Publish, "schema_capsule"_a, "array_capsule"_a);

  nb::class_<PyService>(w, "Service")
      .def(nb::init<const std::string&, nb::handle, nb::callable, const std::string&>())
      .def("start", &PyService::Start)
      .def("stop", &PyService::Stop)
      .def_prop_ro("running", &PyService::running)
      .def_prop_ro("path", &PyService::path);
  w.def("list_services", [] { return Unwrap(control::ListServices()); });

  w.def("start_stream", [](nb::bytes line) {
    auto started = Unwrap(control::StartStream(ParseLine(line)));
    return std::make_pair(std::move(started.first), ToLine(started.second));
  });
  w.def("handle_for_last", [](PyPublisher& publisher, const std::string& format) {
    const std::optional<control::ShmFormat> f = control::ShmFormatFromName(format);
    if (!f) Throw(Status::InvalidArgument("unknown shm_handle format '" + format + "'"));
    return HandleJson(Unwrap(control::HandleForLast(publisher.publisher(), *f)));
  });
}

}  // namespace quiver::python
