// `quiver serve` (the Flight gateway over this machine's channels) and `quiver bridge` (a
// remote channel subscribed into a local one). The work is in src/flight/; this is the glue:
// options, the token file, signals and progress.
#include <fcntl.h>
#include <malloc.h>
#include <sys/random.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <thread>
#include <utility>

#include "cli/commands.h"
#include "common/private_dir.h"
#include "common/token.h"
#include "common/unique_fd.h"
#include "flight/bridge.h"
#include "flight/server.h"

namespace quiver::cli {
namespace {

std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free);  // set from a signal handler

void StopOnSignals() {
  struct sigaction action {};
  action.sa_handler = [](int) { g_stop.store(true); };
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

// The token: from --token-file (first line, surrounding whitespace trimmed), else from
// QUIVER_FLIGHT_TOKEN, else none. Never from the command line, where `ps` would show it.
Result<std::string> LoadToken(const std::string& file) {
  if (!file.empty()) return ReadTokenFile(file);
  const char* env = std::getenv("QUIVER_FLIGHT_TOKEN");
  if (env == nullptr) return std::string();
  std::string token = TrimToken(env);
  if (token.empty()) return Status::InvalidArgument("QUIVER_FLIGHT_TOKEN is empty");
  return token;
}

// What serve and bridge do first: the token, then the signal handlers. False (an error
// line printed) for a token file that cannot be used.
bool Prepare(const char* command, const std::string& token_file, std::string* token) {
  auto loaded = LoadToken(token_file);
  if (!loaded.ok()) {
    std::cerr << "quiver " << command << ": " << loaded.status().ToString() << "\n";
    return false;
  }
  *token = *loaded;
  StopOnSignals();
  return true;
}

// A token made for a TCP listener started without one, as Jupyter does: 32 random bytes
// (hex) in a new 0600 file of the private runtime directory, removed again at exit.
class GeneratedToken {
 public:
  static Result<GeneratedToken> Make() {
    QUIVER_ASSIGN_OR_RETURN(std::string dir, RuntimeDirectory());
    unsigned char random[32];
    if (getrandom(random, sizeof(random), 0) != static_cast<ssize_t>(sizeof(random))) {
      return Status::FromErrno("getrandom", errno);
    }
    std::string token;
    for (unsigned char byte : random) {
      char hex[3];
      std::snprintf(hex, sizeof(hex), "%02x", byte);
      token += hex;
    }
    GeneratedToken made;
    made.path_ = dir + "/flight-" + std::to_string(getpid()) + ".token";
    ::unlink(made.path_.c_str());  // a killed server's, of a pid reused since
    UniqueFd fd(
        ::open(made.path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd.valid()) return Status::FromErrno("creating " + made.path_, errno);
    const std::string line = token + "\n";
    if (::write(fd.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      return Status::FromErrno("writing " + made.path_, errno);
    }
    made.token_ = std::move(token);
    return made;
  }
  GeneratedToken() = default;
  GeneratedToken(GeneratedToken&& other) noexcept
      : path_(std::exchange(other.path_, "")), token_(std::move(other.token_)) {}
  GeneratedToken& operator=(GeneratedToken&&) = delete;
  ~GeneratedToken() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }
  const std::string& token() const { return token_; }

 private:
  std::string path_;
  std::string token_;
};

bool IsUnixListen(const std::string& listen) {
  return listen.empty() || listen.starts_with("grpc+unix:");
}

}  // namespace

int Serve(flight::ServerOptions options, const std::string& token_file) {
  if (!Prepare("serve", token_file, &options.token)) return 2;
  std::optional<GeneratedToken> generated;
  if (options.token.empty() && !IsUnixListen(options.listen)) {
    auto made = GeneratedToken::Make();
    if (!made.ok()) {
      std::cerr << "quiver serve: cannot make a token for the TCP listener: "
                << made.status().ToString() << "\n";
      return 1;
    }
    generated.emplace(std::move(*made));
    options.token = generated->token();
  }
  auto server = flight::Server::Start(options);
  if (!server.ok()) {
    std::cerr << "quiver serve: " << server.status().ToString() << "\n";
    return 1;
  }
  // One line on stdout, flushed: scripts (and tests) read the resolved address from it, and
  // the token file from "--token-file PATH".
  std::cout << "quiver serve: listening on " << (*server)->location();
  if (generated) {
    std::cout << " (bearer token required: --token-file " << generated->path() << ")";
  } else if (!options.token.empty()) {
    std::cout << " (bearer token required)";
  }
  std::cout << std::endl;
  for (int i = 1; !g_stop.load(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    // gRPC assembles a whole message before it checks its size, so a refused 400 MiB DoPut
    // leaves 400 MiB of freed heap that malloc keeps (measured: 112 MiB resident after it,
    // 35 MiB with this, 27 MiB at start). Once a second costs nothing next to that.
    if (i % 20 == 0) ::malloc_trim(0);
  }
  std::cerr << "quiver serve: stopping\n";
  (*server)->Shutdown();
  return 0;
}

int Bridge(flight::BridgeOptions options, const std::string& token_file, bool quiet) {
  if (!Prepare("bridge", token_file, &options.token)) return 2;
  const bool live = !quiet && isatty(STDERR_FILENO);
  auto last = std::chrono::steady_clock::now();
  auto progress = [&](const flight::BridgeReport& r) {
    const auto now = std::chrono::steady_clock::now();
    if (!live || now - last < std::chrono::milliseconds(500)) return;
    last = now;
    std::fprintf(stderr, "\rquiver bridge: %llu batches, %llu rows, %.1f MB/s   ",
                 static_cast<unsigned long long>(r.batches),
                 static_cast<unsigned long long>(r.rows),
                 r.seconds > 0 ? static_cast<double>(r.bytes) / r.seconds / 1e6 : 0.0);
  };
  if (!quiet) std::cerr << "quiver bridge: " << options.remote << " -> " << options.to << "\n";
  auto report = flight::RunBridge(options, g_stop, progress);
  if (live) std::cerr << "\n";
  if (!report.ok()) {
    std::cerr << "quiver bridge: " << report.status().ToString() << "\n";
    return 1;
  }
  if (!quiet) {
    std::fprintf(stderr, "quiver bridge: %s after %llu batches, %llu rows, %.1f MB in %.2f s\n",
                 g_stop.load() ? "stopped" : "done",
                 static_cast<unsigned long long>(report->batches),
                 static_cast<unsigned long long>(report->rows),
                 static_cast<double>(report->bytes) / 1e6, report->seconds);
  }
  return 0;
}

}  // namespace quiver::cli
