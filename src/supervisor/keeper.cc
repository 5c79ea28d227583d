#include "supervisor/keeper.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>

namespace quiver::supervisor {
namespace {

// "/proc/<pid>/stat" into `out` (at least 32 bytes); no snprintf in a forked child.
void StatPath(pid_t pid, char* out) {
  char digits[16];
  int n = 0;
  for (unsigned v = static_cast<unsigned>(pid); n == 0 || v != 0; v /= 10) {
    digits[n++] = static_cast<char>('0' + v % 10);
  }
  const char prefix[] = "/proc/";
  int at = 0;
  for (const char* p = prefix; *p != '\0'; ++p) out[at++] = *p;
  while (n > 0) out[at++] = digits[--n];
  for (const char* p = "/stat"; *p != '\0'; ++p) out[at++] = *p;
  out[at] = '\0';
}

// The parent pid in /proc/<pid>/stat ("pid (comm) S ppid ..."), or -1 if it is gone. The
// command name may hold spaces and parentheses: the fields start after the last ')'.
pid_t ParentOf(pid_t pid) {
  char path[32];
  StatPath(pid, path);
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[512];
  const ssize_t n = ::read(fd, buf, sizeof(buf));
  ::close(fd);
  if (n <= 0) return -1;
  ssize_t paren = n - 1;
  while (paren >= 0 && buf[paren] != ')') --paren;
  ssize_t i = paren + 2;                   // the state letter
  if (paren < 0 || i + 2 >= n) return -1;  // stat was longer than buf: not a name we made
  i += 2;                                  // the ppid field
  pid_t ppid = 0;
  for (; i < n && buf[i] >= '0' && buf[i] <= '9'; ++i) ppid = ppid * 10 + (buf[i] - '0');
  return ppid;
}

// SIGKILLs every process whose parent is `self`. Returns how many it found.
int KillChildren(pid_t self) {
  const int dir = ::open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return 0;
  int found = 0;
  alignas(8) char buf[4096];
  long n;
  while ((n = ::syscall(SYS_getdents64, dir, buf, sizeof(buf))) > 0) {
    for (long at = 0; at < n;) {
      // struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name.
      const auto reclen = *reinterpret_cast<const uint16_t*>(buf + at + 16);
      const char* name = buf + at + 19;
      at += reclen;
      pid_t pid = 0;
      bool numeric = *name != '\0';
      for (const char* c = name; *c != '\0'; ++c) {
        if (*c < '0' || *c > '9') numeric = false;
        if (numeric) pid = pid * 10 + (*c - '0');
      }
      if (numeric && pid != self && ParentOf(pid) == self) {
        ::kill(pid, SIGKILL);
        ++found;
      }
    }
  }
  ::close(dir);
  return found;
}

[[noreturn]] void ExitAs(int wstatus) {
  if (WIFSIGNALED(wstatus)) {
    const int sig = WTERMSIG(wstatus);
    const struct rlimit no_core {};
    ::setrlimit(RLIMIT_CORE, &no_core);  // the node may have dumped one; the keeper has none
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(sig, &dfl, nullptr);
    ::kill(::getpid(), sig);
    sigset_t just;
    sigemptyset(&just);
    sigaddset(&just, sig);
    ::sigprocmask(SIG_UNBLOCK, &just, nullptr);  // delivered here
  }
  ::_exit(WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 127);
}

}  // namespace

void KillDescendants(pid_t group) {
  if (group > 0) ::kill(-group, SIGKILL);
  const pid_t self = ::getpid();
  while (true) {
    KillChildren(self);
    // Blocks until one of them is gone (each is dying); a killed process's children are ours
    // from the moment it has exited, so the next scan finds them.
    pid_t reaped;
    do {
      reaped = ::waitpid(-1, nullptr, __WALL);
    } while (reaped < 0 && errno == EINTR);
    if (reaped < 0) return;  // ECHILD: nothing is left below us
  }
}

void KeepNode(pid_t node, pid_t supervisor) {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(SIGCHLD, &dfl, nullptr);  // blocked, so queued: an ignored SIGCHLD would reap
  sigset_t wake;
  sigemptyset(&wake);
  sigaddset(&wake, SIGCHLD);
  sigaddset(&wake, SIGHUP);
  int node_status = 0;
  bool node_done = false;
  while (true) {
    int wstatus = 0;
    pid_t reaped;
    while ((reaped = ::waitpid(-1, &wstatus, WNOHANG | __WALL)) > 0) {
      if (reaped == node) {
        node_status = wstatus;
        node_done = true;
      }  // else an orphan that was re-parented to us and has exited
    }
    if (node_done || ::getppid() != supervisor) break;
    // Both signals stay pending while blocked, so one that came after the checks above
    // returns at once.
    ::sigwaitinfo(&wake, nullptr);
  }
  KillDescendants(node);
  if (!node_done) ::_exit(0);  // the supervisor is gone: nobody waits for our status
  ExitAs(node_status);
}

}  // namespace quiver::supervisor
