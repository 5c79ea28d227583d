#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace quiver::cli {
namespace {

std::filesystem::path SelfDir(const char* argv0) {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) self = std::filesystem::absolute(argv0);
  return self.parent_path();
}

int RunChild(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  pid_t pid = fork();
  if (pid < 0) {
    std::perror("quiver bench: fork");
    return 1;
  }
  if (pid == 0) {
    for (const std::string& e : env) putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    std::perror(("quiver bench: " + args[0]).c_str());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

int Bench(const BenchOptions& options, const char* argv0) {
  const auto dir = SelfDir(argv0);
  struct Workload {
    const char* name;
    const char* binary;
    const char* what;
  };
  const Workload workloads[] = {
      {"pingpong", "pingpong_benchmark", "W3 one-way latency, Quiver vs futex, UDS, pipe"},
      {"msgpack", "msgpack_records_benchmark", "W4 msgspec ingest: msgpack records to Arrow"},
  };
  int failures = 0, ran = 0;
  for (const Workload& w : workloads) {
    if (options.workload != "all" && options.workload != w.name) continue;
    const auto binary = dir / w.binary;
    if (!std::filesystem::exists(binary)) {
      std::cerr << "quiver bench: " << binary << " is missing; build the benchmarks with "
                << "`make bench` (Release) first\n";
      ++failures;
      continue;
    }
    if (!options.json) std::cerr << "== " << w.name << ": " << w.what << "\n";
    std::vector<std::string> args = {binary.string()};
    std::vector<std::string> env;
    if (options.quick) {
      env.push_back("QUIVER_BENCH_ROUNDS=2000");
      args.push_back("--benchmark_min_time=0.05s");
    }
    if (options.json) args.push_back("--benchmark_format=json");
    ++ran;
    if (RunChild(args, env) != 0) ++failures;
  }
  if (ran == 0 && failures == 0) std::cerr << "quiver bench: no workload matched\n";
  return failures == 0 ? 0 : 1;
}

}  // namespace quiver::cli
