#include "pingpong/echo_child.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <thread>
#include <utility>

#include "pingpong/cleanup.h"
#include "pingpong/fd_io.h"
#include "pingpong/placement.h"

namespace quiver::bench::pingpong {

using std::chrono::milliseconds;

namespace {

// The child's whole life: wait for the parent's go, build its endpoint, report ready, then
// echo every message until the stop message. Returns the exit status.
int ChildMain(Transport& transport, Fd go, Fd ready, pid_t parent, int cpu) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) return 1;
  if (!PinTo(cpu)) std::fprintf(stderr, "pingpong child: cannot pin to CPU %d\n", cpu);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  char byte = 0;
  std::string error;
  if (!ReadAll(go.get(), reinterpret_cast<std::byte*>(&byte), 1, &error)) return 0;  // no go
  std::unique_ptr<Endpoint> endpoint =
      transport.ChildEndpoint([parent] { return getppid() == parent; }, &error);
  const char status = endpoint ? 'R' : 'E';
  if (!endpoint) std::fprintf(stderr, "pingpong child: %s\n", error.c_str());
  if (!WriteAll(ready.get(), reinterpret_cast<const std::byte*>(&status), 1, &error)) return 2;
  if (!endpoint) return 2;
  for (;;) {
    std::optional<uint64_t> seq = endpoint->Receive();
    if (!seq) {
      std::fprintf(stderr, "pingpong child: %s\n", endpoint->error().c_str());
      return 3;
    }
    if (*seq == kStop) return 0;
    if (!endpoint->Send(*seq)) {
      std::fprintf(stderr, "pingpong child: %s\n", endpoint->error().c_str());
      return 4;
    }
    // After the reply, off the measured path of this round trip.
    g_cpu_board->child_cpu.store(sched_getcpu(), std::memory_order_relaxed);
  }
}

}  // namespace

ChildProcess::ChildProcess(pid_t pid) : pid_(pid) { RememberChild(pid); }

ChildProcess::~ChildProcess() {
  if (!reaped_) {
    kill(pid_, SIGKILL);
    Reap(0);
  }
  RememberChild(0);
}

bool ChildProcess::Alive() { return !reaped_ && !Reap(WNOHANG); }

std::string ChildProcess::Finish(milliseconds limit) {
  const Clock::time_point deadline = Clock::now() + limit;
  while (!reaped_ && !Reap(WNOHANG) && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  if (!reaped_) {
    kill(pid_, SIGKILL);
    Reap(0);
    return "the echo child did not exit; killed it";
  }
  if (WIFEXITED(status_) && WEXITSTATUS(status_) == 0) return "";
  if (WIFSIGNALED(status_))
    return "the echo child died of signal " + std::to_string(WTERMSIG(status_));
  return "the echo child exited with status " + std::to_string(WEXITSTATUS(status_));
}

bool ChildProcess::Reap(int flags) {
  for (;;) {
    const pid_t r = waitpid(pid_, &status_, flags);
    if (r == pid_) {
      reaped_ = true;
      return true;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) reaped_ = true;  // ECHILD: nothing left to wait for
    return reaped_;
  }
}

std::string Session::Stop() {
  std::string problem;
  if (endpoint && !endpoint->Send(kStop)) problem = endpoint->error();
  std::string end = child->Finish(milliseconds(5000));
  return problem.empty() ? end : problem;
}

std::optional<Session> StartSession(std::unique_ptr<Transport> transport, int child_cpu,
                                    std::string* error) {
  if (!transport->Prepare(error)) return std::nullopt;
  int go[2], ready[2];
  if (pipe2(go, O_CLOEXEC) != 0) {
    *error = Errno("pipe2");
    return std::nullopt;
  }
  Fd go_rx(go[0]), go_tx(go[1]);
  if (pipe2(ready, O_CLOEXEC) != 0) {
    *error = Errno("pipe2");
    return std::nullopt;
  }
  Fd ready_rx(ready[0]), ready_tx(ready[1]);
  const pid_t parent = getpid();
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    *error = Errno("fork");
    return std::nullopt;
  }
  if (pid == 0) {
    go_tx.Reset();
    ready_rx.Reset();
    // _exit: the child must not run the parent's atexit handlers or flush its stdio.
    _exit(ChildMain(*transport, std::move(go_rx), std::move(ready_tx), parent, child_cpu));
  }
  Session session;
  session.child = std::make_unique<ChildProcess>(pid);
  go_rx.Reset();
  ready_tx.Reset();
  ChildProcess* child = session.child.get();
  session.endpoint = transport->ParentEndpoint([child] { return child->Alive(); }, error);
  session.transport = std::move(transport);
  if (!session.endpoint) return std::nullopt;  // closing `go` tells the child to exit
  const char go_byte = 'G';
  char ready_byte = 0;
  if (!WriteAll(go_tx.get(), reinterpret_cast<const std::byte*>(&go_byte), 1, error) ||
      !ReadAll(ready_rx.get(), reinterpret_cast<std::byte*>(&ready_byte), 1, error) ||
      ready_byte != 'R') {
    *error = "the echo child failed to start: " + session.child->Finish(milliseconds(1000));
    return std::nullopt;
  }
  return session;
}

}  // namespace quiver::bench::pingpong
