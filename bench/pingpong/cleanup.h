// What this process leaves behind if it dies: the echo child and the channel files of the
// running case. Remembered here for the SIGINT/SIGTERM handler; single-threaded use only.
#pragma once

#include <sys/types.h>

#include <string>

namespace quiver::bench::pingpong {

// Installs the SIGINT and SIGTERM handler that kills the remembered child, removes the
// remembered channel files, then dies of the signal.
void InstallSignalCleanup();

// The child the handler kills (0: none).
void RememberChild(pid_t pid);

// The channel files (of the channels named `a` and `b`) the handler removes.
void RememberShmPaths(const std::string& a, const std::string& b);
void ForgetShmPaths();

// Returns the prefix of every channel name this process creates ("pingpong-<pid>-").
std::string NamePrefix();

// Channel files of this process still present: the library failed to remove them. Reports
// and removes them. Returns how many there were.
int SweepLeftovers();

}  // namespace quiver::bench::pingpong
