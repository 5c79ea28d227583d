#include "pingpong/cleanup.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <system_error>

#include "quiver/channel.h"
#include "run_id.h"

namespace quiver::bench::pingpong {
namespace {

// Destructors do not run when a signal ends the process, so the handler itself kills the
// echo child and removes the channel files this process created (paths precomputed here,
// since only async-signal-safe calls are allowed in the handler).
volatile sig_atomic_t g_child_pid = 0;
char g_shm_paths[2][256] = {};

void OnTerminatingSignal(int sig) {
  if (g_child_pid > 0) kill(static_cast<pid_t>(g_child_pid), SIGKILL);
  for (char* path : g_shm_paths) {
    if (path[0] != '\0') unlink(path);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

std::string ShmPathOf(const std::string& name) { return quiver::Channel::NamedPath(name); }

}  // namespace

void InstallSignalCleanup() {
  signal(SIGINT, OnTerminatingSignal);
  signal(SIGTERM, OnTerminatingSignal);
}

void RememberChild(pid_t pid) { g_child_pid = pid; }

void RememberShmPaths(const std::string& a, const std::string& b) {
  std::snprintf(g_shm_paths[0], sizeof(g_shm_paths[0]), "%s", ShmPathOf(a).c_str());
  std::snprintf(g_shm_paths[1], sizeof(g_shm_paths[1]), "%s", ShmPathOf(b).c_str());
}

void ForgetShmPaths() {
  g_shm_paths[0][0] = '\0';
  g_shm_paths[1][0] = '\0';
}

// The sweep at exit looks for this prefix (of this run: see run_id.h).
std::string NamePrefix() { return "pingpong-" + RunId() + "-"; }

int SweepLeftovers() {
  const std::string prefix = NamePrefix();
  int found = 0;
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator(quiver::Channel::NamedDirectory(), ec)) {
    const std::string file = entry.path().filename().string();
    if (file.rfind(prefix, 0) != 0) continue;
    std::fprintf(stderr, "pingpong: left behind: %s (removed)\n", entry.path().c_str());
    std::filesystem::remove(entry.path(), ec);
    ++found;
  }
  return found;
}

}  // namespace quiver::bench::pingpong
