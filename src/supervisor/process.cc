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

namespace quiver::supervisor {
namespace {

// What a child that failed before its execve tells its parent through the status pipe.
struct ChildFailure {
  int stage;  // kStage*
  int err;    // errno
};
constexpr int kStageSetup = 1;
constexpr int kStageChdir = 2;
constexpr int kStageExec = 3;

int PidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

bool IsExecutableFile(const std::filesystem::path& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// Runs in the forked child: only async-signal-safe calls from here to execve, because the
// parent may have had other threads holding locks (malloc's, stdio's) at the fork.
[[noreturn]] void ChildMain(const SpawnRequest& request, pid_t parent, int status_w, int in_fd,
                            int out_fd, int err_w, char* const* argv, char* const* envp) {
  auto fail = [status_w](int stage) {
    const ChildFailure failure{stage, errno};
    [[maybe_unused]] ssize_t n = ::write(status_w, &failure, sizeof(failure));
    ::_exit(127);
  };
  // Dies with the supervisor even under kill -9. If the parent already died between fork and
  // prctl, the signal would never come: getppid() tells us, so exit instead.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(kStageSetup);
  if (::getppid() != parent) ::_exit(127);
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
    std::filesystem::path candidate = std::filesystem::path(dir) / command;
    if (candidate.is_relative() && !cwd.empty()) candidate = cwd / candidate;
    if (IsExecutableFile(candidate)) return candidate.string();
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
  const pid_t parent = ::getpid();

  const pid_t pid = ::fork();
  if (pid < 0) return Status::FromErrno("fork", errno);
  if (pid == 0) {
    ChildMain(request, parent, status_w.get(), in_fd, out_fd, err_w.get(), argv.data(),
              envp.data());
  }
  // Also from the parent, so the group exists before anyone signals it; EACCES once the child
  // has exec'ed is harmless (it did it itself).
  ::setpgid(pid, pid);
  status_w.Reset();
  out_w.Reset();
  err_w.Reset();

  ChildProcess child;
  child.pid = pid;
  // Race-free: the child is ours and unreaped, so its pid cannot name another process yet.
  child.pidfd.Reset(PidfdOpen(pid));
  const int pidfd_errno = errno;

  ChildFailure failure{};
  ssize_t n;
  do {
    n = ::read(status_r.get(), &failure, sizeof(failure));
  } while (n < 0 && errno == EINTR);
  if (n > 0 || !child.pidfd.valid()) {
    if (n <= 0) ::kill(pid, SIGKILL);
    int wstatus = 0;
    while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
    if (n <= 0) return Status::FromErrno("pidfd_open", pidfd_errno);
    switch (failure.stage) {
      case kStageChdir:
        return Status::FromErrno("chdir " + request.cwd.string(), failure.err);
      case kStageExec:
        return Status::FromErrno("execve " + request.program, failure.err);
      default:
        return Status::FromErrno("setting up the child process", failure.err);
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
