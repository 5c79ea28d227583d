// The Flight server of `quiver serve` (see server.h).
#include "flight/server.h"

#include <arpa/inet.h>
#include <arrow/buffer.h>
#include <arrow/flight/server.h>
#include <arrow/flight/server_middleware.h>
#include <arrow/ipc/api.h>
#include <arrow/record_batch.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/private_dir.h"
#include "common/unique_fd.h"
#include "discovery/discovery.h"
#include "flight/common.h"
#include "flight/compute.h"
#include "flight/location.h"
#include "flight/tail_stream.h"
#include "quiver/control.h"

namespace quiver::flight {
namespace fl = arrow::flight;

namespace {

constexpr std::string_view kListChannels = "list-channels";
constexpr std::string_view kStats = "stats";

// `host` as ParseAddress gives it (no brackets around IPv6).
bool IsLoopback(const std::string& host) {
  if (host == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

// Constant time in the token's length: a wrong guess learns nothing from timing.
bool SameSecret(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i % std::max<size_t>(b.size(), 1)];
  return diff == 0;
}

// Bearer-token check on every call: "authorization: Bearer TOKEN".
class BearerAuth final : public fl::ServerMiddlewareFactory {
 public:
  explicit BearerAuth(std::string token) : token_(std::move(token)) {}

  arrow::Status StartCall(const fl::CallInfo& /*info*/, const fl::ServerCallContext& context,
                          std::shared_ptr<fl::ServerMiddleware>* middleware) override {
    middleware->reset();
    const auto& headers = context.incoming_headers();
    auto it = headers.find("authorization");
    if (it == headers.end()) {
      return fl::MakeFlightError(fl::FlightStatusCode::Unauthenticated,
                                 "quiver serve needs a bearer token (authorization header)");
    }
    std::string_view value = it->second;
    constexpr std::string_view kScheme = "Bearer ";
    const bool bearer =
        value.size() > kScheme.size() &&
        std::equal(kScheme.begin(), kScheme.end(), value.begin(),
                   [](char x, char y) { return std::tolower(x) == std::tolower(y); });
    if (!bearer || !SameSecret(value.substr(kScheme.size()), token_)) {
      return fl::MakeFlightError(fl::FlightStatusCode::Unauthenticated,
                                 "quiver serve: wrong bearer token");
    }
    return arrow::Status::OK();
  }

 private:
  std::string token_;
};

// The start of grpc::ServerBuilder (include/grpcpp/server_builder.h): a vtable pointer, then
// max_receive_message_size_ and max_send_message_size_, in this order in every gRPC release
// since 1.0 (read in 1.81.1, the one inside the pyarrow 26 wheel). The wheel hides gRPC's
// symbols, so Flight's builder_hook (documented for exactly this) cannot call
// ServerBuilder::SetMaxReceiveMessageSize, an inline setter of that int: we set it the same
// way, after checking both ints hold what Arrow and gRPC put there (-1: Flight's "no limit";
// gRPC's "unset": INT_MIN, -1 before 1.50), so a different layout is refused, not written.
struct ServerBuilderHead {
  void* vtable;
  int max_receive_message_size;
  int max_send_message_size;
};

// The builder_hook that bounds what one gRPC message may hold. gRPC checks a message's
// length prefix against it and refuses the call with RESOURCE_EXHAUSTED before buffering it.
std::function<void(void*)> LimitReceiveSize(int limit, bool* applied) {
  return [limit, applied](void* raw_builder) {
    auto* head = static_cast<ServerBuilderHead*>(raw_builder);
    const int send = head->max_send_message_size;
    if (head->max_receive_message_size == -1 &&
        (send == std::numeric_limits<int>::min() || send == -1)) {
      head->max_receive_message_size = limit;
      *applied = true;
    }
  };
}

class ChannelServer final : public fl::FlightServerBase {
 public:
  explicit ChannelServer(const ServerOptions& options)
      : options_(options), budget_(options.put_max_channels, options.put_max_bytes) {}

  void BeginShutdown() { stopping_.store(true); }

  arrow::Status ListFlights(const fl::ServerCallContext& /*context*/, const fl::Criteria* criteria,
                            std::unique_ptr<fl::FlightListing>* listings) override {
    // Criteria, if given, is a channel name prefix.
    const std::string prefix = criteria != nullptr ? criteria->expression : "";
    std::vector<fl::FlightInfo> flights;
    ARROW_ASSIGN_OR_RAISE(std::vector<std::string> names, ListChannels());
    for (const std::string& name : names) {
      if (name.compare(0, prefix.size(), prefix) != 0) continue;
      Result<Channel> channel = discovery::OpenChannel(name);
      if (!channel.ok() || channel->type_versions() == 0) continue;  // gone, or not Arrow
      auto info = InfoOf(*channel);
      if (info.ok()) flights.push_back(std::move(*info));
    }
    // Then the services of this user, whose tickets run a request (compute.h).
    Result<std::vector<std::string>> services = control::ListServices();
    for (const std::string& name : services.ok() ? *services : std::vector<std::string>{}) {
      if (name.compare(0, prefix.size(), prefix) != 0) continue;
      ComputeTicket ticket;
      ticket.service = name;
      auto info = ServiceInfoOf(ticket);
      if (info.ok()) flights.push_back(std::move(*info));  // else its worker is gone
    }
    *listings = std::make_unique<fl::SimpleFlightListing>(std::move(flights));
    return arrow::Status::OK();
  }

  arrow::Status GetFlightInfo(const fl::ServerCallContext& /*context*/,
                              const fl::FlightDescriptor& request,
                              std::unique_ptr<fl::FlightInfo>* info) override {
    if (request.type == fl::FlightDescriptor::CMD) {
      ARROW_ASSIGN_OR_RAISE(ComputeTicket ticket, ComputeTicketOf(request));
      ARROW_ASSIGN_OR_RAISE(fl::FlightInfo found, ServiceInfoOf(ticket));
      *info = std::make_unique<fl::FlightInfo>(std::move(found));
      return arrow::Status::OK();
    }
    ARROW_ASSIGN_OR_RAISE(Channel channel, OpenNamed(request));
    ARROW_ASSIGN_OR_RAISE(fl::FlightInfo found, InfoOf(channel));
    *info = std::make_unique<fl::FlightInfo>(std::move(found));
    return arrow::Status::OK();
  }

  arrow::Status GetSchema(const fl::ServerCallContext& /*context*/,
                          const fl::FlightDescriptor& request,
                          std::unique_ptr<fl::SchemaResult>* schema) override {
    if (request.type == fl::FlightDescriptor::CMD) {
      ARROW_ASSIGN_OR_RAISE(ComputeTicket ticket, ComputeTicketOf(request));
      Result<ServiceInfo> service = DescribeService(ticket.service);
      if (!service.ok()) return ToArrow(service.status());
      ARROW_ASSIGN_OR_RAISE(*schema, fl::SchemaResult::Make(*service->schema));
      return arrow::Status::OK();
    }
    ARROW_ASSIGN_OR_RAISE(Channel channel, OpenNamed(request));
    Result<std::shared_ptr<arrow::Schema>> found = ChannelSchema(channel);
    if (!found.ok()) return ToArrow(found.status());
    ARROW_ASSIGN_OR_RAISE(*schema, fl::SchemaResult::Make(**found));
    return arrow::Status::OK();
  }

  arrow::Status DoGet(const fl::ServerCallContext& context, const fl::Ticket& request,
                      std::unique_ptr<fl::FlightDataStream>* stream) override {
    if (IsComputeTicket(request.ticket)) {
      Result<ComputeTicket> compute = ParseComputeTicket(request.ticket);
      if (!compute.ok()) return ToArrow(compute.status());
      auto results = RunCompute(*compute, {.capacity = options_.put_capacity,
                                           .budget = &budget_,
                                           .stop = StopFor(context),
                                           .poll = options_.poll});
      if (!results.ok()) return ToArrow(results.status());
      *stream = std::move(*results);
      return arrow::Status::OK();
    }
    Result<Ticket> ticket = ParseTicket(request.ticket);
    if (!ticket.ok()) return ToArrow(ticket.status());
    Result<Channel> channel = discovery::OpenChannel(ticket->channel);
    if (!channel.ok()) return ToArrow(channel.status());
    auto tail = MakeTailStream(*channel, {.from_oldest = ticket->from_oldest}, StopFor(context),
                               options_.poll);
    if (!tail.ok()) return ToArrow(tail.status());
    *stream = std::move(*tail);
    return arrow::Status::OK();
  }

  arrow::Status DoPut(const fl::ServerCallContext& context,
                      std::unique_ptr<fl::FlightMessageReader> reader,
                      std::unique_ptr<fl::FlightMetadataWriter> /*writer*/) override {
    ARROW_ASSIGN_OR_RAISE(std::string name, NameOf(reader->descriptor()));
    ARROW_ASSIGN_OR_RAISE(std::shared_ptr<arrow::Schema> schema, reader->GetSchema());
    Result<RemotePublisher> publisher = RemotePublisher::Open(
        name, schema, options_.put_capacity, options_.put_overflow, options_.poll, &budget_);
    if (!publisher.ok()) return ToArrow(publisher.status());
    const std::function<bool()> stop = StopFor(context);
    for (;;) {
      ARROW_ASSIGN_OR_RAISE(fl::FlightStreamChunk chunk, reader->Next());
      if (chunk.data == nullptr) return arrow::Status::OK();  // the client finished
      const Status published = publisher->Publish(chunk.data, stop);
      if (published.ok()) continue;
      if (context.is_cancelled()) return arrow::Status::Cancelled("the client went away");
      if (stopping_.load()) {
        return fl::MakeFlightError(fl::FlightStatusCode::Unavailable,
                                   "quiver serve is shutting down");
      }
      return ToArrow(published);
    }
  }

  // A compute ticket in a CMD descriptor, with the client's batches as the service's input.
  arrow::Status DoExchange(const fl::ServerCallContext& context,
                           std::unique_ptr<fl::FlightMessageReader> reader,
                           std::unique_ptr<fl::FlightMessageWriter> writer) override {
    if (reader->descriptor().type != fl::FlightDescriptor::CMD) {
      return arrow::Status::Invalid(
          "DoExchange takes a CMD descriptor holding a compute ticket, {\"service\": NAME, "
          "\"request\": {...}}");
    }
    ARROW_ASSIGN_OR_RAISE(ComputeTicket ticket, ComputeTicketOf(reader->descriptor()));
    return RunExchange(ticket, *reader, *writer,
                       {.capacity = options_.put_capacity,
                        .budget = &budget_,
                        .stop = StopFor(context),
                        .poll = options_.poll});
  }

  arrow::Status ListActions(const fl::ServerCallContext& /*context*/,
                            std::vector<fl::ActionType>* actions) override {
    *actions = {
        {std::string(kListChannels),
         "Every channel of this machine's user: name, schema (Arrow channels), counters (JSON)"},
        {std::string(kStats), "One channel's counters (JSON); body: the channel name"},
    };
    return arrow::Status::OK();
  }

  arrow::Status DoAction(const fl::ServerCallContext& /*context*/, const fl::Action& action,
                         std::unique_ptr<fl::ResultStream>* result) override {
    nlohmann::json out;
    if (action.type == kListChannels) {
      out = nlohmann::json::array();
      ARROW_ASSIGN_OR_RAISE(std::vector<std::string> names, ListChannels());
      for (const std::string& name : names) {
        Result<Channel> channel = discovery::OpenChannel(name);
        if (channel.ok()) out.push_back(Describe(*channel));
      }
    } else if (action.type == kStats) {
      const std::string name = action.body != nullptr ? action.body->ToString() : "";
      if (name.empty()) return arrow::Status::Invalid("stats: the body must name a channel");
      Result<Channel> channel = discovery::OpenChannel(name);
      if (!channel.ok()) return ToArrow(channel.status());
      out = Describe(*channel);
    } else {
      return arrow::Status::NotImplemented("unknown action '", action.type.substr(0, 80),
                                           "' (known: list-channels, stats)");
    }
    std::vector<fl::Result> results(1);
    results[0].body = arrow::Buffer::FromString(out.dump());
    *result = std::make_unique<fl::SimpleResultStream>(std::move(results));
    return arrow::Status::OK();
  }

 private:
  // True once the call was cancelled or the server is stopping: what waits poll for.
  std::function<bool()> StopFor(const fl::ServerCallContext& context) {
    return [&context, this] { return context.is_cancelled() || stopping_.load(); };
  }

  // The live channels of this user (named ones and its running pipelines').
  static arrow::Result<std::vector<std::string>> ListChannels() {
    std::vector<std::string> problems;
    std::vector<std::string> names;
    for (const discovery::ChannelEntry& entry : discovery::ListChannels(&problems)) {
      if (!entry.stale && entry.error.empty()) names.push_back(entry.name);
    }
    if (names.empty() && !problems.empty()) return arrow::Status::IOError(problems.front());
    return names;
  }

  static arrow::Result<std::string> NameOf(const fl::FlightDescriptor& descriptor) {
    if (descriptor.type == fl::FlightDescriptor::PATH && descriptor.path.size() == 1) {
      return descriptor.path[0];
    }
    return arrow::Status::Invalid(
        "a flight descriptor names one channel: a path of one element, the channel name");
  }

  // The channel a descriptor names, opened.
  static arrow::Result<Channel> OpenNamed(const fl::FlightDescriptor& descriptor) {
    ARROW_ASSIGN_OR_RAISE(std::string name, NameOf(descriptor));
    Result<Channel> channel = discovery::OpenChannel(name);
    if (!channel.ok()) return ToArrow(channel.status());
    return std::move(*channel);
  }

  static nlohmann::json Describe(const Channel& channel) {
    nlohmann::json j = nlohmann::json::parse(channel.Stats().ToJson());
    j["name"] = channel.name();
    if (channel.type_versions() > 0) {
      Result<std::shared_ptr<arrow::Schema>> schema = ChannelSchema(channel);
      j["schema"] = schema.ok() ? (*schema)->ToString() : schema.status().ToString();
      j["schema_versions"] = channel.type_versions();
    }
    return j;
  }

  static arrow::Result<fl::FlightInfo> InfoOf(const Channel& channel) {
    Result<std::shared_ptr<arrow::Schema>> schema = ChannelSchema(channel);
    if (!schema.ok()) return ToArrow(schema.status());
    fl::FlightEndpoint endpoint;
    endpoint.ticket.ticket = channel.name();  // no locations: this same server
    // A live channel has no known total: -1 records, -1 bytes.
    return fl::FlightInfo::Make(**schema, fl::FlightDescriptor::Path({channel.name()}), {endpoint},
                                -1, -1, /*ordered=*/true, Describe(channel).dump());
  }

  // The compute ticket a CMD descriptor carries: the same JSON as the ticket.
  static arrow::Result<ComputeTicket> ComputeTicketOf(const fl::FlightDescriptor& descriptor) {
    Result<ComputeTicket> ticket = ParseComputeTicket(descriptor.cmd);
    if (!ticket.ok()) return ToArrow(ticket.status());
    return std::move(*ticket);
  }

  // A service as a flight: descriptor CMD {"service", "request"}, its result schema, one
  // endpoint whose ticket is that same JSON; total unknown (-1); app_metadata {"service",
  // "description"}.
  static arrow::Result<fl::FlightInfo> ServiceInfoOf(const ComputeTicket& ticket) {
    Result<ServiceInfo> service = DescribeService(ticket.service);
    if (!service.ok()) return ToArrow(service.status());
    const std::string cmd =
        nlohmann::json{{"service", ticket.service}, {"request", ticket.request}}.dump();
    fl::FlightEndpoint endpoint;
    endpoint.ticket.ticket = cmd;
    const nlohmann::json metadata = {{"service", service->name},
                                     {"description", service->description}};
    return fl::FlightInfo::Make(*service->schema, fl::FlightDescriptor::Command(cmd), {endpoint},
                                -1, -1, /*ordered=*/true, metadata.dump());
  }

  ServerOptions options_;
  CreationBudget budget_;
  std::atomic<bool> stopping_{false};
};

// Whether a server answers on the Unix socket at `path` (a connect succeeds).
bool SocketAnswers(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return false;
  std::memcpy(addr.sun_path, path.data(), path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  return fd.valid() &&
         ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
}

// Gets `path` ready for a Unix listener: its directory must be ours and closed to other users
// (that is the access check: a socket's own mode is applied only after gRPC binds it), and
// whatever is at `path` must be a socket nobody answers on (a killed server's), removed here.
Status PrepareUnixSocket(const std::string& path) {
  if (path.empty() || path.front() != '/') {
    return Status::InvalidArgument("--listen grpc+unix://PATH needs an absolute PATH, got '" +
                                   path + "'");
  }
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) {
    return Status::InvalidArgument("Unix socket path '" + path + "' is longer than " +
                                   std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
  }
  const std::string dir = path.substr(0, std::max<size_t>(path.rfind('/'), 1));
  QUIVER_ASSIGN_OR_RETURN(
      bool exists, EnsurePrivateDirectory(dir, /*create=*/false, "the directory of the socket",
                                          LooseDirectory::kRefuse));
  if (!exists) return Status::NotFound("directory " + dir + " does not exist");
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return Status::OK();
  if (!S_ISSOCK(st.st_mode)) {
    return Status::AlreadyExists(path + " exists and is not a socket; refusing it");
  }
  if (SocketAnswers(path)) {
    return Status::AlreadyExists("a server already listens on " + path +
                                 " (another quiver serve?); stop it or "
                                 "give another --listen");
  }
  ::unlink(path.c_str());  // left by a server that was killed
  return Status::OK();
}

}  // namespace

struct Server::Impl {
  std::unique_ptr<ChannelServer> server;
  std::string location;
  std::string unix_socket;  // removed at shutdown
  size_t max_message_bytes = 0;
};

Result<std::string> DefaultListen() { return DefaultFlightLocation(); }

Result<std::unique_ptr<Server>> Server::Start(const ServerOptions& given) {
  ServerOptions options = given;
  if (options.listen.empty()) {
    QUIVER_ASSIGN_OR_RETURN(options.listen, DefaultListen());
  }
  QUIVER_ASSIGN_OR_RETURN(Address address, ParseAddress(options.listen, "--listen"));
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return Status::InvalidArgument("TLS needs both a certificate and a key file");
  }
  const bool unix_socket = !address.unix_socket.empty();
  const bool tls = !options.tls_cert_file.empty();
  if (unix_socket && tls) {
    return Status::InvalidArgument(
        "TLS is for TCP listeners; a Unix socket is reached only on this machine");
  }
  if (address.tls && !tls) {
    return Status::InvalidArgument("--listen '" + options.listen +
                                   "' asks for TLS: give --tls-cert and --tls-key");
  }
  // Loopback is no user boundary: every local user can connect to a TCP port.
  if (!unix_socket && options.token.empty()) {
    return Status::PermissionDenied(
        "a TCP listener (" + options.listen +
        ") needs a bearer token, loopback included, or any local user could read "
        "and write this user's channels: give --token-file (quiver serve makes one "
        "when none is given), or listen on a Unix socket (the default)");
  }
  if (!unix_socket && !IsLoopback(address.host) && !tls && !options.allow_insecure_remote) {
    return Status::PermissionDenied(
        "refusing to serve on " + address.host +
        ", which is not a loopback address, without TLS (--tls-cert/--tls-key): "
        "the token would cross the network in clear; pass "
        "--allow-insecure-remote to do it anyway");
  }
  if (unix_socket) QUIVER_RETURN_IF_ERROR(PrepareUnixSocket(address.unix_socket));
  auto location = unix_socket ? fl::Location::ForGrpcUnix(address.unix_socket)
                  : tls       ? fl::Location::ForGrpcTls(address.host, address.port)
                              : fl::Location::ForGrpcTcp(address.host, address.port);
  if (!location.ok()) return FromArrow(location.status(), ErrorCode::kInvalidArgument, "--listen");
  fl::FlightServerOptions server_options(*location);
  if (tls) {
    QUIVER_ASSIGN_OR_RETURN(std::string cert,
                            ReadWholeFile(options.tls_cert_file, "TLS certificate"));
    QUIVER_ASSIGN_OR_RETURN(std::string key, ReadWholeFile(options.tls_key_file, "TLS key"));
    server_options.tls_certificates.push_back({std::move(cert), std::move(key)});
  }
  if (!options.token.empty()) {
    server_options.middleware.emplace_back("bearer", std::make_shared<BearerAuth>(options.token));
  }
  const size_t limit = options.max_message_bytes != 0
                           ? options.max_message_bytes
                           : std::max<size_t>(options.put_capacity, 1) + (size_t{1} << 20);
  if (limit > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return Status::InvalidArgument(
        "the message size limit " + std::to_string(limit) +
        " is above gRPC's largest (2 GiB - 1): lower --max-message-size or --capacity");
  }
  bool limit_applied = false;
  server_options.builder_hook = LimitReceiveSize(static_cast<int>(limit), &limit_applied);
  auto impl = std::make_unique<Impl>();
  impl->server = std::make_unique<ChannelServer>(options);
  const arrow::Status started = impl->server->Init(server_options);
  if (!started.ok()) {
    return FromArrow(started, ErrorCode::kIoError, "cannot serve on " + options.listen);
  }
  if (!limit_applied) {
    (void)impl->server->Shutdown();
    return Status::IoError(
        "cannot bound gRPC's message size in this Arrow Flight build (its ServerBuilder "
        "does not look as expected): refusing to serve without a limit");
  }
  impl->max_message_bytes = limit;
  if (unix_socket) {
    // Only this user, on top of the directory's own check.
    ::chmod(address.unix_socket.c_str(), 0600);
    impl->unix_socket = address.unix_socket;
    impl->location = "grpc+unix://" + address.unix_socket;
  } else {
    impl->location =
        std::string(tls ? "grpc+tls://" : "grpc://") +
        (address.host.find(':') != std::string::npos ? "[" + address.host + "]" : address.host) +
        ":" + std::to_string(impl->server->port());
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { Shutdown(); }

const std::string& Server::location() const { return impl_->location; }

size_t Server::max_message_bytes() const { return impl_->max_message_bytes; }

void Server::Shutdown(std::chrono::milliseconds grace) {
  if (impl_->server == nullptr) return;
  impl_->server->BeginShutdown();
  const auto deadline = std::chrono::system_clock::now() + grace;
  (void)impl_->server->Shutdown(&deadline);
  (void)impl_->server->Wait();
  impl_->server.reset();
  if (!impl_->unix_socket.empty()) ::unlink(impl_->unix_socket.c_str());
}

}  // namespace quiver::flight
