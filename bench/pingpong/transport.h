// Transport: makes the two endpoints of one case, one in the parent and one in the forked
// echo child. Each process uses its own copy (the child's is inherited through fork).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "pingpong/cases.h"
#include "pingpong/endpoint.h"
#include "pingpong/placement.h"

namespace quiver::bench::pingpong {

/// Prepare() runs before fork (what both processes inherit); ParentEndpoint() runs in the
/// parent after fork, and completes before the child's ChildEndpoint() starts.
class Transport {
 public:
  virtual ~Transport() = default;
  virtual bool Prepare(std::string* /*error*/) { return true; }
  virtual std::unique_ptr<Endpoint> ParentEndpoint(std::function<bool()> peer_alive,
                                                   std::string* error) = 0;
  virtual std::unique_ptr<Endpoint> ChildEndpoint(std::function<bool()> peer_alive,
                                                  std::string* error) = 0;
};

/// An endpoint that loans its next message ahead of time, as iceoryx2's own benchmark does
/// (quiver-spin-own-method). The harness calls LoanAhead() between the parent's round trips,
/// off the timed path; the echo child's loop has no such call, so its endpoint loans in
/// Receive(), before it waits.
class LoanAheadEndpoint : public Endpoint {
 public:
  using Endpoint::Endpoint;
  /// Loans the sample the next Send() publishes, unless one is held. False on failure.
  virtual bool LoanAhead() = 0;
};

// Returns the transport of one case: `kind` with a `size`-byte payload, in `placement`.
std::unique_ptr<Transport> MakeTransport(Kind kind, size_t size, Placement placement);

}  // namespace quiver::bench::pingpong
