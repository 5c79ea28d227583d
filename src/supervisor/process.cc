#include "supervisor/process.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <optional>

#include "supervisor/keeper.h"

namespace quiver::supervisor {
namespace {

// What the keeper and the node tell the supervisor through the status pipe, one message per
// write (atomic: smaller than PIPE_BUF). The pipe reaches end-of-file once the node has
// exec'ed and the keeper has closed its end.
struct Report {
  int stage;  // kStage*, or kNodePid / kNoSubreaper
  int value;  // errno, or the node's pid
};
constexpr int kStageSetup = 1;
constexpr int kStageChdir = 2;
constexpr int kStageExec = 3;
constexpr int kNodePid = 4;      // the keeper forked the node (its process group is made)
constexpr int kNoSubreaper = 5;  // not fatal: descendants that leave the node's group can escape

int PidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

bool IsExecutableFile(const std::filesystem::path& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

void Tell(int status_w, int stage, int value) {
  const Report report{stage, value};
  [[maybe_unused]] ssize_t n = ::write(status_w, &report, sizeof(report));
}

// The node, forked by its keeper. Runs in a forked child: only async-signal-safe calls from
// here to execve, because the supervisor may have had other threads holding locks (malloc's,
// stdio's) at the fork.
[[noreturn]] void NodeMain(const SpawnRequest& request, pid_t keeper, int status_w, int in_fd,
                           int out_fd, int err_w, char* const* argv, char* const* envp) {
  auto fail = [status_w](int stage) {
    Tell(status_w, stage, errno);
    ::_exit(127);
  };
  // Dies with its keeper, which outlives it unless killed by hand. If the keeper already died
  // between fork and prctl, the signal would never come: getppid() tells us, so exit instead.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(kStageSetup);
  if (::getppid() != keeper) ::_exit(127);
  if (::setpgid(0, 0) != 0) fail(kStageSetup);

  // The supervisor blocks the signals it reads through a signalfd; the mask is inherited
  // across execve, so unblock everything, and put back the default dispositions it might use.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGCHLD}) ::signal(sig, SIG_DFL);

  if (::dup2(in_fd, STDIN_FILENO) < 0 || ::dup2(out_fd, STDOUT_FILENO) < 0 ||
      ::dup2(err_w, STDERR_FILENO) < 0) {
    fail(kStageSetup);
  }
  // Nothing of the supervisor's (or of whoever embeds it) leaks into a node except what it
  // was given: mark everything above stderr close-on-exec, then unmark the node's channels
  // and control connections (a stdin_fd/stdout_fd lives on as fd 0 and 1 only).
  ::syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC);
  for (int fd : request.inherited_fds) {
    if (::fcntl(fd, F_SETFD, 0) != 0) fail(kStageSetup);
  }
  if (!request.cwd.empty() && ::chdir(request.cwd.c_str()) != 0) fail(kStageChdir);
  ::execve(request.program.c_str(), argv, envp);
  fail(kStageExec);
  ::_exit(127);  // unreachable: fail() exits
}

// The keeper (see keeper.h), forked by the supervisor; async-signal-safe calls only, as above.
[[noreturn]] void KeeperMain(const SpawnRequest& request, pid_t supervisor, int status_w, int in_fd,
                             int out_fd, int err_w, char* const* argv, char* const* envp) {
  // Every signal waits until the keeper asks for it: a terminal's Ctrl-C, the stop signals
  // meant for the node, and the parent-death signal. SIGHUP is catchable, unlike the node's
  // SIGKILL: the keeper must live on long enough to end the node's tree.
  sigset_t all;
  sigfillset(&all);
  ::sigprocmask(SIG_SETMASK, &all, nullptr);
  if (::prctl(PR_SET_PDEATHSIG, SIGHUP) != 0 || ::setpgid(0, 0) != 0) {
    Tell(status_w, kStageSetup, errno);
    ::_exit(127);
  }
  if (::getppid() != supervisor) ::_exit(127);
  ::prctl(PR_SET_NAME, "quiver-keeper");
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) Tell(status_w, kNoSubreaper, errno);
  const pid_t keeper = ::getpid();
  const pid_t node = ::fork();
  if (node < 0) {
    Tell(status_w, kStageSetup, errno);
    ::_exit(127);
  }
  if (node == 0) NodeMain(request, keeper, status_w, in_fd, out_fd, err_w, argv, envp);
  ::setpgid(node, node);  // as the node does: the group exists before the report
  Tell(status_w, kNodePid, node);
  // The keeper holds nothing of the node's: no channel, no control connection, no stdio.
  ::syscall(SYS_close_range, 0u, ~0u, 0u);
  KeepNode(node, supervisor);
}

std::vector<char*> CStrings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const std::string& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

}  // namespace

std::string SignalName(int sig) {
  if (const char* abbrev = ::sigabbrev_np(sig)) return "SIG" + std::string(abbrev);
  return "signal " + std::to_string(sig);
}

std::string ExitStatus::ToString() const {
  if (signaled) return "killed by signal " + std::to_string(code) + " (" + SignalName(code) + ")";
  return "exit code " + std::to_string(code);
}

Result<std::string> FindProgram(std::string_view command, std::string_view path_env,
                                const std::filesystem::path& cwd) {
  if (command.empty()) return Status::InvalidArgument("empty command");
  if (command.find('/') != std::string_view::npos) {
    const std::filesystem::path path(command);
    const std::filesystem::path where = path.is_absolute() || cwd.empty() ? path : cwd / path;
    if (!IsExecutableFile(where)) {
      return Status::NotFound(
          "command '" + std::string(command) + "' is not an executable file" +
          (path.is_absolute() || cwd.empty() ? "" : " (in " + cwd.string() + ")"));
    }
    return std::string(command);  // execve resolves it after the child's chdir
  }
  if (path_env.empty()) path_env = "/usr/local/bin:/usr/bin:/bin";
  std::string_view rest = path_env;
  while (true) {
    const size_t colon = rest.find(':');
    std::string_view dir = rest.substr(0, colon);
    if (dir.empty()) dir = ".";  // POSIX: an empty PATH entry is the current directory
    // A relative entry is relative to the node's directory, as execvp in the node would see
    // it; the result is absolute, because execve runs after the chdir to `cwd`.
    std::filesystem::path candidate = std::filesystem::path(dir) / command;
    if (candidate.is_relative() && !cwd.empty()) candidate = cwd / candidate;
    if (IsExecutableFile(candidate)) return std::filesystem::absolute(candidate).string();
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return Status::NotFound("command '" + std::string(command) + "' not found in PATH (" +
                          std::string(path_env) + ")");
}

Result<ChildProcess> Spawn(const SpawnRequest& request) {
  for (int fd : request.inherited_fds) {
    if (fd <= STDERR_FILENO) {
      return Status::InvalidArgument("cannot hand down fd " + std::to_string(fd));
    }
  }
  // Below 3 one could be replaced by another of the child's stdio before it is dup'ed.
  for (int fd : {request.stdin_fd, request.stdout_fd}) {
    if (fd >= 0 && fd <= STDERR_FILENO) {
      return Status::InvalidArgument("cannot hand down fd " + std::to_string(fd) + " as stdio");
    }
  }
  if ((request.stdin_fd >= 0) != (request.stdout_fd >= 0)) {
    return Status::InvalidArgument("a child's stdin and stdout are handed down together");
  }
  const bool own_stdio = request.stdin_fd >= 0;
  int status_pipe[2], out_pipe[2], err_pipe[2];
  if (::pipe2(status_pipe, O_CLOEXEC) != 0) return Status::FromErrno("pipe2", errno);
  UniqueFd status_r(status_pipe[0]), status_w(status_pipe[1]);
  UniqueFd out_r, out_w;
  if (!own_stdio) {
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) return Status::FromErrno("pipe2", errno);
    out_r.Reset(out_pipe[0]);
    out_w.Reset(out_pipe[1]);
  }
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return Status::FromErrno("pipe2", errno);
  UniqueFd err_r(err_pipe[0]), err_w(err_pipe[1]);
  UniqueFd null_fd;
  if (!own_stdio) {
    null_fd.Reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!null_fd.valid()) return Status::FromErrno("open /dev/null", errno);
  }
  const int in_fd = own_stdio ? request.stdin_fd : null_fd.get();
  const int out_fd = own_stdio ? request.stdout_fd : out_w.get();

  // Everything the child needs is built before fork: the child may not allocate.
  std::vector<char*> argv = CStrings(request.argv);
  std::vector<char*> envp = CStrings(request.env);
  const pid_t supervisor = ::getpid();

  const pid_t keeper = ::fork();
  if (keeper < 0) return Status::FromErrno("fork", errno);
  if (keeper == 0) {
    KeeperMain(request, supervisor, status_w.get(), in_fd, out_fd, err_w.get(), argv.data(),
               envp.data());
  }
  status_w.Reset();
  out_w.Reset();
  err_w.Reset();

  ChildProcess child;
  child.keeper = keeper;
  // Race-free: the keeper is ours and unreaped, so its pid cannot name another process yet.
  child.pidfd.Reset(PidfdOpen(keeper));
  const int pidfd_errno = errno;

  std::optional<Report> failure;
  while (true) {
    Report report{};
    const ssize_t n = ::read(status_r.get(), &report, sizeof(report));
    if (n < 0 && errno == EINTR) continue;
    if (n != static_cast<ssize_t>(sizeof(report))) break;  // end of file: the node exec'ed
    if (report.stage == kNodePid) {
      child.pid = report.value;
    } else if (report.stage == kNoSubreaper) {
      child.contains_descendants = false;
    } else {
      failure = report;
    }
  }
  if (failure || child.pid <= 0 || !child.pidfd.valid()) {
    if (!failure) ::kill(keeper, SIGKILL);
    int wstatus = 0;
    while (::waitpid(keeper, &wstatus, 0) < 0 && errno == EINTR) {
    }
    if (!child.pidfd.valid()) return Status::FromErrno("pidfd_open", pidfd_errno);
    if (!failure) return Status::IoError("the node's keeper ended before starting the node");
    switch (failure->stage) {
      case kStageChdir:
        return Status::FromErrno("chdir " + request.cwd.string(), failure->value);
      case kStageExec:
        return Status::FromErrno("execve " + request.program, failure->value);
      default:
        return Status::FromErrno("setting up the child process", failure->value);
    }
  }
  for (UniqueFd* fd : {&out_r, &err_r}) {
    if (fd->valid()) ::fcntl(fd->get(), F_SETFL, ::fcntl(fd->get(), F_GETFL) | O_NONBLOCK);
  }
  child.stdout_r = std::move(out_r);
  child.stderr_r = std::move(err_r);
  return child;
}

Result<ExitStatus> Reap(pid_t pid) {
  siginfo_t info{};
  int rc;
  do {
    rc = ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) return Status::FromErrno("waitid " + std::to_string(pid), errno);
  if (info.si_pid == 0) {
    return Status::IoError("process " + std::to_string(pid) + " has not exited");
  }
  ExitStatus status;
  status.signaled = info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED;
  status.code = info.si_status;
  return status;
}

Status SignalGroup(pid_t pgid, int sig) {
  if (::kill(-pgid, sig) != 0 && errno != ESRCH) {
    return Status::FromErrno("kill -" + std::to_string(sig) + " " + std::to_string(-pgid), errno);
  }
  return Status::OK();
}

}  // namespace quiver::supervisor
