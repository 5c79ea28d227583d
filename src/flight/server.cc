// The Flight server of `quiver serve` (see gateway.h).
#include <arpa/inet.h>
#include <arrow/buffer.h>
#include <arrow/flight/server.h>
#include <arrow/flight/server_middleware.h>
#include <arrow/ipc/api.h>
#include <arrow/record_batch.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "control/stats_json.h"
#include "flight/common.h"
#include "flight/gateway.h"
#include "flight/tail_stream.h"
#include "shm/segment.h"

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

class ChannelServer final : public fl::FlightServerBase {
 public:
  explicit ChannelServer(const ServerOptions& options) : options_(options) {}

  void BeginShutdown() { stopping_.store(true); }

  arrow::Status ListFlights(const fl::ServerCallContext& /*context*/, const fl::Criteria* criteria,
                            std::unique_ptr<fl::FlightListing>* listings) override {
    // Criteria, if given, is a channel name prefix.
    const std::string prefix = criteria != nullptr ? criteria->expression : "";
    std::vector<fl::FlightInfo> flights;
    ARROW_ASSIGN_OR_RAISE(std::vector<std::string> names, ListChannels());
    for (const std::string& name : names) {
      if (name.compare(0, prefix.size(), prefix) != 0) continue;
      Result<Channel> channel = Channel::Open(name);
      if (!channel.ok() || channel->type_versions() == 0) continue;  // gone, or not Arrow
      auto info = InfoOf(*channel);
      if (info.ok()) flights.push_back(std::move(*info));
    }
    *listings = std::make_unique<fl::SimpleFlightListing>(std::move(flights));
    return arrow::Status::OK();
  }

  arrow::Status GetFlightInfo(const fl::ServerCallContext& /*context*/,
                              const fl::FlightDescriptor& request,
                              std::unique_ptr<fl::FlightInfo>* info) override {
    ARROW_ASSIGN_OR_RAISE(Channel channel, OpenNamed(request));
    ARROW_ASSIGN_OR_RAISE(fl::FlightInfo found, InfoOf(channel));
    *info = std::make_unique<fl::FlightInfo>(std::move(found));
    return arrow::Status::OK();
  }

  arrow::Status GetSchema(const fl::ServerCallContext& /*context*/,
                          const fl::FlightDescriptor& request,
                          std::unique_ptr<fl::SchemaResult>* schema) override {
    ARROW_ASSIGN_OR_RAISE(Channel channel, OpenNamed(request));
    Result<std::shared_ptr<arrow::Schema>> found = ChannelSchema(channel);
    if (!found.ok()) return ToArrow(found.status());
    ARROW_ASSIGN_OR_RAISE(*schema, fl::SchemaResult::Make(**found));
    return arrow::Status::OK();
  }

  arrow::Status DoGet(const fl::ServerCallContext& context, const fl::Ticket& request,
                      std::unique_ptr<fl::FlightDataStream>* stream) override {
    Result<Ticket> ticket = ParseTicket(request.ticket);
    if (!ticket.ok()) return ToArrow(ticket.status());
    Result<Channel> channel = Channel::Open(ticket->channel);
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
    Result<RemotePublisher> publisher = RemotePublisher::Open(name, schema, options_.put_capacity,
                                                              options_.put_overflow, options_.poll);
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
        Result<Channel> channel = Channel::Open(name);
        if (channel.ok()) out.push_back(Describe(*channel));
      }
    } else if (action.type == kStats) {
      const std::string name = action.body != nullptr ? action.body->ToString() : "";
      if (name.empty()) return arrow::Status::Invalid("stats: the body must name a channel");
      Result<Channel> channel = Channel::Open(name);
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

  static arrow::Result<std::vector<std::string>> ListChannels() {
    Result<std::vector<std::string>> names = shm::Segment::ListNamed();
    if (!names.ok()) return ToArrow(names.status());
    return std::move(*names);
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
    Result<Channel> channel = Channel::Open(name);
    if (!channel.ok()) return ToArrow(channel.status());
    return std::move(*channel);
  }

  static nlohmann::json Describe(const Channel& channel) {
    nlohmann::json j = control::StatsToJson(channel.Stats());
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

  ServerOptions options_;
  std::atomic<bool> stopping_{false};
};

}  // namespace

struct Server::Impl {
  std::unique_ptr<ChannelServer> server;
  std::string location;
};

Result<std::unique_ptr<Server>> Server::Start(const ServerOptions& options) {
  QUIVER_ASSIGN_OR_RETURN(Address address, ParseAddress(options.listen, "--listen"));
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return Status(ErrorCode::kInvalidArgument, "TLS needs both a certificate and a key file");
  }
  const bool tls = !options.tls_cert_file.empty();
  if (address.tls && !tls) {
    return Status(ErrorCode::kInvalidArgument,
                  "--listen '" + options.listen + "' asks for TLS: give --tls-cert and --tls-key");
  }
  if (!IsLoopback(address.host) && !options.allow_insecure_remote &&
      (!tls || options.token.empty())) {
    return Status(ErrorCode::kPermissionDenied,
                  "refusing to serve on " + address.host +
                      ", which is not a loopback address, without TLS and a bearer token "
                      "(--tls-cert/--tls-key and --token-file); pass --allow-insecure-remote "
                      "to do it anyway");
  }
  auto location = tls ? fl::Location::ForGrpcTls(address.host, address.port)
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
  auto impl = std::make_unique<Impl>();
  impl->server = std::make_unique<ChannelServer>(options);
  const arrow::Status started = impl->server->Init(server_options);
  if (!started.ok()) {
    return FromArrow(started, ErrorCode::kIoError, "cannot serve on " + options.listen);
  }
  impl->location =
      std::string(tls ? "grpc+tls://" : "grpc://") +
      (address.host.find(':') != std::string::npos ? "[" + address.host + "]" : address.host) +
      ":" + std::to_string(impl->server->port());
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { Shutdown(); }

const std::string& Server::location() const { return impl_->location; }

void Server::Shutdown(std::chrono::milliseconds grace) {
  if (impl_->server == nullptr) return;
  impl_->server->BeginShutdown();
  const auto deadline = std::chrono::system_clock::now() + grace;
  (void)impl_->server->Shutdown(&deadline);
  (void)impl_->server->Wait();
  impl_->server.reset();
}

// ---- Addresses and tickets ----------------------------------------------------------------

Result<Address> ParseAddress(std::string_view uri, std::string_view what) {
  const std::string text(uri);
  auto bad = [&](const std::string& why) {
    return Status(ErrorCode::kInvalidArgument, std::string(what) + " '" + text.substr(0, 200) +
                                                   "': " + why + " (expected grpc://HOST:PORT)");
  };
  const size_t colon_slashes = text.find("://");
  if (colon_slashes == std::string::npos) return bad("no scheme");
  const std::string scheme = text.substr(0, colon_slashes);
  Address address;
  if (scheme == "grpc+tls") {
    address.tls = true;
  } else if (scheme != "grpc" && scheme != "grpc+tcp") {
    return bad("unknown scheme '" + scheme + "'");
  }
  std::string rest = text.substr(colon_slashes + 3);
  const size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    address.path = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  size_t port_colon;
  if (!rest.empty() && rest.front() == '[') {  // [v6]:port
    const size_t close = rest.find(']');
    if (close == std::string::npos) return bad("unclosed '['");
    address.host = rest.substr(1, close - 1);
    port_colon = close + 1;
    if (port_colon >= rest.size() || rest[port_colon] != ':') return bad("no port");
  } else {
    port_colon = rest.rfind(':');
    if (port_colon == std::string::npos) return bad("no port");
    address.host = rest.substr(0, port_colon);
  }
  if (address.host.empty()) return bad("no host");
  const std::string port = rest.substr(port_colon + 1);
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoi(port) > 65535) {
    return bad("port '" + port.substr(0, 20) + "' is not 0 to 65535");
  }
  address.port = std::stoi(port);
  return address;
}

Result<Ticket> ParseTicket(std::string_view text) {
  const size_t question = text.find('?');
  Ticket ticket{std::string(text.substr(0, question))};
  if (ticket.channel.empty()) {
    return Status(ErrorCode::kInvalidArgument,
                  "ticket: no channel name (NAME[?from=latest|from=oldest])");
  }
  if (question == std::string_view::npos) return ticket;
  std::string_view options = text.substr(question + 1);
  bool from_given = false;
  while (!options.empty()) {
    const size_t amp = options.find('&');
    const std::string_view option = options.substr(0, amp);
    options = amp == std::string_view::npos ? std::string_view() : options.substr(amp + 1);
    if (option == "from=latest" || option == "from=oldest") {
      if (from_given) return Status(ErrorCode::kInvalidArgument, "ticket: from= given twice");
      from_given = true;
      ticket.from_oldest = option == "from=oldest";
      continue;
    }
    return Status(ErrorCode::kInvalidArgument, "ticket: unknown option '" +
                                                   std::string(option.substr(0, 80)) +
                                                   "' (known: from=latest, from=oldest)");
  }
  return ticket;
}

Result<RemoteChannel> ParseRemoteChannel(std::string_view uri) {
  QUIVER_ASSIGN_OR_RETURN(Address address, ParseAddress(uri, "remote channel"));
  if (address.path.empty()) {
    return Status(ErrorCode::kInvalidArgument, "remote channel '" +
                                                   std::string(uri.substr(0, 200)) +
                                                   "': no channel (grpc://HOST:PORT/CHANNEL)");
  }
  QUIVER_ASSIGN_OR_RETURN(Ticket ticket, ParseTicket(address.path));
  const std::string host =
      address.host.find(':') != std::string::npos ? "[" + address.host + "]" : address.host;
  return RemoteChannel{std::string(address.tls ? "grpc+tls://" : "grpc+tcp://") + host + ":" +
                           std::to_string(address.port),
                       address.path, ticket.channel};
}

}  // namespace quiver::flight
