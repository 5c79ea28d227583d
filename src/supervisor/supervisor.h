// The pipeline supervisor: creates a pipeline's channels, runs its nodes, relays their output,
// and stops all of them as soon as one fails. RunPipeline blocks the calling thread until every
// node is gone; one call at a time per thread. The client side of its late-joiner socket is
// supervisor/client.h.
//
//   auto pipeline = quiver::supervisor::LoadPipeline("pipeline.toml");
//   auto report = quiver::supervisor::RunPipeline(*pipeline, {});
//   if (report->exit_code != 0) std::cerr << report->ToString();
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/unique_fd.h"
#include "quiver/channel.h"
#include "quiver/status.h"
#include "supervisor/pipeline.h"

namespace quiver::supervisor {

/// Environment variables every node gets. A node with control connections also gets
/// control::kControlEnv (a worker: "<fd>" or "stdio") and control::kControlWorkersEnv (a core:
/// "name=fd,name=fd"), from quiver/control.h.
inline constexpr char kChannelsEnv[] = "QUIVER_CHANNELS";  ///< "name=fd,name=fd" (its channels)
inline constexpr char kNodeEnv[] = "QUIVER_NODE";          ///< the node's name
inline constexpr char kSocketEnv[] = "QUIVER_SUPERVISOR_SOCKET";  ///< late-joiner socket

/// Makes one channel. `options` already carries the spec's sizes, overflow and
/// Backing::kMemfd.
using ChannelFactory = std::function<Result<Channel>(const ChannelSpec&, ChannelOptions)>;

/// The channel a spec describes: an Arrow channel with the spec's schema (stored as type
/// version 1), or an untyped one for a spec without a schema. What RunPipeline uses unless
/// RunOptions::create_channel says otherwise.
Result<Channel> CreateChannel(const ChannelSpec& spec, ChannelOptions options);

struct RunOptions {
  /// How long stopped nodes get: SIGINT at once, SIGTERM after half of it, SIGKILL at its
  /// end.
  std::chrono::milliseconds grace_period{2000};
  /// Where the nodes' prefixed stdout and stderr lines go (not owned; < 0 discards).
  int stdout_fd = 1;
  int stderr_fd = 2;
  /// Lines of each node's stderr kept for the failure report.
  size_t stderr_tail_lines = 20;
  /// Late-joiner socket address: "@name" (abstract, the default) or a path. Empty: a fresh
  /// "@quiver-<uid>-<pid>-<random>".
  std::string socket_address;
  /// Makes the channels; empty: CreateChannel.
  ChannelFactory create_channel;
  /// Called in the supervisor after each node has started (e.g. to log its pid).
  std::function<void(const NodeSpec&, pid_t)> on_node_started;
};

/// How one node ended.
struct NodeOutcome {
  std::string name;
  pid_t pid = -1;  ///< -1 if it never started
  bool started = false;
  bool signaled = false;    ///< killed by a signal (then `code` is the signal)
  int code = 0;             ///< exit code or signal number
  bool stopped = false;     ///< it was still running when the supervisor stopped the pipeline
  std::string start_error;  ///< why it could not start, if it could not
  /// A worker that failed while its core ran: the core's to handle (it reads the end of
  /// their control connection), so the pipeline went on. The core's name.
  std::string left_to_core;
  std::vector<std::string> last_stderr;
  /// "exit code 0", "killed by signal 15 (SIGTERM)", "failed to start: ...".
  std::string Describe() const;
};

struct RunReport {
  /// 0: every node exited 0. 1: a node failed (or could not start). 128+N: the supervisor
  /// received signal N (SIGINT 130, SIGTERM 143, SIGHUP 129) and stopped the pipeline.
  int exit_code = 0;
  /// One line: "pipeline completed", "node 'x' failed: exit code 1", "stopped by SIGINT".
  std::string summary;
  /// The node whose failure stopped the pipeline (the first one); empty otherwise.
  std::string failed_node;
  std::vector<NodeOutcome> nodes;  ///< in pipeline order
  /// Lines of the nodes' output dropped because the supervisor's own output was not read
  /// fast enough (at most 4 MiB wait per output; the stop never waits for a reader).
  size_t dropped_output_lines = 0;

  /// The summary, then the failed node's last stderr lines, indented.
  std::string ToString() const;
};

/// Runs `pipeline` to the end. In order: resolves every command (nothing starts if one is
/// missing); creates every channel as a memfd; listens on the late-joiner socket; blocks
/// SIGINT, SIGTERM, SIGHUP and SIGPIPE in the calling thread (read through a signalfd); spawns
/// the nodes in file order, each in its own process group with PR_SET_PDEATHSIG = SIGKILL and
/// exactly its own channels' fds (QUIVER_CHANNELS) and control connections; then waits on one
/// epoll for pidfds, output pipes, signals and late joiners. A node that exits non-zero or by a
/// signal, or cannot start, stops the pipeline: SIGINT to every remaining node's process
/// group (as Ctrl-C in a terminal: Python runs its KeyboardInterrupt handlers), SIGTERM after
/// half the grace period, SIGKILL at its end; a second SIGINT to the supervisor kills at once.
/// Returns after every node has been reaped.
///
/// Control connections (NodeSpec::controls): two pipes per (core, worker), one each way, made
/// before any node starts. The worker inherits the end it reads and the end it writes as
/// QUIVER_CONTROL=R:W, or, for ControlMode::kStdio, as its stdin and stdout
/// (QUIVER_CONTROL=stdio; its stdout is then not relayed); the core inherits the other two as
/// QUIVER_CONTROL_WORKERS=name=R:W,... in `controls` order (control::FormatControlWorkers). No
/// other process gets any end and the supervisor keeps no copy, so when a worker exits or dies
/// (nodes are never restarted) its core reads EOF on that connection, and the workers of a
/// core that ends read EOF on theirs. A worker that fails while its core runs is the core's
/// to handle: the pipeline goes on (RunReport names it, NodeOutcome::left_to_core).
///
/// The nodes die with the calling *thread* (PR_SET_PDEATHSIG), so call it from a thread that
/// outlives the run, normally the main thread. Processes a node starts in a new process
/// group or session of its own are that node's business.
///
/// Errors (returned before anything started): a command not found, a channel or control
/// connection that cannot be made (or a `controls` that LoadPipeline would have refused), the
/// socket or signalfd failing. Everything after that is in the RunReport.
Result<RunReport> RunPipeline(const Pipeline& pipeline, const RunOptions& options = {});

}  // namespace quiver::supervisor
