// The `quiver` subcommands that live in files of their own.
#pragma once

#include <string>

namespace quiver::cli {

struct BenchOptions {
  std::string workload = "all";
  bool quick = false;
  bool json = false;
};

/// Runs the benchmark executables that sit beside the `quiver` binary. Returns the exit code.
int Bench(const BenchOptions& options, const char* argv0);

/// Runs a pipeline file under the supervisor. Returns the process exit code.
int Run(const std::string& pipeline_file, double grace_seconds);

}  // namespace quiver::cli
