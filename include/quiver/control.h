// The command/result workflow: a core sends commands (small JSON envelopes, protocol 2.0.0)
// to workers and gets results back, large data as safe handles to samples in shared memory.
//
//   Worker side:                                  Core side:
//     Streams streams;                              auto pool = WorkerPool::FromEnvironment();
//     Handlers handlers;                            auto result = (*pool)->Call(
//     handlers.Add(kCmdStreamStart,                     MakeEnvelope("CMD_EXTRACT_EVIDENCE",
//                  streams.handler());                               {{"page", 3}}));
//     handlers.Add("CMD_EXTRACT_EVIDENCE", f);      Result<Sample> sample =
//     Worker(handlers).ServeFromEnvironment();          resolver.Resolve(*result->shm_handle);
//
// A Client is safe to use from several threads at once (calls are matched to results by
// msg_id); a Worker serves one connection from the calling thread, one command at a time, in
// order; HandleResolver, Streams and WorkerPool are thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "quiver/arrow.h"
#include "quiver/channel.h"
#include "quiver/envelope.h"
#include "quiver/sample_header.h"
#include "quiver/status.h"

namespace quiver::control {

/// Answers one command. Returns the result (any RES_* envelope; its msg_id is set to the
/// command's), or a Status, sent back as RES_ERROR_V2 with its cause chain.
using Handler = std::function<Result<Envelope>(const Envelope& command)>;

/// The commands a worker answers, by type. Copyable; not safe to change while serving.
/// CMD_AUTH and CMD_SHUTDOWN are the connection's own (answered RES_OK); a RES_* sent to a
/// worker is answered UNEXPECTED_TYPE; any other type without a handler UNKNOWN_TYPE, naming
/// the types it has.
class Handlers {
 public:
  /// Registers `handler` for commands of `type`: a CMD_* name (ValidateTypeName), either the
  /// application's own (CMD_EXTRACT_EVIDENCE) or CMD_PROCESS / CMD_STREAM_START, whose
  /// envelope shape the protocol fixes. kInvalidArgument for a malformed name, a RES_*
  /// name, CMD_AUTH or CMD_SHUTDOWN (the connection's own), or a type registered twice.
  Status Add(std::string_view type, Handler handler);
  /// The handler of `type`, or nullptr.
  const Handler* Find(std::string_view type) const;
  /// The registered types, sorted.
  std::vector<std::string> types() const;

 private:
  std::map<std::string, Handler, std::less<>> handlers_;
};

/// The environment variables `quiver run` sets for control connections. A connection is a
/// pair of pipes, written "R:W" (the fd read from, the fd written to), or a connected socket,
/// written as its one fd "N".
inline constexpr char kControlEnv[] = "QUIVER_CONTROL";  ///< a worker's: "R:W", "N" or "stdio"
inline constexpr char kControlWorkersEnv[] = "QUIVER_CONTROL_WORKERS";  ///< "name=R:W,..."

/// The fds of one end of a control connection: two pipes, or one socket (read == write).
struct ControlFds {
  int read_fd = -1;
  int write_fd = -1;
  bool operator==(const ControlFds&) const = default;
};
/// "R:W", or "N" for a socket.
std::string FormatControlFds(ControlFds fds);
/// Reads "R:W" or "N" (fds >= 0). kInvalidArgument otherwise.
Result<ControlFds> ParseControlFds(std::string_view text);

/// One worker connection of a core: the worker's node name and the core's end.
struct WorkerFd {
  std::string name;
  ControlFds fds;
  bool operator==(const WorkerFd&) const = default;
};
/// The value of QUIVER_CONTROL_WORKERS for `workers`: "name=R:W,name=R:W".
std::string FormatControlWorkers(const std::vector<WorkerFd>& workers);
/// Reads a QUIVER_CONTROL_WORKERS value. kInvalidArgument naming the entry for anything but
/// "name=R:W" (or "name=N") entries, node names as pipeline files spell them, separated by ",".
Result<std::vector<WorkerFd>> ParseControlWorkers(std::string_view text);
/// This node's workers (ParseControlWorkers of QUIVER_CONTROL_WORKERS). kNotFound, saying
/// how to get some, if it has none.
Result<std::vector<WorkerFd>> ControlWorkersFromEnvironment();

/// A command sent and not yet answered. A handle: copies share the call. Thread-safe; it
/// outlives its Client (its calls then fail kPeerGone).
class PendingCall {
 public:
  /// Waits up to `timeout` for the result: the RES_* envelope, or its RES_ERROR_V2 as the
  /// Status chain. kTimeout if it has not come (the call stays pending: wait again);
  /// kPeerGone, naming the worker, if the connection ended first. The waiting caller reads
  /// the connection itself while no other caller does (results of other calls are handed
  /// to them), so a result reaches it with a single wake-up.
  Result<Envelope> Wait(std::chrono::milliseconds timeout) const;
  /// True once the result (or the end of the connection) is in.
  bool done() const;
  const std::string& msg_id() const;
  /// The name of the worker it went to.
  const std::string& worker() const;

  struct State;  // control/client.cc
  explicit PendingCall(std::shared_ptr<State> state) : state_(std::move(state)) {}

 private:
  std::shared_ptr<State> state_;
};

/// The commanding end of one control connection. Sends commands, several at a time, and
/// matches each result to its command by msg_id (a reader thread of its own).
class Client {
 public:
  /// Over a connected stream socket (a socketpair end, an accepted connection), which the
  /// client owns from now on. `worker` names the peer in errors.
  static Result<std::unique_ptr<Client>> FromFd(int fd, std::string worker = "worker");
  /// Over a pair of pipes (read from `fds.read_fd`, write to `fds.write_fd`), or a socket
  /// (both the same), owned from now on.
  static Result<std::unique_ptr<Client>> FromFds(ControlFds fds, std::string worker = "worker");
  /// Connects to a worker's Unix socket at `path`; `worker` names it in errors (empty: the
  /// path).
  static Result<std::unique_ptr<Client>> ConnectUnix(std::string_view path,
                                                     std::string worker = {});
  /// Connects to 127.0.0.1:`port` and authenticates with `token` (CMD_AUTH) first.
  static Result<std::unique_ptr<Client>> ConnectTcp(uint16_t port, std::string_view token);
  /// The connection `quiver run` made to worker `name` of this node (the pipeline file's
  /// `controls = [...]`): its fds in QUIVER_CONTROL_WORKERS. kNotFound naming the workers
  /// this node has if `name` is not one of them.
  static Result<std::unique_ptr<Client>> ForWorker(std::string_view name);

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  /// Closes the connection; calls still pending fail with kPeerGone.
  ~Client();

  /// Sends `command` (a CMD_* envelope; a fresh msg_id if it has none). kPeerGone once the
  /// connection ended.
  Result<PendingCall> Send(Envelope command);
  /// Send, then Wait(timeout).
  Result<Envelope> Call(Envelope command,
                        std::chrono::milliseconds timeout = std::chrono::seconds(30));
  /// Commands sent and not answered yet.
  size_t in_flight() const;
  /// False once the connection ended (the worker exited, say).
  bool connected() const;
  const std::string& worker() const;

  struct Impl;  // control/client.cc

 private:
  explicit Client(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

struct WorkerOptions {
  /// Where protocol errors are reported, one line each; empty: stderr.
  std::function<void(std::string_view line)> log;
  /// The channels a command's shm_handle may name (others are answered PERMISSION_DENIED
  /// before a handler sees them). Empty: any channel of this user, as the connection comes
  /// from a process of this user (the pipes `quiver run` made, or a Unix socket).
  std::function<bool(std::string_view channel)> exposes;
  /// How long the worker polls for the next command without sleeping after it answered one
  /// (as a subscriber spins before its futex sleep): a command that comes within it skips a
  /// wake-up. 0: it sleeps at once (an idle worker then uses no CPU between commands).
  std::chrono::nanoseconds spin = std::chrono::microseconds(50);
};

/// How long a Client polls for a result without sleeping before it blocks.
inline constexpr std::chrono::microseconds kClientSpin{50};

/// The commanded end: answers the commands of one connection with its handlers, in order,
/// until the client sends CMD_SHUTDOWN or closes the connection. A command with no handler
/// is answered RES_ERROR_V2 UNKNOWN_TYPE naming the types it has; a malformed line is
/// answered with its error, and the connection goes on.
class Worker {
 public:
  explicit Worker(Handlers handlers, WorkerOptions options = {});

  /// Serves the connected socket `fd` (owned from now on) on the calling thread.
  Status ServeFd(int fd);
  /// Serves a pair of pipes (or a socket: both the same), owned from now on.
  Status ServeFds(ControlFds fds);
  /// Serves stdin/stdout (the protocol's stdio mode): lines in on fd 0, out on fd 1.
  Status ServeStdio();
  /// Serves the connection `quiver run` gave this node: QUIVER_CONTROL=R:W (its pipes), or
  /// QUIVER_CONTROL=stdio for a node of `control = "stdio"` (stdin and stdout are the
  /// pipes). kNotFound if it has none.
  Status ServeFromEnvironment();

 private:
  Handlers handlers_;
  WorkerOptions options_;
};

/// The channels a worker publishes results on, one publisher each, made by CMD_STREAM_START:
///   {"stream": "evidence-1",        the channel's name (Channel::Create rules)
///    "capacity": 67108864,          bytes of sample data (default 64 MiB)
///    "max_samples": 256,            samples in flight (default 256)
///    "overflow": "block",           or "drop-oldest" (default block)
///    "schema": [{"name": "id", "type": "int64"}, ...]}   optional: an Arrow channel of this
///                                   schema (the schema-file format, schema_file.h)
/// answered RES_OK {"stream", "segment_id", "generation", "capacity", "overflow"}: the core
/// opens segment_id and Watches it (HandleResolver) before it sends work; the handles of the
/// results carry that generation. Starting a stream that exists is kAlreadyExists. The
/// channels go away when the last process closes them.
class Streams {
 public:
  Streams();
  ~Streams();
  Streams(const Streams&) = delete;
  Streams& operator=(const Streams&) = delete;

  /// Answers one CMD_STREAM_START (StartStream, keeping the publisher).
  Result<Envelope> Start(const Envelope& command);
  /// Start, as a Handler (the Streams must outlive it).
  Handler handler();
  /// The publisher of stream `name`, or kNotFound naming the streams there are. The pointer
  /// stays valid while this Streams lives; publish from one thread at a time.
  Result<Publisher*> Find(std::string_view name);
  /// The Arrow publisher of stream `name`, started with a schema; kInvalidArgument for a
  /// stream without one, kNotFound as Find.
  Result<ArrowPublisher*> FindArrow(std::string_view name);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// What Streams::Start does but keeping nothing: makes the channel a CMD_STREAM_START asks for
/// and returns it with the RES_OK to answer (for a worker that publishes by other means, e.g.
/// Python's). kInvalidArgument naming the field for a malformed payload.
Result<std::pair<Channel, Envelope>> StartStream(const Envelope& command);

/// Publishes `bytes` on `publisher` and returns a RES_DATA_READY envelope with its safe handle
/// (format raw), e.g. a handler's result. `payload` goes into the envelope as is.
Result<Envelope> PublishResult(Publisher& publisher, std::span<const std::byte> bytes,
                               nlohmann::json payload = nlohmann::json::object());

/// Compute services: a worker serves a named computation that `quiver serve` (or any client
/// of this user) runs on request, streaming the result batches back from shared memory. The
/// worker listens on a Unix socket named after the service in ServiceDirectory(); the
/// directory's mode (0700) and SO_PEERCRED keep other users out. A call is two commands on
/// one connection:
///   CMD_SERVICE_INFO {}                      -> RES_OK {"service", "description",
///                                               "schema": base64 of the Arrow IPC schema}
///   CMD_SERVICE_CALL {"request": {...},      -> the handler publishes its batches into the
///                     "stream": "CHANNEL",      caller's channel CHANNEL (an Arrow channel
///                     "input": "CHANNEL"}       of that schema), closes it, then RES_OK; or
///                                               RES_ERROR_V2. With "input" (a Flight
///                                               DoExchange), the worker subscribes to that
///                                               channel before the handler runs, and the
///                                               handler reads the caller's batches from it
/// The caller makes the channel and subscribes before it sends the call, so nothing is lost
/// and a slow reader holds the worker back (the channel's policy), never buffers without end.
inline constexpr std::string_view kCmdServiceInfo = "CMD_SERVICE_INFO";
inline constexpr std::string_view kCmdServiceCall = "CMD_SERVICE_CALL";

/// One call of a service.
struct ServiceCall {
  const nlohmann::json& request;  ///< the ticket's "request" ({} if it had none)
  ArrowPublisher& results;        ///< where the result batches go (the service's schema)
  /// The batches the caller streams in (a Flight DoExchange), until it has sent them all
  /// (Receive: kPeerGone); null for a plain call (a DoGet).
  ArrowSubscriber* inputs = nullptr;
  /// The channel `results` publishes on.
  const Channel* results_channel = nullptr;

  /// True once nobody reads the results any more (the caller cancelled its DoGet or went
  /// away): a long handler should stop. Reads the channel's counters (a few microseconds).
  bool caller_gone() const;
};

/// Runs one call: publishes its result batches on `call.results` (the service's schema, or
/// one evolved from it). An error Status is answered RES_ERROR_V2 with its chain; batches
/// already published stay delivered.
using ServiceHandler = std::function<Status(ServiceCall& call)>;

struct ServiceOptions {
  std::string description;  ///< one line for listings (ListFlights)
  /// Where the socket goes; empty: ServiceDirectory().
  std::string directory;
  /// Calls served at once (one connection each); more are refused RESOURCE_EXHAUSTED.
  size_t max_connections = 64;
};

/// This user's service sockets: RuntimeDirectory()/services, made private on first use.
Result<std::string> ServiceDirectory();

/// OK for a service name: a channel's name rule (Channel::ValidateName), so never a path.
Status ValidateServiceName(std::string_view name);

/// The socket of service `name` in `directory` (empty: ServiceDirectory()).
/// kInvalidArgument for a name ValidateServiceName refuses.
Result<std::string> ServicePath(std::string_view name, std::string_view directory = {});

/// The services this user serves now: the names of the sockets in ServiceDirectory() that
/// this user owns (a socket another user planted is skipped), sorted. A socket left by a
/// worker that died is listed until a call finds it dead.
Result<std::vector<std::string>> ListServices(std::string_view directory = {});

/// Removes the sockets in ServiceDirectory() (or `directory`) that this user owns and that
/// nobody listens on any more (their worker died); with `dry_run`, only says which. Returns
/// their paths.
Result<std::vector<std::string>> RemoveDeadServices(bool dry_run, std::string_view directory = {});

/// Serves one named compute service until stopped.
class Service {
 public:
  /// Listens as service `name`. `schema` is the result batches' schema. A socket left at
  /// the path by a worker that died is replaced; kAlreadyExists if a live process serves
  /// that name.
  static Result<std::unique_ptr<Service>> Listen(std::string name,
                                                 std::shared_ptr<arrow::Schema> schema,
                                                 ServiceHandler handler,
                                                 ServiceOptions options = {});
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;
  /// Stops, joins the calls in progress and removes the socket.
  ~Service();

  /// Serves until Stop(), on the calling thread (each call on a thread of its own).
  Status Run();
  /// Serves on a background thread.
  void Start();
  /// Makes Run() return; safe from any thread.
  void Stop();
  const std::string& name() const;
  const std::string& path() const;

  struct Impl;  // control/service.cc

 private:
  explicit Service(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// How a WorkerPool picks the worker for the next command.
enum class Dispatch {
  kRoundRobin,   ///< each live worker in turn
  kLeastLoaded,  ///< the live worker with the fewest commands in flight (ties: in turn)
};

struct PoolCallOptions {
  std::chrono::milliseconds timeout = std::chrono::seconds(30);
  /// How many times a command whose worker died before answering is sent again to another
  /// live worker. 0: its call fails with kPeerGone naming the worker.
  int retries = 2;
};

/// One core commanding several workers. Thread-safe.
class WorkerPool {
 public:
  explicit WorkerPool(Dispatch dispatch = Dispatch::kLeastLoaded);
  /// The workers `quiver run` connected this node to (QUIVER_CONTROL_WORKERS).
  static Result<std::unique_ptr<WorkerPool>> FromEnvironment(
      Dispatch dispatch = Dispatch::kLeastLoaded);

  void Add(std::unique_ptr<Client> worker);
  /// Sends `command` to a live worker and waits for its result. A worker that dies with the
  /// command in flight costs a retry on another one (options.retries); when none is left
  /// the call fails with kPeerGone, its cause chain naming every worker tried.
  Result<Envelope> Call(const Envelope& command, PoolCallOptions options = {});
  /// Workers whose connection is still up.
  size_t live_workers() const;
  /// Commands in flight per live worker, by name.
  std::map<std::string, size_t> load() const;

 private:
  // The live worker for the next command, or nullptr when none is.
  Client* Pick();

  const Dispatch dispatch_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Client>> workers_;
  size_t next_ = 0;
};

/// The safe shm_handle of the sample `publisher` published last (Publisher::last_published):
/// the channel's name and generation, the sample's sequence, offset and size. kNotFound
/// before its first publish.
Result<ShmHandle> HandleForLast(const Publisher& publisher, ShmFormat format = ShmFormat::kRaw);

/// Turns safe handles into the samples they name, held until dropped. It subscribes to each
/// channel it is told to Watch, so every sample published there afterwards is delivered to
/// it and stays held until resolved (or dropped by drop-oldest): results nobody resolves hold
/// their channel's memory, and under `block` its publisher waits.
class HandleResolver {
 public:
  HandleResolver();
  ~HandleResolver();
  HandleResolver(const HandleResolver&) = delete;
  HandleResolver& operator=(const HandleResolver&) = delete;

  /// Subscribes to `channel`: handles to samples published there from now on resolve.
  /// Watching a channel again is a no-op.
  Status Watch(Channel channel);
  /// The sample `handle` names, held by the returned Sample. Errors:
  /// - kStaleHandle: another generation of the channel, a sample published before Watch, one
  ///   already resolved, dropped (drop-oldest) or never published;
  /// - kHandleOutOfRange: the handle's offset or size are not the sample's;
  /// - kNotFound: a channel this resolver does not watch;
  /// - kTimeout: the sample has not arrived within `wait` (its publish is still under way).
  Result<Sample> Resolve(const ShmHandle& handle,
                         std::chrono::milliseconds wait = std::chrono::seconds(1));
  /// Drops every sample of `handle`'s channel up to the handle's sequence, held or still
  /// queued (results a caller gave up on), so the channel can recycle them; later ones
  /// still resolve.
  void Forget(const ShmHandle& handle);

 private:
  struct Watched;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Watched>, std::less<>> watched_;
};

}  // namespace quiver::control
