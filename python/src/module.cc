// quiver._quiver: the nanobind bindings under the pure-Python API in python/quiver/. One
// file per bound type (module.h); each calls the C++ rule it exposes and re-implements none.
#include "module.h"

#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>

#include <string>

#include "arrays.h"
#include "common/byte_size.h"
#include "common/private_dir.h"
#include "common/token.h"
#include "errors.h"
#include "quiver/channel.h"

NB_MODULE(_quiver, m) {
  using namespace quiver;
  using namespace quiver::python;
  m.doc() = "Quiver's native core; use the `quiver` package, not this module.";
  RegisterErrors(m);
  ImportNumpy();
  m.def("named_directory", &Channel::NamedDirectory);
  m.def("parse_byte_size", [](const std::string& text) { return Unwrap(ParseByteSize(text)); });
  m.def("release_named_segments", &Channel::ReleaseNamesHeldOnlyByThisProcess);
  m.def("default_flight_location", [] { return Unwrap(DefaultFlightLocation()); });
  m.def("read_token_file", [](const std::string& path) { return Unwrap(ReadTokenFile(path)); });
  m.def("named_path", [](const std::string& name) { return Channel::NamedPath(name); });
  RegisterChannel(m);
  RegisterTensorLoan(m);
  RegisterFrames(m);
  RegisterPublisher(m);
  RegisterSample(m);
  RegisterSubscriber(m);
  RegisterControl(m);
  RegisterDiscovery(m);
  RegisterWorkflow(m);
}
