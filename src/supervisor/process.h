// Child processes of the supervisor: fork+exec into their own process group, under a keeper
// that ends their whole tree with them (keeper.h), a pidfd to watch them and pipes for their
// output. Linux-only; thread-compatible.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/unique_fd.h"
#include "quiver/status.h"

namespace quiver::supervisor {

/// What to run and what it inherits.
struct SpawnRequest {
  std::string program;             ///< path to execve (FindProgram's result)
  std::vector<std::string> argv;   ///< argv[0] first
  std::vector<std::string> env;    ///< the complete environment, "NAME=value" each
  std::filesystem::path cwd;       ///< empty: the caller's
  std::vector<int> inherited_fds;  ///< stay open in the child under the same numbers (>= 3)
  /// If >= 3 (both): become the child's stdin and stdout (a control connection in stdio mode,
  /// two pipes), instead of /dev/null and a pipe; not inherited under their own numbers.
  int stdin_fd = -1;
  int stdout_fd = -1;
};

/// A running (or exited but not yet reaped) node and its keeper (see keeper.h). Neither pid
/// can be reused before Reap(keeper).
struct ChildProcess {
  pid_t pid = -1;     ///< the node's; also its process group id, the one to signal
  pid_t keeper = -1;  ///< the process to reap: it exits as the node did, once the node and
                      ///< everything it started are gone
  UniqueFd pidfd;     ///< the keeper's: readable once it has exited
  /// False if the kernel refused PR_SET_CHILD_SUBREAPER: then a descendant that leaves the
  /// node's process group (setsid, setpgid) and whose parent exits can outlive the node.
  bool contains_descendants = true;
  UniqueFd stdout_r;  ///< read ends of its stdout and stderr pipes, non-blocking; no
  UniqueFd stderr_r;  ///< stdout pipe when the request had a stdout_fd
};

/// How a child ended.
struct ExitStatus {
  bool signaled = false;
  int code = 0;  ///< the exit code, or the signal number if `signaled`
  bool success() const { return !signaled && code == 0; }
  /// "exit code 1" or "killed by signal 9 (SIGKILL)".
  std::string ToString() const;
};

/// Resolves `command` as execvp would: a name with a '/' is a path (relative to `cwd` when
/// one is given); otherwise the first executable regular file in `path_env`'s directories.
/// kNotFound naming the command and where it looked.
Result<std::string> FindProgram(std::string_view command, std::string_view path_env,
                                const std::filesystem::path& cwd);

/// Starts `request` under a keeper (see keeper.h). The node gets /dev/null as stdin and pipes
/// as stdout and stderr (or `stdin_fd` and `stdout_fd`, and a pipe as stderr), its own
/// process group (so a terminal's Ctrl-C reaches only the supervisor, which then stops the
/// nodes in order), an empty signal mask, and PR_SET_PDEATHSIG = SIGKILL against its keeper.
/// The keeper ends the node's whole tree when the node exits or when the *thread* that calls
/// Spawn ends, however it ends. Every other fd of the caller is closed at exec. Returns once
/// the node has exec'ed; a failed chdir or execve is reported here (kIoError with errno's
/// text) and the keeper is reaped.
Result<ChildProcess> Spawn(const SpawnRequest& request);

/// Collects the exit status of a keeper whose pidfd is readable (`pid` is ChildProcess::
/// keeper; the node's status, which the keeper mirrors). kIoError if it has not exited.
Result<ExitStatus> Reap(pid_t pid);

/// Sends `sig` to the process group `pgid`. A group already gone is not an error.
Status SignalGroup(pid_t pgid, int sig);

/// Returns "SIGKILL" for 9, "signal N" for an unknown number.
std::string SignalName(int sig);

}  // namespace quiver::supervisor
