// A control-protocol peer for tests: serves protocol 2.0.0 on stdio (default), on a Unix
// socket (--unix PATH; prints "ready" once listening) or on 127.0.0.1 (--tcp; prints
// "port N"; clients authenticate with the token in $QUIVER_CONTROL_TOKEN). It exposes the
// channels named by --expose NAME (repeatable) and no others. CMD_WATCH {"segment_id"} (an
// application's own type) watches an exposed channel, answering RES_OK with its capacity;
// CMD_PROCESS resolves the safe shm_handle of a sample published there since, answering
// RES_DATA_READY with its CRC-32; CMD_STREAM_START makes a stream (Streams); CMD_SHUTDOWN
// ends it.
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <span>
#include <string>

#include "control/connection.h"
#include "control/server.h"
#include "quiver/channel.h"
#include "quiver/control.h"
#include "quiver/envelope.h"

namespace {

using quiver::ErrorCode;
using quiver::Result;
using quiver::Status;
using namespace quiver::control;

// CRC-32 (IEEE 802.3, as zlib.crc32), bitwise: a test peer needs no table.
uint32_t Crc32(std::span<const std::byte> bytes) {
  uint32_t crc = 0xffffffffu;
  for (std::byte b : bytes) {
    crc ^= static_cast<uint8_t>(b);
    for (int i = 0; i < 8; ++i) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return crc ^ 0xffffffffu;
}

std::set<std::string, std::less<>> g_exposed;
HandleResolver g_resolver;  // watches every exposed channel

bool Exposes(std::string_view channel) { return g_exposed.count(channel) != 0; }

Result<Envelope> Process(const Envelope& request) {
  if (!request.shm_handle) return Status::InvalidArgument("CMD_PROCESS needs an shm_handle");
  QUIVER_ASSIGN_OR_RETURN(quiver::Sample sample,
                          g_resolver.Resolve(*request.shm_handle, std::chrono::seconds(5)));
  Envelope response = MakeEnvelope(
      kResDataReady, {{"crc32", Crc32(sample.data())}, {"bytes", sample.data().size()}});
  response.shm_handle = request.shm_handle;
  return response;
}

Result<Envelope> WatchChannel(const Envelope& request) {
  auto id = request.payload.find("segment_id");
  if (id == request.payload.end() || !id->is_string()) {
    return Status::InvalidArgument("CMD_WATCH needs payload.segment_id");
  }
  if (!Exposes(id->get<std::string>())) {
    return Status::PermissionDenied("channel not exposed by this peer");
  }
  QUIVER_ASSIGN_OR_RETURN(quiver::Channel channel, quiver::Channel::Open(id->get<std::string>()));
  const size_t capacity = channel.capacity();
  QUIVER_RETURN_IF_ERROR(g_resolver.Watch(std::move(channel)));
  return MakeEnvelope(kResOk, {{"segment_id", id->get<std::string>()}, {"capacity", capacity}});
}

int Fail(const Status& st) {
  std::fprintf(stderr, "control_peer_main: %s\n", st.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a vanished stdio peer is a write error, not a death
  std::string mode = "--stdio", path;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--expose" && i + 1 < argc) {
      g_exposed.insert(argv[++i]);
    } else if (arg == "--unix" && i + 1 < argc) {
      mode = arg;
      path = argv[++i];
    } else if (arg == "--tcp" || arg == "--stdio") {
      mode = arg;
    } else {
      return Fail(
          Status::InvalidArgument("usage: control_peer_main [--stdio | --unix PATH | --tcp] "
                                  "[--expose NAME]..."));
    }
  }
  Streams streams;
  Handlers handlers;
  for (auto [type, handler] : {std::pair<std::string_view, Handler>{kCmdProcess, Process},
                               {"CMD_WATCH", WatchChannel},
                               {kCmdStreamStart, streams.handler()}}) {
    if (Status st = handlers.Add(type, handler); !st.ok()) return Fail(st);
  }
  ServeOptions options;
  options.exposes = Exposes;
  if (const char* token = std::getenv("QUIVER_CONTROL_TOKEN")) options.token = token;
  if (mode == "--stdio") {
    Connection stdio = Connection::FromBorrowedFds(0, 1);
    Result<ConnectionEnd> end = ServeConnection(stdio, handlers, options);
    return end.ok() ? 0 : Fail(end.status());
  }
  Result<std::unique_ptr<Server>> server = mode == "--unix"
                                               ? Server::ListenUnix(path, handlers, options)
                                               : Server::ListenTcp(0, handlers, options);
  if (!server.ok()) return Fail(server.status());
  (*server)->set_stop_on_shutdown(true);
  if (mode == "--tcp") {
    std::printf("port %u\n", static_cast<unsigned>((*server)->port()));
  } else {
    std::printf("ready\n");
  }
  std::fflush(stdout);
  Status st = (*server)->Run();
  return st.ok() ? 0 : Fail(st);
}
