// Run as another local user by hostile_user_test: one attack per call on the doors of the
// user who runs Quiver. Prints what happened. Exit codes: 0 the attack got in (a failure of
// Quiver's), 10 it was refused, 2 bad usage, 3 the attack could not even be tried.
//
//   connect-unix PATH                 connect to a Unix socket
//   list-dir PATH                     list a directory
//   plant-fifo DIR NAME               make a FIFO DIR/NAME (a name a victim may open)
//   make-dir PATH                     make a directory others may use (mode 0777)
//   flight-list LOCATION              ListFlights on a Flight server, without a token
//   control-process PATH CHANNEL      a control request naming CHANNEL over a Unix socket
//   control-tcp PORT CHANNEL          the same over loopback TCP, without CMD_AUTH
//   fake-supervisor VICTIM_UID MODE   bind an abstract socket named like a supervisor of
//                                     VICTIM_UID and serve it (MODE: silent, or rows: answer
//                                     'list' with terminal escapes) until killed
#include <arrow/flight/client.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <string>
#include <string_view>
#include <thread>

#include "control/connection.h"
#include "quiver/envelope.h"

namespace {

constexpr int kGotIn = 0;
constexpr int kRefused = 10;
constexpr int kUsage = 2;
constexpr int kCannotTry = 3;

int Report(bool got_in, const std::string& what) {
  std::printf("%s: %s\n", got_in ? "GOT IN" : "refused", what.c_str());
  return got_in ? kGotIn : kRefused;
}

int ConnectUnix(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), std::min(path.size(), sizeof(addr.sun_path) - 1));
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  const int err = errno;
  ::close(fd);
  return Report(connected, connected ? "connected to " + path
                                     : "connect " + path + ": " + std::strerror(err));
}

int ListDir(const std::string& path) {
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return Report(false, "opendir " + path + ": " + std::strerror(errno));
  std::string names;
  while (const dirent* entry = ::readdir(dir)) names += std::string(" ") + entry->d_name;
  ::closedir(dir);
  return Report(true, "listed" + names);
}

int PlantFifo(const std::string& dir, const std::string& name) {
  const std::string path = dir + "/" + name;
  const bool made = ::mkfifo(path.c_str(), 0666) == 0;
  return Report(made, made ? "planted " + path : "mkfifo " + path + ": " + std::strerror(errno));
}

int MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0777) != 0) {
    std::printf("mkdir %s: %s\n", path.c_str(), std::strerror(errno));
    return kCannotTry;
  }
  ::chmod(path.c_str(), 0777);
  return Report(true, "made " + path);
}

int FlightList(const std::string& location) {
  namespace fl = arrow::flight;
  auto parsed = fl::Location::Parse(location);
  if (!parsed.ok()) return kUsage;
  auto client = fl::FlightClient::Connect(*parsed);
  if (!client.ok()) return Report(false, client.status().ToString());
  auto listing = (*client)->ListFlights();
  if (!listing.ok()) return Report(false, listing.status().ToString());
  std::string names;
  while (true) {
    auto info = (*listing)->Next();
    if (!info.ok() || *info == nullptr) break;
    names += " " + (*info)->descriptor().ToString();
  }
  return Report(true, "listed:" + names);
}

// Sends one CMD_PROCESS naming `channel` and reports the answer.
int ControlProcess(quiver::Result<quiver::control::Connection> connection,
                   const std::string& channel) {
  using namespace quiver::control;
  if (!connection.ok()) return Report(false, connection.status().ToString());
  Envelope request = MakeEnvelope(kCmdProcess);
  request.shm_handle = ShmHandle{channel, 0, 1, ShmFormat::kRaw};
  // A server that refuses says so at once and closes: the write may fail, the answer is there.
  (void)connection->WriteLine(Serialize(request));
  auto line = connection->ReadLine(std::chrono::seconds(10));
  if (!line.ok() || !line->has_value()) return Report(false, "no answer (connection closed)");
  ParseOutcome answer = ParseEnvelope(**line);
  const bool served = answer.ok() && answer.envelope->type != kResErrorV2;
  return Report(served, **line);
}

int FakeSupervisor(const std::string& victim_uid, const std::string& mode) {
  const std::string name = "quiver-" + victim_uid + "-" + std::to_string(getpid()) + "-evil";
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path + 1, name.data(), name.size());  // abstract: leading NUL
  const socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  const int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::listen(listener, 1) != 0) {
    std::printf("bind @%s: %s\n", name.c_str(), std::strerror(errno));
    return kCannotTry;
  }
  std::printf("listening on @%s\n", name.c_str());
  std::fflush(stdout);
  for (;;) {
    const int client = ::accept(listener, nullptr, nullptr);
    if (client < 0) continue;
    if (mode == "rows") {
      const std::string rows = "ok \x1b[31mEVIL\x1b[0m,\x1b]0;pwned\x07\n";
      [[maybe_unused]] ssize_t n = ::write(client, rows.data(), rows.size());
      ::close(client);
    }
    // silent: keep the connection open and never answer
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view command = argc > 1 ? argv[1] : "";
  auto arg = [&](int i) { return std::string(argc > i ? argv[i] : ""); };
  if (command == "connect-unix" && argc == 3) return ConnectUnix(arg(2));
  if (command == "list-dir" && argc == 3) return ListDir(arg(2));
  if (command == "plant-fifo" && argc == 4) return PlantFifo(arg(2), arg(3));
  if (command == "make-dir" && argc == 3) return MakeDir(arg(2));
  if (command == "flight-list" && argc == 3) return FlightList(arg(2));
  if (command == "control-process" && argc == 4) {
    return ControlProcess(quiver::control::Connection::ConnectUnix(arg(2)), arg(3));
  }
  if (command == "control-tcp" && argc == 4) {
    return ControlProcess(
        quiver::control::Connection::ConnectTcp(static_cast<uint16_t>(std::stoi(arg(2)))),
        arg(3));
  }
  if (command == "fake-supervisor" && argc == 4) return FakeSupervisor(arg(2), arg(3));
  std::fprintf(stderr, "usage: see the comment at the top of hostile_peer_main.cc\n");
  return kUsage;
}
