// The Quiver channel transports: two channels (ping, pong), Loan + fill + Publish, and a
// receiver that blocks ("quiver-blocking": no spin; "quiver-default": the default
// SubscriberOptions) or busy-polls TryReceive() ("quiver-spin"); "quiver-spin-own-method" is
// quiver-spin measured as iceoryx2 measures itself (no payload written or read, the next
// sample loaned ahead). One per process.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "pingpong/transport.h"
#include "quiver/channel.h"

namespace quiver::bench::pingpong {

// `kind` is one of the quiver kinds; `tag` makes the channel names unique per case.
std::unique_ptr<Transport> MakeQuiverTransport(Kind kind, size_t size, const std::string& tag);

// Returns the subscriber options of a quiver kind.
quiver::SubscriberOptions SubscriberOptionsFor(Kind kind);

}  // namespace quiver::bench::pingpong
