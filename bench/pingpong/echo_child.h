// The echo child of a case: a forked process that sends every message it receives straight
// back, and the parent's handle on it. Used by the parent process only.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "pingpong/endpoint.h"
#include "pingpong/transport.h"

namespace quiver::bench::pingpong {

/// A forked child. Always reaped: killed first if it has not exited by then. While it
/// lives, a SIGINT or SIGTERM of this process kills it too.
class ChildProcess {
 public:
  explicit ChildProcess(pid_t pid);
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  // Returns false once the child has exited (and is reaped).
  bool Alive();

  // Waits up to `limit` for a clean exit; kills the child after that. Returns a description
  // of an unclean end, or "" if it exited with status 0.
  std::string Finish(std::chrono::milliseconds limit);

 private:
  // Returns true once the child is reaped.
  bool Reap(int flags);

  pid_t pid_;
  int status_ = 0;
  bool reaped_ = false;
};

/// A child echoing through `transport`, and the parent's endpoint facing it.
struct Session {
  std::unique_ptr<Transport> transport;
  std::unique_ptr<ChildProcess> child;
  std::unique_ptr<Endpoint> endpoint;

  // Stops the child: the stop message, then a bounded wait. Returns "" if all went well.
  std::string Stop();
};

// Forks the echo child, pinned to `child_cpu` (none if negative), and connects both sides.
// On failure returns nullopt with `error` set, having killed and reaped whatever it started.
std::optional<Session> StartSession(std::unique_ptr<Transport> transport, int child_cpu,
                                    std::string* error);

}  // namespace quiver::bench::pingpong
