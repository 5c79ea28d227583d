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

}  // namespace quiver::cli
