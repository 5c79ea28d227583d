// Channel discovery for Python: quiver.list_channels() is discovery::ListChannels, each
// channel in the JSON shape of `quiver ls --json`.
#include "discovery/discovery.h"

#include <nanobind/nanobind.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <string>
#include <utility>
#include <vector>

#include "module.h"

namespace nb = nanobind;

namespace quiver::python {

void RegisterDiscovery(nb::module_& m) {
  // (one JSON text per channel, what could not be looked at), without the GIL: listing asks
  // every running supervisor over its socket.
  m.def("list_channels_json", [] {
    std::vector<std::string> problems;
    std::vector<std::string> channels;
    {
      nb::gil_scoped_release release;
      for (const discovery::ChannelEntry& entry : discovery::ListChannels(&problems)) {
        channels.push_back(entry.ToJson());
      }
    }
    return std::make_pair(std::move(channels), std::move(problems));
  });
}

}  // namespace quiver::python
