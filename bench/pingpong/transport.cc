#include "pingpong/transport.h"

#include "pingpong/floor_transports.h"
#include "pingpong/kernel_transports.h"
#include "pingpong/quiver_transport.h"

namespace quiver::bench::pingpong {

std::unique_ptr<Transport> MakeTransport(Kind kind, size_t size, Placement placement) {
  switch (kind) {
    case Kind::kFutex:
      return MakeFutexTransport();
    case Kind::kSpin:
      return MakeSpinTransport();
    case Kind::kUds:
      return MakeUdsTransport(size);
    case Kind::kPipe:
      return MakePipeTransport(size);
    default:
      return MakeQuiverTransport(kind, size,
                                 std::string(KindName(kind)) + "-" + std::to_string(size) + "-" +
                                     std::string(PlacementName(placement)));
  }
}

}  // namespace quiver::bench::pingpong
