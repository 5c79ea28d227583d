// The `quiver` subcommands that live in files of their own.
#pragma once

#include <cstdint>
#include <string>

#include "flight/bridge.h"
#include "flight/server.h"

namespace quiver::cli {

struct BenchOptions {
  std::string workload = "all";  ///< comma-separated: all, w1..w4 (or their names)
  bool quick = false;
  bool json = false;
  bool list = false;
  std::string build;    ///< the tree with the C++ peers; empty: this binary's directory
  std::string results;  ///< empty: the suite's default, bench/results/
};

/// Runs the benchmark suite (bench/suite.py) in place of this process. Returns an exit code
/// only if it could not be started.
int Bench(const BenchOptions& options, const char* argv0);

/// `quiver top`: the channel table every `interval` seconds until `q`, Ctrl-C or
/// `iterations` refreshes (0: no limit).
int Top(double interval, int iterations);

struct EchoOptions {
  std::string channel;
  uint64_t count = 0;  ///< stop after this many samples; 0: until Ctrl-C or the publisher goes
  bool json = false;   ///< one JSON object per line instead of text
  bool from_oldest = false;
};

/// `quiver echo`: prints a channel's samples as they arrive.
int Echo(const EchoOptions& options);

/// `quiver info`: one channel in detail (schemas, policy, who holds it, per-subscriber lag).
int Info(const std::string& channel, bool json);

/// Runs a pipeline file under the supervisor. Returns the process exit code.
int Run(const std::string& pipeline_file, double grace_seconds);

/// Serves this machine's channels over Arrow Flight until SIGINT/SIGTERM.
int Serve(flight::ServerOptions options, const std::string& token_file);

/// Subscribes a remote channel into a local one until the remote stream ends or a signal.
int Bridge(flight::BridgeOptions options, const std::string& token_file, bool quiet);

}  // namespace quiver::cli
