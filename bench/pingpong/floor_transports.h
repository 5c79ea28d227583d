// The floors the Quiver transports are measured against, moving no payload: "futex" (the
// floor of a blocking wake-up across processes) and "spin" (the floor of busy-polling).
// Each case makes its own; one per process.
#pragma once

#include <memory>

#include "pingpong/transport.h"

namespace quiver::bench::pingpong {

// Two 32-bit words in a MAP_SHARED mapping, FUTEX_WAIT/FUTEX_WAKE, no spin.
std::unique_ptr<Transport> MakeFutexTransport();

// Two cache lines, busy-polled.
std::unique_ptr<Transport> MakeSpinTransport();

}  // namespace quiver::bench::pingpong
