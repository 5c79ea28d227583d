// `quiver bench`: runs the benchmark suite (bench/suite.py, see docs/benchmarks.md) with the
// C++ peers of the build tree this binary belongs to. The suite is Python (its producers are
// Python processes, its plots matplotlib); this command finds it and an interpreter, and
// replaces itself with it, so progress, output and exit status are the suite's own.
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace quiver::cli {
namespace {

namespace fs = std::filesystem;

fs::path SelfDir(const char* argv0) {
  std::error_code ec;
  auto self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) self = fs::absolute(argv0);
  return self.parent_path();
}

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

// bench/suite.py: $QUIVER_BENCH_SUITE, else beside the build tree (build-release/quiver ->
// ../bench/suite.py), else the source tree this binary was built from.
fs::path FindSuite(const fs::path& self_dir) {
  if (const std::string env = Env("QUIVER_BENCH_SUITE"); !env.empty()) {
    return fs::exists(env) ? fs::path(env) : fs::path();
  }
  for (fs::path dir = self_dir; !dir.empty(); dir = dir.parent_path()) {
    if (fs::exists(dir / "bench" / "suite.py")) return dir / "bench" / "suite.py";
    if (dir == dir.parent_path()) break;
  }
#ifdef QUIVER_SOURCE_DIR
  if (fs::exists(fs::path(QUIVER_SOURCE_DIR) / "bench" / "suite.py")) {
    return fs::path(QUIVER_SOURCE_DIR) / "bench" / "suite.py";
  }
#endif
  return {};
}

// $QUIVER_PYTHON, else the repository's .venv (where `make deps` puts pyarrow and the peers),
// else python3 on PATH.
std::string FindPython(const fs::path& suite) {
  if (std::string env = Env("QUIVER_PYTHON"); !env.empty()) return env;
  const fs::path venv = suite.parent_path().parent_path() / ".venv" / "bin" / "python";
  if (access(venv.c_str(), X_OK) == 0) return venv.string();
  return "python3";
}

}  // namespace

int Bench(const BenchOptions& options, const char* argv0) {
  const fs::path self_dir = SelfDir(argv0);
  const fs::path suite = FindSuite(self_dir);
  if (suite.empty()) {
    std::cerr << "quiver bench: cannot find the benchmark suite (bench/suite.py of the Quiver "
                 "source tree); set QUIVER_BENCH_SUITE=/path/to/quiver/bench/suite.py\n";
    return 2;
  }
  const std::string python = FindPython(suite);
  const fs::path build = options.build.empty() ? self_dir : fs::path(options.build);
  std::vector<std::string> args = {python,           suite.string(), "--workload",
                                   options.workload, "--build",      build.string()};
  if (options.quick) args.emplace_back("--quick");
  if (options.json) args.emplace_back("--json");
  if (options.list) args.emplace_back("--list");
  if (!options.results.empty()) args.insert(args.end(), {"--results", options.results});
  setenv("QUIVER_BENCH_PROG", "quiver bench", 1);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  execvp(argv[0], argv.data());
  std::cerr << "quiver bench: cannot run " << python << ": " << std::strerror(errno)
            << " (set QUIVER_PYTHON to a Python with pyarrow, or run `make deps`)\n";
  return 127;
}

}  // namespace quiver::cli
