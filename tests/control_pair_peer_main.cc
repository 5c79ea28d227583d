// A pipeline node for the supervisor's control-connection tests (tests/supervisor_test.cc).
// Every role first checks that the node holds exactly the fds its environment names (0-2,
// QUIVER_CHANNELS, QUIVER_CONTROL, QUIVER_CONTROL_WORKERS) and no other; exit code 10 if not.
//
//   control_pair_peer_main core NAME... [--bye-first | --await-eof FILE]
//       QUIVER_CONTROL_WORKERS must name exactly NAME... in that order. To each worker it
//       writes {"to":"NAME"} and expects {"from":"NAME","got":{"to":"NAME"}} back. Then
//       --bye-first: sends {"bye":true} to the first worker and expects EOF from it;
//       --await-eof FILE: ignores SIGTERM, waits for EOF from the first worker (which dies)
//       and writes "eof" to FILE. Either way it then exits, so the other workers read EOF.
//   control_pair_peer_main worker [--die-after-reply]
//       Serves QUIVER_CONTROL ("R:W", two pipes, or "stdio": fd 0 and 1, which must be pipes):
//       answers each line as above, exits 0 on {"bye":true} or EOF; --die-after-reply:
//       SIGKILLs itself after its first answer. Says "ready" on stderr and on stdout.
//   control_pair_peer_main bystander
//       Only the fd check; QUIVER_CONTROL and QUIVER_CONTROL_WORKERS must be unset.
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "quiver/control.h"

namespace {

constexpr int kTimeoutMs = 10000;

// QUIVER_CHANNELS, "name=fd,name=fd", as (name, fd) pairs; an empty or absent list is empty.
std::vector<std::pair<std::string, int>> ParseFdList(const char* text) {
  std::vector<std::pair<std::string, int>> out;
  std::string_view rest = text == nullptr ? "" : text;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    const size_t eq = item.find('=');
    out.emplace_back(
        std::string(item.substr(0, eq)),
        eq == std::string_view::npos ? -1 : std::atoi(std::string(item.substr(eq + 1)).c_str()));
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return out;
}

std::string Join(const std::set<int>& fds) {
  std::string s;
  for (int fd : fds) s += (s.empty() ? "" : " ") + std::to_string(fd);
  return s;
}

// The fds open in this process are exactly 0-2 and those its environment names.
bool HoldsExactlyItsFds() {
  std::set<int> expected = {0, 1, 2};
  for (const auto& [name, fd] : ParseFdList(std::getenv("QUIVER_CHANNELS"))) expected.insert(fd);
  if (const char* list = std::getenv(quiver::control::kControlWorkersEnv)) {
    auto workers = quiver::control::ParseControlWorkers(list);
    if (!workers.ok()) return false;
    for (const auto& w : *workers) expected.insert({w.fds.read_fd, w.fds.write_fd});
  }
  if (const char* control = std::getenv(quiver::control::kControlEnv);
      control != nullptr && std::string_view(control) != "stdio") {
    auto fds = quiver::control::ParseControlFds(control);
    if (!fds.ok()) return false;
    expected.insert({fds->read_fd, fds->write_fd});
  }
  std::set<int> open;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return false;
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    const int fd = std::atoi(entry->d_name);
    if (fd != ::dirfd(dir)) open.insert(fd);
  }
  ::closedir(dir);
  if (open == expected) return true;
  std::fprintf(stderr, "open fds: %s; expected: %s\n", Join(open).c_str(), Join(expected).c_str());
  return false;
}

// Reads '\n'-terminated lines from one fd, waiting at most kTimeoutMs for each.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}
  enum class Got { kLine, kEof, kTimeout, kError };

  Got Next(std::string* line) {
    while (true) {
      if (const size_t nl = buffer_.find('\n'); nl != std::string::npos) {
        *line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return Got::kLine;
      }
      pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
      const int ready = ::poll(&p, 1, kTimeoutMs);
      if (ready < 0 && errno == EINTR) continue;
      if (ready == 0) return Got::kTimeout;
      char chunk[512];
      const ssize_t n = ::read(fd_, chunk, sizeof(chunk));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Got::kError;
      if (n == 0) return Got::kEof;
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

 private:
  int fd_;
  std::string buffer_;
};

bool WriteLine(int fd, const std::string& line) {
  const std::string out = line + "\n";
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::write(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

int Fail(int code, const std::string& why) {
  std::fprintf(stderr, "%s\n", why.c_str());
  return code;
}

std::string Request(const std::string& name) { return "{\"to\":\"" + name + "\"}"; }
std::string Reply(const std::string& name, const std::string& got) {
  return "{\"from\":\"" + name + "\",\"got\":" + got + "}";
}
constexpr char kBye[] = "{\"bye\":true}";

int Core(const std::vector<std::string>& args) {
  std::vector<std::string> names;
  std::string mode, marker;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--bye-first") {
      mode = args[i];
    } else if (args[i] == "--await-eof" && i + 1 < args.size()) {
      mode = args[i];
      marker = args[++i];
    } else {
      names.push_back(args[i]);
    }
  }
  // Stopped because its worker died, it still has to report what it saw.
  if (mode == "--await-eof") ::signal(SIGTERM, SIG_IGN);
  if (std::getenv(quiver::control::kControlEnv) != nullptr)
    return Fail(11, "core has QUIVER_CONTROL");
  const char* list_env = std::getenv(quiver::control::kControlWorkersEnv);
  auto parsed = quiver::control::ParseControlWorkers(list_env ? list_env : "");
  if (!parsed.ok()) return Fail(12, parsed.status().ToString());
  const std::vector<quiver::control::WorkerFd>& workers = *parsed;
  std::vector<std::string> got_names;
  for (const auto& w : workers) got_names.push_back(w.name);
  if (got_names != names) {
    const char* list = std::getenv(quiver::control::kControlWorkersEnv);
    return Fail(12, std::string("QUIVER_CONTROL_WORKERS=") + (list ? list : "(unset)"));
  }
  std::vector<LineReader> readers;
  for (const auto& [name, fds] : workers) {
    readers.emplace_back(fds.read_fd);
    if (!WriteLine(fds.write_fd, Request(name))) return Fail(13, "write to " + name);
    std::string line;
    if (readers.back().Next(&line) != LineReader::Got::kLine)
      return Fail(14, "no reply from " + name);
    if (line != Reply(name, Request(name))) return Fail(15, "reply from " + name + ": " + line);
  }
  if (workers.empty()) return 0;
  std::string line;
  if (mode == "--bye-first") {
    if (!WriteLine(workers[0].fds.write_fd, kBye)) return Fail(16, "write bye");
    if (readers[0].Next(&line) != LineReader::Got::kEof) return Fail(17, "no EOF after bye");
  } else if (mode == "--await-eof") {
    if (readers[0].Next(&line) != LineReader::Got::kEof)
      return Fail(18, "no EOF from a dead worker");
    std::ofstream(marker) << "eof\n";
  }
  return 0;
}

int Worker(const std::vector<std::string>& args) {
  const bool die_after_reply = !args.empty() && args[0] == "--die-after-reply";
  const char* name = std::getenv("QUIVER_NODE");
  const char* control = std::getenv(quiver::control::kControlEnv);
  if (name == nullptr || control == nullptr) return Fail(20, "no QUIVER_NODE or QUIVER_CONTROL");
  int in = -1, out = -1;
  if (std::string_view(control) == "stdio") {
    struct stat st0 {
    }, st1{};
    if (::fstat(0, &st0) != 0 || ::fstat(1, &st1) != 0 || !S_ISFIFO(st0.st_mode) ||
        !S_ISFIFO(st1.st_mode) || st0.st_ino == st1.st_ino) {
      return Fail(21, "stdin and stdout are not two pipes");
    }
    in = 0;
    out = 1;
  } else {
    auto fds = quiver::control::ParseControlFds(control);
    struct stat st_in {
    }, st_out{};
    if (!fds.ok() || fds->read_fd <= 2 || fds->write_fd <= 2 ||
        ::fstat(fds->read_fd, &st_in) != 0 || ::fstat(fds->write_fd, &st_out) != 0 ||
        !S_ISFIFO(st_in.st_mode) || !S_ISFIFO(st_out.st_mode)) {
      return Fail(22, std::string("QUIVER_CONTROL=") + control + " is not two pipes");
    }
    in = fds->read_fd;
    out = fds->write_fd;
    std::printf("%s ready\n", name);  // relayed: a socket worker's stdout is its own
    std::fflush(stdout);
  }
  std::fprintf(stderr, "%s ready on %s\n", name, control);
  LineReader reader(in);
  std::string line;
  while (true) {
    switch (reader.Next(&line)) {
      case LineReader::Got::kEof:
        return 0;  // its core ended
      case LineReader::Got::kTimeout:
        return Fail(23, "no command for 10 s");
      case LineReader::Got::kError:
        return Fail(24, "read error");
      case LineReader::Got::kLine:
        break;
    }
    if (line == kBye) return 0;
    if (!WriteLine(out, Reply(name, line))) return Fail(25, "write reply");
    if (die_after_reply) ::raise(SIGKILL);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (!HoldsExactlyItsFds()) return 10;
  const std::string role = argc > 1 ? argv[1] : "";
  const std::vector<std::string> args(argv + std::min(argc, 2), argv + argc);
  if (role == "core") return Core(args);
  if (role == "worker") return Worker(args);
  if (role == "bystander") {
    if (std::getenv(quiver::control::kControlEnv) != nullptr ||
        std::getenv(quiver::control::kControlWorkersEnv) != nullptr) {
      return Fail(30, "a bystander has control variables");
    }
    return 0;
  }
  return Fail(64, "usage: control_pair_peer_main core NAME... | worker | bystander");
}
