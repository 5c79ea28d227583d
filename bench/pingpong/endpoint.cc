#include "pingpong/endpoint.h"

namespace quiver::bench::pingpong {

bool Endpoint::KeepWaiting(Clock::time_point since) {
  if (!peer_alive_()) {
    error_ = "the peer process is gone";
    return false;
  }
  if (Clock::now() - since > kSilenceLimit) {
    error_ = "no message for " + std::to_string(kSilenceLimit.count()) + " s";
    return false;
  }
  return true;
}

}  // namespace quiver::bench::pingpong
