#include "supervisor/supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "common/printable.h"
#include "quiver/arrow.h"
#include "quiver/control.h"
#include "supervisor/epoll.h"
#include "supervisor/fd_passing.h"
#include "supervisor/output_relay.h"
#include "supervisor/process.h"
#include "supervisor/signal_fd.h"

extern char** environ;

namespace quiver::supervisor {
namespace {

using Clock = std::chrono::steady_clock;

// An epoll tag is a kind in the top byte and an index (node or client id) below it.
enum class Kind : uint64_t { kPidfd = 1, kStdout, kStderr, kSignal, kListen, kClient };
uint64_t MakeTag(Kind kind, uint64_t index) { return (static_cast<uint64_t>(kind) << 56) | index; }
Kind KindOf(uint64_t tag) { return static_cast<Kind>(tag >> 56); }
uint64_t IndexOf(uint64_t tag) { return tag & ((uint64_t{1} << 56) - 1); }

// One read per readiness event keeps a chatty node from starving the others; after a node
// exits, its pipes are drained up to this much (a grandchild may keep writing forever).
constexpr size_t kReadChunk = 64 << 10;
constexpr size_t kMaxDrainAfterExit = 4 << 20;
// While output waits for a slow reader, the loop comes back this often to write more.
constexpr int kOutputRetryMs = 20;
// After the last node, queued output gets this long to go out before it is dropped.
constexpr std::chrono::seconds kFinalOutputWait{1};
// Late joiners: how many may be connected at once, the longest request line, how long a
// connection may stay idle (a request is answered at once, so only a stuck or hostile peer
// idles).
constexpr size_t kMaxClients = 64;
constexpr size_t kMaxRequest = 1024;
constexpr auto kClientIdle = std::chrono::seconds(5);

struct CreatedChannel {
  std::string name;
  Channel channel;
  UniqueFd fd;  // >= 3, close-on-exec: what the nodes inherit and late joiners receive
};

struct RunningNode {
  RunningNode(const NodeSpec& s, const RunOptions& options, OutputSink* out_sink,
              OutputSink* err_sink)
      : spec(&s), out(s.name, out_sink, 0), err(s.name, err_sink, options.stderr_tail_lines) {
    outcome.name = s.name;
  }
  const NodeSpec* spec;
  SpawnRequest request;
  NodeOutcome outcome;
  ChildProcess child;
  bool alive = false;  // started and not yet reaped: its pid and process group are still ours
  OutputRelay out;
  OutputRelay err;
  // Its ends of its control connections (in request.inherited_fds or stdin_fd/stdout_fd); the
  // supervisor closes them once the node is spawned, so that only the node holds them.
  std::vector<UniqueFd> control_ends;
};

struct LateJoiner {
  UniqueFd fd;
  std::string buffer;
  std::chrono::steady_clock::time_point last_active;
};

// An entry of the supervisor's own environment that names one of its fds or connections,
// maybe those of a supervisor above it: a node gets its own values, or none.
bool IsReserved(std::string_view entry) {
  return IsSupervisorVariable(entry.substr(0, entry.find('=')));
}

// Above stderr, so that a supervisor started with fd 0-2 closed cannot hand a node an fd under
// a number the node's stdio replaces. Close-on-exec either way.
Result<UniqueFd> AboveStdio(UniqueFd fd) {
  if (fd.get() > STDERR_FILENO) return fd;
  UniqueFd moved(::fcntl(fd.get(), F_DUPFD_CLOEXEC, STDERR_FILENO + 1));
  if (!moved.valid()) return Status::FromErrno("dup control pipe", errno);
  return moved;
}

std::string DefaultSocketAddress() {
  std::random_device random;
  char suffix[17];
  std::snprintf(suffix, sizeof(suffix), "%08x%08x", random(), random());
  return "@quiver-" + std::to_string(::geteuid()) + "-" + std::to_string(::getpid()) + "-" + suffix;
}

class Supervisor {
 public:
  Supervisor(const Pipeline& pipeline, const RunOptions& options)
      : pipeline_(pipeline),
        options_(options),
        out_sink_(options.stdout_fd),
        err_sink_(options.stderr_fd) {}
  ~Supervisor() {
    if (!socket_path_.empty()) ::unlink(socket_path_.c_str());
  }

  Result<RunReport> Run() {
    QUIVER_RETURN_IF_ERROR(Prepare());
    StartNodes();
    QUIVER_RETURN_IF_ERROR(Loop());
    return MakeReport();
  }

 private:
  enum class Phase { kRunning, kStopping };

  // Everything that can fail before a process exists; a failure here starts nothing.
  Status Prepare() {
    nodes_.reserve(pipeline_.nodes.size());
    for (const NodeSpec& spec : pipeline_.nodes) {
      nodes_.emplace_back(spec, options_, &out_sink_, &err_sink_);
    }

    socket_address_ =
        options_.socket_address.empty() ? DefaultSocketAddress() : options_.socket_address;
    for (RunningNode& node : nodes_) QUIVER_RETURN_IF_ERROR(BuildRequest(node));

    for (const ChannelSpec& spec : pipeline_.channels) {
      ChannelOptions options{.capacity = spec.capacity,
                             .max_samples = spec.max_samples,
                             .max_subscribers = spec.max_subscribers,
                             .overflow = spec.overflow,
                             .backing = Backing::kMemfd,
                             .stall_timeout = spec.stall_timeout};
      Result<Channel> channel = options_.create_channel ? options_.create_channel(spec, options)
                                                        : CreateChannel(spec, options);
      if (!channel.ok()) {
        return channel.status().Wrap(channel.status().code(),
                                     "cannot create channel '" + spec.name + "'");
      }
      // Above stderr, so a supervisor started with fd 0-2 closed cannot hand a node a channel
      // under a number the node's stdio replaces.
      UniqueFd fd(::fcntl(channel->fd(), F_DUPFD_CLOEXEC, 3));
      if (!fd.valid()) return Status::FromErrno("dup channel fd", errno);
      if (spec.history > 0 || spec.history_age.count() > 0) {
        auto retainer =
            Retainer::Start(*channel, {.samples = spec.history, .max_age = spec.history_age});
        if (!retainer.ok()) {
          return retainer.status().Wrap(retainer.status().code(),
                                        "cannot keep the history of channel '" + spec.name + "'");
        }
        retainers_.push_back(std::move(*retainer));
      }
      channels_.push_back({spec.name, std::move(channel).value(), std::move(fd)});
    }
    for (RunningNode& node : nodes_) AddChannelEnv(node);
    QUIVER_RETURN_IF_ERROR(ConnectControls());

    QUIVER_ASSIGN_OR_RETURN(epoll_, Epoll::Create());
    if (socket_address_.front() != '@') {
      // A socket file left by a supervisor that was killed: remove it (only a socket).
      struct stat st {};
      if (::lstat(socket_address_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
        ::unlink(socket_address_.c_str());
      }
    }
    QUIVER_ASSIGN_OR_RETURN(listener_, ListenUnix(socket_address_));
    if (socket_address_.front() != '@') socket_path_ = socket_address_;
    QUIVER_RETURN_IF_ERROR(epoll_->Add(listener_.get(), EPOLLIN, MakeTag(Kind::kListen, 0)));
    // SIGPIPE too: a relay writing to a closed stdout gets EPIPE instead of killing us (and
    // with us, through PR_SET_PDEATHSIG, every node).
    QUIVER_ASSIGN_OR_RETURN(SignalFd signals, SignalFd::Create({SIGINT, SIGTERM, SIGHUP, SIGPIPE}));
    signals_.emplace(std::move(signals));
    return epoll_->Add(signals_->fd(), EPOLLIN, MakeTag(Kind::kSignal, 0));
  }

  Status BuildRequest(RunningNode& node) {
    const NodeSpec& spec = *node.spec;
    std::vector<std::string>& env = node.request.env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      if (!IsReserved(*e)) env.emplace_back(*e);
    }
    for (const auto& [name, value] : spec.env) {
      const std::string prefix = name + "=";
      std::erase_if(env, [&](const std::string& e) { return e.starts_with(prefix); });
      env.push_back(prefix + value);
    }
    env.push_back(std::string(kNodeEnv) + "=" + spec.name);
    env.push_back(std::string(kSocketEnv) + "=" + socket_address_);

    std::string path;
    for (const std::string& e : env) {
      if (e.starts_with("PATH=")) path = e.substr(5);
    }
    auto program = FindProgram(spec.command, path, spec.cwd);
    if (!program.ok()) {
      return program.status().Wrap(program.status().code(),
                                   pipeline_.source + ":" + std::to_string(spec.line) + ": node '" +
                                       spec.name + "' cannot start");
    }
    node.request.program = std::move(program).value();
    node.request.argv.push_back(spec.command);
    node.request.argv.insert(node.request.argv.end(), spec.args.begin(), spec.args.end());
    node.request.cwd = spec.cwd;
    return Status::OK();
  }

  // QUIVER_CHANNELS lists exactly the node's own channels, and only those fds stay open.
  void AddChannelEnv(RunningNode& node) {
    std::string list;
    auto add = [&](const std::string& name) {
      for (const CreatedChannel& c : channels_) {
        if (c.name != name) continue;
        list += (list.empty() ? "" : ",") + name + "=" + std::to_string(c.fd.get());
        node.request.inherited_fds.push_back(c.fd.get());
      }
    };
    for (const std::string& name : node.spec->publishes) add(name);
    for (const std::string& name : node.spec->subscribes) add(name);
    node.request.env.push_back(std::string(kChannelsEnv) + "=" + list);
    // For each channel it publishes, how many of the pipeline's nodes subscribe to it.
    std::string counts;
    for (const std::string& name : node.spec->publishes) {
      const auto readers = std::ranges::count_if(pipeline_.nodes, [&](const NodeSpec& other) {
        return std::ranges::find(other.subscribes, name) != other.subscribes.end();
      });
      counts += (counts.empty() ? "" : ",") + name + "=" + std::to_string(readers);
    }
    node.request.env.push_back(std::string(kPipelineSubscribersEnv) + "=" + counts);
  }

  // Two pipes per (core, worker) pair, one each way (a round trip over pipes costs a fraction
  // of one over a Unix socket), all made before any node starts, so that whichever of the two
  // starts first can write at once. The worker gets the end it reads and the end it writes
  // (QUIVER_CONTROL=R:W, or as its stdin and stdout: QUIVER_CONTROL=stdio), the core the
  // other two (QUIVER_CONTROL_WORKERS=name=R:W,... in `controls` order). Nobody else inherits
  // any, and the supervisor drops its copies after the spawn, so a worker that exits or dies
  // closes its write end and its core reads EOF (and a core that ends does the same to its
  // workers).
  Status ConnectControls() {
    std::set<const RunningNode*> controlled;
    for (RunningNode& core : nodes_) {
      const NodeSpec& spec = *core.spec;
      if (spec.controls.empty()) continue;
      std::vector<control::WorkerFd> workers;
      for (const std::string& name : spec.controls) {
        auto worker = std::find_if(nodes_.begin(), nodes_.end(),
                                   [&](const RunningNode& n) { return n.spec->name == name; });
        // LoadPipeline refuses these; a Pipeline built in code may still have them.
        if (worker == nodes_.end() || &*worker == &core) {
          return Status::InvalidArgument(
              "node '" + spec.name + "' controls " +
              (worker == nodes_.end() ? "unknown node '" + name + "'" : std::string("itself")));
        }
        if (!controlled.insert(&*worker).second) {
          return Status::InvalidArgument("node '" + name + "' is controlled by two nodes");
        }
        int to_worker[2], to_core[2];
        if (::pipe2(to_worker, O_CLOEXEC) != 0) {
          return Status::FromErrno("pipe for node '" + name + "'", errno);
        }
        UniqueFd worker_in_raw(to_worker[0]), core_out_raw(to_worker[1]);
        if (::pipe2(to_core, O_CLOEXEC) != 0) {
          return Status::FromErrno("pipe for node '" + name + "'", errno);
        }
        UniqueFd core_in_raw(to_core[0]), worker_out_raw(to_core[1]);
        QUIVER_ASSIGN_OR_RETURN(UniqueFd core_in, AboveStdio(std::move(core_in_raw)));
        QUIVER_ASSIGN_OR_RETURN(UniqueFd core_out, AboveStdio(std::move(core_out_raw)));
        QUIVER_ASSIGN_OR_RETURN(UniqueFd worker_in, AboveStdio(std::move(worker_in_raw)));
        QUIVER_ASSIGN_OR_RETURN(UniqueFd worker_out, AboveStdio(std::move(worker_out_raw)));

        workers.push_back({name, {core_in.get(), core_out.get()}});
        core.request.inherited_fds.push_back(core_in.get());
        core.request.inherited_fds.push_back(core_out.get());
        core.control_ends.push_back(std::move(core_in));
        core.control_ends.push_back(std::move(core_out));

        std::string value;
        if (worker->spec->control == ControlMode::kStdio) {
          worker->request.stdin_fd = worker_in.get();
          worker->request.stdout_fd = worker_out.get();
          value = "stdio";
        } else {
          worker->request.inherited_fds.push_back(worker_in.get());
          worker->request.inherited_fds.push_back(worker_out.get());
          value = control::FormatControlFds({worker_in.get(), worker_out.get()});
        }
        worker->request.env.push_back(std::string(control::kControlEnv) + "=" + value);
        worker->control_ends.push_back(std::move(worker_in));
        worker->control_ends.push_back(std::move(worker_out));
      }
      core.request.env.push_back(std::string(control::kControlWorkersEnv) + "=" +
                                 control::FormatControlWorkers(workers));
    }
    return Status::OK();
  }

  void StartNodes() {
    for (size_t i = 0; i < nodes_.size() && phase_ == Phase::kRunning; ++i) {
      RunningNode& node = nodes_[i];
      auto child = Spawn(node.request);
      node.control_ends.clear();  // the node has its own copies now (or never will)
      if (!child.ok()) {
        node.outcome.start_error = child.status().ToString();
        BeginStop(i, std::nullopt);
        break;
      }
      node.child = std::move(child).value();
      node.alive = true;
      node.outcome.started = true;
      node.outcome.pid = node.child.pid;
      if (!node.child.contains_descendants && !warned_uncontained_) {
        warned_uncontained_ = true;
        err_sink_.Push(
            "quiver run: warning: this system refused PR_SET_CHILD_SUBREAPER, so a process a "
            "node starts in a new session or process group can outlive the pipeline\n");
      }
      // The pid is the node's until we reap it, so registering after the spawn cannot miss
      // an early exit: the pidfd is readable from then on.
      Status st = epoll_->Add(node.child.pidfd.get(), EPOLLIN, MakeTag(Kind::kPidfd, i));
      // A node whose stdout is its control connection (control = "stdio") has no stdout pipe.
      if (st.ok() && node.child.stdout_r.valid()) {
        st = epoll_->Add(node.child.stdout_r.get(), EPOLLIN, MakeTag(Kind::kStdout, i));
      }
      if (st.ok()) st = epoll_->Add(node.child.stderr_r.get(), EPOLLIN, MakeTag(Kind::kStderr, i));
      if (!st.ok()) {
        // Without its pidfd in the loop we could never notice its end: stop everything.
        node.outcome.start_error = st.ToString();
        BeginStop(i, std::nullopt);
        break;
      }
      if (options_.on_node_started) options_.on_node_started(*node.spec, node.child.pid);
    }
    // The ends of nodes that never started: their peers read EOF, as from a node that died.
    for (RunningNode& node : nodes_) node.control_ends.clear();
  }

  Status Loop() {
    std::array<epoll_event, 32> events;
    while (
        std::any_of(nodes_.begin(), nodes_.end(), [](const RunningNode& n) { return n.alive; })) {
      int timeout_ms = ExpireIdleClients();
      // Output waiting for a slow reader goes out as the reader takes it; the stop path never
      // waits for it.
      out_sink_.Flush();
      err_sink_.Flush();
      if (!out_sink_.empty() || !err_sink_.empty()) {
        timeout_ms = timeout_ms < 0 ? kOutputRetryMs : std::min(timeout_ms, kOutputRetryMs);
      }
      if (phase_ == Phase::kStopping && !killed_) {
        if (!termed_ && Clock::now() >= term_at_) TermAll();
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(
            (termed_ ? deadline_ : term_at_) - Clock::now());
        if (left.count() <= 0) {
          if (termed_) KillAll();
          continue;
        }
        timeout_ms = timeout_ms < 0 ? static_cast<int>(left.count())
                                    : std::min(timeout_ms, static_cast<int>(left.count()));
      }
      QUIVER_ASSIGN_OR_RETURN(std::span<epoll_event> ready, epoll_->Wait(events, timeout_ms));
      for (const epoll_event& event : ready) {
        const uint64_t index = IndexOf(event.data.u64);
        switch (KindOf(event.data.u64)) {
          case Kind::kPidfd:
            OnExit(index);
            break;
          case Kind::kStdout:
            ReadOutput(nodes_[index], /*is_stderr=*/false, kReadChunk);
            break;
          case Kind::kStderr:
            ReadOutput(nodes_[index], /*is_stderr=*/true, kReadChunk);
            break;
          case Kind::kSignal:
            QUIVER_RETURN_IF_ERROR(OnSignal());
            break;
          case Kind::kListen:
            OnAccept();
            break;
          case Kind::kClient:
            OnClient(index);
            break;
        }
      }
    }
    // Every node is reaped. What a grandchild still writes into their pipes is not relayed.
    for (RunningNode& node : nodes_) {
      ReadOutput(node, false, kMaxDrainAfterExit);
      ReadOutput(node, true, kMaxDrainAfterExit);
      node.out.Finish();
      node.err.Finish();
    }
    // What the output has not taken by now gets one more second, then it is dropped.
    const auto flush_until = Clock::now() + kFinalOutputWait;
    out_sink_.Flush(std::chrono::ceil<std::chrono::milliseconds>(flush_until - Clock::now()));
    err_sink_.Flush(std::chrono::ceil<std::chrono::milliseconds>(flush_until - Clock::now()));
    dropped_output_lines_ = out_sink_.Abandon() + err_sink_.Abandon();
    return Status::OK();
  }

  // Reads what is there (up to `limit` bytes) without blocking; closes the pipe at EOF.
  void ReadOutput(RunningNode& node, bool is_stderr, size_t limit) {
    UniqueFd& fd = is_stderr ? node.child.stderr_r : node.child.stdout_r;
    OutputRelay& relay = is_stderr ? node.err : node.out;
    size_t total = 0;
    while (fd.valid() && total < limit) {
      const ssize_t n = ::read(fd.get(), buffer_.data(), buffer_.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;
      if (n <= 0) {
        (void)epoll_->Remove(fd.get());
        fd.Reset();
        relay.Finish();
        return;
      }
      relay.Feed(std::string_view(buffer_.data(), static_cast<size_t>(n)));
      total += static_cast<size_t>(n);
    }
  }

  void OnExit(size_t i) {
    RunningNode& node = nodes_[i];
    if (!node.alive) return;
    // Its last words are already in the pipes: relay them before judging, so the report
    // has them.
    ReadOutput(node, false, kMaxDrainAfterExit);
    ReadOutput(node, true, kMaxDrainAfterExit);
    (void)epoll_->Remove(node.child.pidfd.get());
    auto status = Reap(node.child.keeper);
    if (!status.ok()) {
      // waitid cannot fail for our own exited child; if it ever does, count it as a failure.
      node.outcome.start_error = status.status().ToString();
      node.outcome.code = 1;
    } else {
      node.outcome.signaled = status->signaled;
      node.outcome.code = status->code;
    }
    node.alive = false;
    node.child.pidfd.Reset();
    const bool failed = !status.ok() || !status->success();
    // A worker's death is its core's to handle (it reads the end of their connection and
    // can retry elsewhere, WorkerPool does): while the core runs, or if it already ended
    // well (it saw the end first), the pipeline goes on.
    const NodeSpec* core = pipeline_.CoreOf(node.spec->name);
    const bool core_handles =
        core != nullptr && std::any_of(nodes_.begin(), nodes_.end(), [&](const RunningNode& n) {
          const NodeOutcome& o = n.outcome;
          return n.spec == core &&
                 (n.alive || (o.started && !o.signaled && o.code == 0 && o.start_error.empty()));
        });
    if (failed && core_handles) {
      node.outcome.left_to_core = core->name;
      return;
    }
    if (failed && phase_ == Phase::kRunning) BeginStop(i, std::nullopt);
  }

  Status OnSignal() {
    while (true) {
      QUIVER_ASSIGN_OR_RETURN(std::optional<int> sig, signals_->Read());
      if (!sig) return Status::OK();
      if (*sig == SIGPIPE) continue;  // the relays handle EPIPE themselves
      if (phase_ == Phase::kRunning) {
        BeginStop(std::nullopt, *sig);
      } else if (*sig == SIGINT && !killed_) {
        KillAll();  // a second Ctrl-C: do not wait out the grace period
      }
    }
  }

  // Stops the pipeline once, for the first reason that comes: node `failed` or signal `sig`.
  // As a terminal's Ctrl-C would (docker compose, ROS 2 launch): SIGINT to every node's
  // process group at once, so Python's KeyboardInterrupt handlers and `finally` blocks run;
  // SIGTERM at half the grace period; SIGKILL at its end.
  void BeginStop(std::optional<size_t> failed, std::optional<int> sig) {
    if (phase_ != Phase::kRunning) return;
    phase_ = Phase::kStopping;
    failed_ = failed;
    stop_signal_ = sig;
    const Clock::time_point now = Clock::now();
    deadline_ = now + options_.grace_period;
    term_at_ = now + options_.grace_period / 2;
    for (RunningNode& node : nodes_) {
      if (!node.alive) continue;
      node.outcome.stopped = true;
      (void)SignalGroup(node.child.pid, SIGINT);
    }
  }

  void TermAll() {
    termed_ = true;
    for (RunningNode& node : nodes_) {
      if (node.alive) (void)SignalGroup(node.child.pid, SIGTERM);
    }
  }

  void KillAll() {
    killed_ = true;
    for (RunningNode& node : nodes_) {
      if (node.alive) (void)SignalGroup(node.child.pid, SIGKILL);
    }
  }

  void OnAccept() {
    while (true) {
      UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (!fd.valid()) return;  // EAGAIN, or a connection that died before we took it
      // An abstract socket has no file permissions: the peer's uid is the access check.
      auto uid = PeerUid(fd.get());
      if (!uid.ok() || *uid != ::geteuid()) {
        (void)SendWithFd(fd.get(), "error permission denied\n", -1);
        continue;
      }
      // Full: the connection idle the longest makes room, so idle peers (64 of them, say)
      // can never lock a late joiner out.
      if (clients_.size() >= kMaxClients) DropClient(LeastRecentlyActive());
      const uint64_t id = next_client_++;
      if (!epoll_->Add(fd.get(), EPOLLIN, MakeTag(Kind::kClient, id)).ok()) continue;
      LateJoiner& client = clients_[id];
      client.fd = std::move(fd);
      client.last_active = Clock::now();
    }
  }

  std::map<uint64_t, LateJoiner>::iterator LeastRecentlyActive() {
    return std::min_element(clients_.begin(), clients_.end(), [](const auto& a, const auto& b) {
      return a.second.last_active < b.second.last_active;
    });
  }

  void DropClient(std::map<uint64_t, LateJoiner>::iterator it) {
    if (it == clients_.end()) return;
    (void)epoll_->Remove(it->second.fd.get());
    clients_.erase(it);
  }

  // Closes connections idle longer than kClientIdle; returns the milliseconds until the next
  // one would expire (-1: no client).
  int ExpireIdleClients() {
    const auto now = Clock::now();
    for (auto it = clients_.begin(); it != clients_.end();) {
      auto next = std::next(it);
      if (now - it->second.last_active >= kClientIdle) DropClient(it);
      it = next;
    }
    if (clients_.empty()) return -1;
    const auto expiry = LeastRecentlyActive()->second.last_active + kClientIdle;
    return static_cast<int>(
        std::max<int64_t>(1, std::chrono::ceil<std::chrono::milliseconds>(expiry - now).count()));
  }

  void OnClient(uint64_t id) {
    auto it = clients_.find(id);
    if (it == clients_.end()) return;
    LateJoiner& client = it->second;
    client.last_active = Clock::now();
    char chunk[512];
    const ssize_t n = ::recv(client.fd.get(), chunk, sizeof(chunk), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    bool keep = n > 0;
    if (keep) client.buffer.append(chunk, static_cast<size_t>(n));
    size_t nl;
    while (keep && (nl = client.buffer.find('\n')) != std::string::npos) {
      const std::string line = client.buffer.substr(0, nl);
      client.buffer.erase(0, nl + 1);
      keep = Answer(client.fd.get(), line);
    }
    if (client.buffer.size() > kMaxRequest) keep = false;
    if (!keep) DropClient(it);
  }

  // Protocol: "channel NAME\n" → "ok\n" with the segment fd attached, or "error WHY\n";
  // "list\n" → "ok NAME,NAME,...\n" (for `quiver ls` and `quiver top`).
  bool Answer(int fd, std::string_view line) {
    if (line == "list") {
      std::string names;
      for (const CreatedChannel& c : channels_) names += (names.empty() ? "" : ",") + c.name;
      return SendWithFd(fd, "ok " + names + "\n", -1).ok();
    }
    constexpr std::string_view kRequest = "channel ";
    if (!line.starts_with(kRequest)) {
      return SendWithFd(fd, "error expected 'channel NAME'\n", -1).ok();
    }
    const std::string_view name = line.substr(kRequest.size());
    for (const CreatedChannel& c : channels_) {
      if (c.name == name) return SendWithFd(fd, "ok\n", c.fd.get()).ok();
    }
    return SendWithFd(fd, "error unknown channel '" + std::string(name) + "'\n", -1).ok();
  }

  RunReport MakeReport() {
    RunReport report;
    for (RunningNode& node : nodes_) {
      node.outcome.last_stderr.assign(node.err.tail().begin(), node.err.tail().end());
      report.nodes.push_back(node.outcome);
    }
    if (failed_) {
      const NodeOutcome& failed = report.nodes[*failed_];
      report.exit_code = 1;
      report.failed_node = failed.name;
      report.summary =
          "node '" + failed.name + "' " + (failed.started ? "failed: " : "") + failed.Describe();
    } else if (stop_signal_) {
      report.exit_code = 128 + *stop_signal_;
      report.summary = "stopped by " + SignalName(*stop_signal_);
    } else {
      report.summary = "pipeline completed";
    }
    report.dropped_output_lines = dropped_output_lines_;
    if (dropped_output_lines_ > 0) {
      report.summary += "; " + std::to_string(dropped_output_lines_) +
                        " lines of the nodes' output were dropped: the supervisor's output was "
                        "not read fast enough";
    }
    for (const NodeOutcome& n : report.nodes) {
      if (!n.left_to_core.empty()) {
        report.summary += "; worker '" + n.name + "' " + n.Describe() + ", left to its core '" +
                          n.left_to_core + "'";
      }
    }
    return report;
  }

  const Pipeline& pipeline_;
  const RunOptions& options_;
  std::string socket_address_;
  std::string socket_path_;  // a file-system socket to unlink at the end
  std::vector<CreatedChannel> channels_;
  std::vector<std::unique_ptr<Retainer>> retainers_;  // the channels' histories
  OutputSink out_sink_;  // the supervisor's stdout and stderr, shared by every node's relays
  OutputSink err_sink_;
  bool warned_uncontained_ = false;  // said once that descendants may escape
  size_t dropped_output_lines_ = 0;
  std::vector<RunningNode> nodes_;
  std::optional<Epoll> epoll_;
  std::optional<SignalFd> signals_;
  UniqueFd listener_;
  std::map<uint64_t, LateJoiner> clients_;
  uint64_t next_client_ = 0;
  Phase phase_ = Phase::kRunning;
  std::optional<size_t> failed_;
  std::optional<int> stop_signal_;
  Clock::time_point deadline_;
  bool killed_ = false;
  bool termed_ = false;  // SIGTERM sent (half the grace period after SIGINT)
  Clock::time_point term_at_;
  std::vector<char> buffer_ = std::vector<char>(kReadChunk);
};

}  // namespace

Result<Channel> CreateChannel(const ChannelSpec& spec, ChannelOptions options) {
  if (spec.schema == nullptr) return Channel::Create(spec.name, options);
  return CreateArrowChannel(spec.name, spec.schema, options, spec.evolution);
}

std::string NodeOutcome::Describe() const {
  if (!start_error.empty() && !started) return "failed to start: " + start_error;
  ExitStatus status{.signaled = signaled, .code = code};
  return status.ToString();
}

std::string RunReport::ToString() const {
  std::string text = summary + "\n";
  for (const NodeOutcome& node : nodes) {
    if (node.name != failed_node || node.last_stderr.empty()) continue;
    text += "last stderr lines of '" + node.name + "':\n";
    for (const std::string& line : node.last_stderr) text += "  | " + line + "\n";
  }
  return text;
}

Result<RunReport> RunPipeline(const Pipeline& pipeline, const RunOptions& options) {
  Supervisor supervisor(pipeline, options);
  return supervisor.Run();
}

}  // namespace quiver::supervisor
