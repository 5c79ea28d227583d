// The kernel's copying peers: "uds" (an AF_UNIX stream socketpair) and "pipe" (two pipes).
// The whole payload goes through the kernel each way, copied twice. One per process.
#pragma once

#include <cstddef>
#include <memory>

#include "pingpong/transport.h"

namespace quiver::bench::pingpong {

std::unique_ptr<Transport> MakeUdsTransport(size_t size);
std::unique_ptr<Transport> MakePipeTransport(size_t size);

}  // namespace quiver::bench::pingpong
