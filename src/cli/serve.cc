// `quiver serve` (the Flight gateway over this machine's channels) and `quiver bridge` (a
// remote channel subscribed into a local one). The work is in src/flight/; this is the glue:
// options, the token file, signals and progress.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>

#include "cli/commands.h"
#include "flight/gateway.h"

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
  std::string token;
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) return Status(ErrorCode::kNotFound, "token file '" + file + "' cannot be read");
    std::getline(in, token);
  } else if (const char* env = std::getenv("QUIVER_FLIGHT_TOKEN")) {
    token = env;
  } else {
    return std::string();
  }
  const auto first = token.find_first_not_of(" \t\r\n");
  const auto last = token.find_last_not_of(" \t\r\n");
  token = first == std::string::npos ? "" : token.substr(first, last - first + 1);
  if (token.empty()) {
    return Status(ErrorCode::kInvalidArgument, file.empty() ? "QUIVER_FLIGHT_TOKEN is empty"
                                                            : "token file '" + file + "' is empty");
  }
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

}  // namespace

int Serve(flight::ServerOptions options, const std::string& token_file) {
  if (!Prepare("serve", token_file, &options.token)) return 2;
  auto server = flight::Server::Start(options);
  if (!server.ok()) {
    std::cerr << "quiver serve: " << server.status().ToString() << "\n";
    return 1;
  }
  // One line on stdout, flushed: scripts (and tests) read the resolved port from it.
  std::cout << "quiver serve: listening on " << (*server)->location()
            << (options.token.empty() ? "" : " (bearer token required)") << std::endl;
  while (!g_stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
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
