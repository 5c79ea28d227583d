#include <arrow/api.h>
#include <arrow/flight/client.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <optional>
#include <thread>

#include "flight/compute.h"
#include "flight/location.h"
#include "flight/server.h"
#include "flight/tail_stream.h"
#include "quiver/arrow.h"
#include "quiver/control.h"
#include "test_support.h"

namespace quiver::flight {
namespace {

using testing::UniqueName;
namespace fl = arrow::flight;

std::shared_ptr<arrow::RecordBatch> Batch(int64_t start, int64_t rows) {
  arrow::Int64Builder ids;
  arrow::StringBuilder memos;
  for (int64_t i = start; i < start + rows; ++i) {
    EXPECT_TRUE(ids.Append(i).ok());
    EXPECT_TRUE(memos.Append("row " + std::to_string(i)).ok());
  }
  auto schema =
      arrow::schema({arrow::field("id", arrow::int64()), arrow::field("memo", arrow::utf8())});
  return arrow::RecordBatch::Make(schema, rows, {*ids.Finish(), *memos.Finish()});
}

TEST(TicketTest, ParsesNameAndFrom) {
  EXPECT_EQ(ParseTicket("ledger")->channel, "ledger");
  EXPECT_FALSE(ParseTicket("ledger")->from_oldest);
  EXPECT_EQ(ParseTicket("ledger?from=latest")->channel, "ledger");
  EXPECT_FALSE(ParseTicket("ledger?from=latest")->from_oldest);
  auto oldest = ParseTicket("ledger?from=oldest");
  ASSERT_TRUE(oldest.ok()) << oldest.status().ToString();
  EXPECT_EQ(oldest->channel, "ledger");
  EXPECT_TRUE(oldest->from_oldest);
}

TEST(TicketTest, RefusesWhatItCannotServe) {
  EXPECT_EQ(ParseTicket("").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ParseTicket("?from=latest").status().code(), ErrorCode::kInvalidArgument);
  auto twice = ParseTicket("ledger?from=oldest&from=latest");
  EXPECT_EQ(twice.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(twice.status().message().find("from= given twice"), std::string::npos);
  EXPECT_EQ(ParseTicket("ledger?from=newest").status().code(), ErrorCode::kInvalidArgument);
  auto unknown = ParseTicket("ledger?from=latest&x=" + std::string(500, 'y'));
  EXPECT_NE(unknown.status().message().find("unknown option 'x=yyy"), std::string::npos);
  EXPECT_LT(unknown.status().message().size(), 200u) << "a hostile ticket is quoted, cut short";
}

TEST(AddressTest, ParsesHostPortSchemeAndPath) {
  auto plain = ParseAddress("grpc://127.0.0.1:50051", "x");
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(plain->host, "127.0.0.1");
  EXPECT_EQ(plain->port, 50051);
  EXPECT_FALSE(plain->tls);
  auto v6 = ParseAddress("grpc+tls://[::1]:0/ledger?from=latest", "x");
  ASSERT_TRUE(v6.ok()) << v6.status().ToString();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_TRUE(v6->tls);
  EXPECT_EQ(v6->path, "ledger?from=latest");
  for (const char* bad : {"127.0.0.1:1", "http://h:1", "grpc://h", "grpc://:1", "grpc://h:x",
                          "grpc://h:65536", "grpc://[::1:1", "grpc://h:123456"}) {
    auto parsed = ParseAddress(bad, "--listen");
    EXPECT_EQ(parsed.status().code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_EQ(parsed.status().message().rfind("--listen '", 0), 0u) << parsed.status().message();
  }
}

TEST(AddressTest, RemoteChannelNeedsAChannel) {
  auto remote = ParseRemoteChannel("grpc://10.0.0.2:50051/frames?from=latest");
  ASSERT_TRUE(remote.ok()) << remote.status().ToString();
  EXPECT_EQ(remote->location, "grpc+tcp://10.0.0.2:50051");
  EXPECT_EQ(remote->ticket, "frames?from=latest");
  EXPECT_EQ(remote->channel, "frames");
  EXPECT_EQ(ParseRemoteChannel("grpc://10.0.0.2:50051").status().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(ParseRemoteChannel("grpc://10.0.0.2:50051/x?from=oldest")->ticket, "x?from=oldest");
  EXPECT_EQ(ParseRemoteChannel("grpc://10.0.0.2:50051/x?from=any").status().code(),
            ErrorCode::kInvalidArgument);
}

TEST(TailStreamTest, PayloadBodiesAreViewsOfTheSharedMapping) {
  auto batch = Batch(0, 1000);
  auto channel =
      CreateArrowChannel(UniqueName("tail-zero-copy"), batch->schema(), {.capacity = 4 << 20});
  ASSERT_TRUE(channel.ok()) << channel.status().ToString();
  auto stream = MakeTailStream(
      *channel, {}, [] { return false; }, std::chrono::milliseconds(10));
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  auto witness = channel->CreateSubscriber();  // sees the same sample, for its address
  ASSERT_TRUE(witness.ok());
  auto publisher = ArrowPublisher::Make(*channel);
  ASSERT_TRUE(publisher.ok());
  ASSERT_TRUE(publisher->Publish(*batch).ok());

  auto schema = (*stream)->GetSchemaPayload();
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  auto payload = (*stream)->Next();
  ASSERT_TRUE(payload.ok()) << payload.status().ToString();
  auto sample = witness->Receive(std::chrono::seconds(1));
  ASSERT_TRUE(sample.ok());
  const auto* begin = reinterpret_cast<const uint8_t*>(sample->data().data());
  const auto* end = begin + sample->size();
  int bodies = 0;
  for (const auto& buffer : payload->ipc_message.body_buffers) {
    if (buffer == nullptr || buffer->size() == 0) continue;
    EXPECT_GE(buffer->data(), begin);
    EXPECT_LE(buffer->data() + buffer->size(), end);
    ++bodies;
  }
  EXPECT_GE(bodies, 3) << "id values, memo offsets and memo data";
}

TEST(TailStreamTest, EndsWhenThePublisherIsGoneAndStopsWhenAsked) {
  auto batch = Batch(0, 10);
  auto channel = CreateArrowChannel(UniqueName("tail-end"), batch->schema(), {.capacity = 1 << 20});
  ASSERT_TRUE(channel.ok());
  bool stop = false;
  auto stream = MakeTailStream(
      *channel, {}, [&] { return stop; }, std::chrono::milliseconds(10));
  ASSERT_TRUE(stream.ok());
  {
    auto publisher = ArrowPublisher::Make(*channel);
    ASSERT_TRUE(publisher->Publish(*batch).ok());
  }
  ASSERT_TRUE((*stream)->Next().ok());
  auto end = (*stream)->Next();
  ASSERT_TRUE(end.ok()) << end.status().ToString();
  EXPECT_EQ(end->ipc_message.metadata, nullptr) << "end of stream";

  auto waiting = MakeTailStream(
      *channel, {}, [&] { return stop; }, std::chrono::milliseconds(10));
  ASSERT_TRUE(waiting.ok());
  auto publisher = ArrowPublisher::Make(*channel);  // alive: the tail would wait forever
  stop = true;
  EXPECT_TRUE((*waiting)->Next().status().IsCancelled());
}

TEST(TailStreamTest, RefusesAChannelWithoutArrow) {
  auto raw = Channel::Create(UniqueName("tail-raw"), {.capacity = 1 << 20});
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(MakeTailStream(
                *raw, {}, [] { return false; }, std::chrono::milliseconds(10))
                .status()
                .code(),
            ErrorCode::kInvalidArgument);
}

// A fresh directory only we can enter, removed with what is in it.
class PrivateDir {
 public:
  PrivateDir() {
    char pattern[] = "/tmp/qv-flight-XXXXXX";
    path_ = ::mkdtemp(pattern) != nullptr ? pattern : "";
  }
  ~PrivateDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }
  std::string Listen() const { return "grpc+unix://" + path_ + "/flight.sock"; }

 private:
  std::string path_;
};

TEST(ServerTest, EveryTcpListenerNeedsATokenAndRemoteOnesTls) {
  // Loopback is no user boundary: any local user can connect to a TCP port.
  auto loopback = Server::Start({.listen = "grpc://127.0.0.1:0"});
  EXPECT_EQ(loopback.status().code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(loopback.status().message().find("needs a bearer token"), std::string::npos);
  auto server = Server::Start({.listen = "grpc://0.0.0.0:0"});
  EXPECT_EQ(server.status().code(), ErrorCode::kPermissionDenied);
  auto tokened = Server::Start({.listen = "grpc://0.0.0.0:0", .token = "t"});
  EXPECT_EQ(tokened.status().code(), ErrorCode::kPermissionDenied) << "a token in clear text";
  auto untokened = Server::Start({.listen = "grpc://0.0.0.0:0", .allow_insecure_remote = true});
  EXPECT_EQ(untokened.status().code(), ErrorCode::kPermissionDenied) << "no token at all";
  auto allowed =
      Server::Start({.listen = "grpc://0.0.0.0:0", .token = "t", .allow_insecure_remote = true});
  ASSERT_TRUE(allowed.ok()) << allowed.status().ToString();
  EXPECT_EQ((*allowed)->location().rfind("grpc://0.0.0.0:", 0), 0u);
}

TEST(ServerTest, TlsNeedsBothFiles) {
  EXPECT_EQ(Server::Start({.listen = "grpc://127.0.0.1:0", .tls_cert_file = "c", .token = "t"})
                .status()
                .code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(Server::Start({.listen = "grpc://127.0.0.1:0",
                           .tls_cert_file = "/nonexistent/c",
                           .tls_key_file = "/nonexistent/k",
                           .token = "t"})
                .status()
                .code(),
            ErrorCode::kNotFound);
}

TEST(ServerTest, UnixSocketIsPrivateAndGoneAfterShutdown) {
  PrivateDir dir;
  const std::string socket = dir.path() + "/flight.sock";
  auto server = Server::Start({.listen = dir.Listen()});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  EXPECT_EQ((*server)->location(), dir.Listen());
  struct stat st {};
  ASSERT_EQ(::stat(socket.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // A second server on the same socket would steal it from the first: refused.
  auto second = Server::Start({.listen = dir.Listen()});
  EXPECT_EQ(second.status().code(), ErrorCode::kAlreadyExists) << second.status().ToString();
  (*server)->Shutdown();
  EXPECT_NE(::stat(socket.c_str(), &st), 0) << "the socket file is removed at shutdown";
  // A socket left by a killed server (nobody answers) is replaced.
  auto again = Server::Start({.listen = dir.Listen()});
  EXPECT_TRUE(again.ok()) << again.status().ToString();
}

TEST(ServerTest, UnixSocketInADirectoryOthersMayEnterIsRefused) {
  PrivateDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  auto server = Server::Start({.listen = dir.Listen()});
  EXPECT_EQ(server.status().code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(server.status().message().find("other users may enter it"), std::string::npos)
      << server.status().message();
  EXPECT_EQ(Server::Start({.listen = "grpc+unix://relative.sock"}).status().code(),
            ErrorCode::kInvalidArgument);
}

TEST(ServerTest, TheReceiveLimitDefaultsToTheCapacityOfWhatDoPutCreates) {
  PrivateDir dir;
  auto server = Server::Start({.listen = dir.Listen(), .put_capacity = 8 << 20});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  EXPECT_EQ((*server)->max_message_bytes(), size_t{9} << 20);
  EXPECT_EQ(Server::Start({.listen = dir.Listen() + "x", .max_message_bytes = size_t{3} << 30})
                .status()
                .code(),
            ErrorCode::kInvalidArgument)
      << "above gRPC's 2 GiB";
}

TEST(AddressTest, UnixSocketsAndTheirRemoteChannels) {
  auto unix_socket = ParseAddress("grpc+unix:///run/q/flight.sock", "x");
  ASSERT_TRUE(unix_socket.ok()) << unix_socket.status().ToString();
  EXPECT_EQ(unix_socket->unix_socket, "/run/q/flight.sock");
  EXPECT_EQ(ParseAddress("grpc+unix://flight.sock", "x").status().code(),
            ErrorCode::kInvalidArgument);
  auto remote = ParseRemoteChannel("grpc+unix:///run/q/flight.sock/ledger?from=oldest");
  ASSERT_TRUE(remote.ok()) << remote.status().ToString();
  EXPECT_EQ(remote->location, "grpc+unix:///run/q/flight.sock");
  EXPECT_EQ(remote->channel, "ledger");
  EXPECT_EQ(remote->ticket, "ledger?from=oldest");
}

// The whole path in one process: DoPut into a channel from a C++ Flight client, a local
// subscriber reads it; a DoGet tail streams what a local publisher publishes.
TEST(ServerTest, DoPutAndDoGetRoundTrip) {
  PrivateDir dir;
  auto server = Server::Start({.listen = dir.Listen()});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  auto location = fl::Location::Parse((*server)->location());
  auto client = fl::FlightClient::Connect(*location);
  ASSERT_TRUE(client.ok()) << client.status().ToString();

  const std::string name = UniqueName("server-roundtrip");
  auto batch = Batch(0, 100);
  auto channel = CreateArrowChannel(name, batch->schema(), {.capacity = 1 << 20});
  ASSERT_TRUE(channel.ok());
  auto subscriber = ArrowSubscriber::Make(*channel);
  ASSERT_TRUE(subscriber.ok());
  auto put = (*client)->DoPut(fl::FlightDescriptor::Path({name}), batch->schema());
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  ASSERT_TRUE(put->writer->WriteRecordBatch(*batch).ok());
  ASSERT_TRUE(put->writer->Close().ok());
  auto received = subscriber->Receive(std::chrono::seconds(5));
  ASSERT_TRUE(received.ok()) << received.status().ToString();
  EXPECT_TRUE(received->batch->Equals(*batch));

  // A tail of a channel whose publisher is gone ends at once: publish with a live one.
  auto made = ArrowPublisher::Make(*channel);
  ASSERT_TRUE(made.ok());
  std::optional<ArrowPublisher> publisher(std::move(*made));
  auto get = (*client)->DoGet(fl::Ticket{name});
  ASSERT_TRUE(get.ok()) << get.status().ToString();
  std::thread publish([&] {
    while (channel->Stats().subscribers.size() < 2) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    for (int i = 0; i < 10; ++i) EXPECT_TRUE(publisher->Publish(*Batch(i * 100, 100)).ok());
    publisher.reset();  // the tail ends once everything was sent
  });
  auto all = (*get)->ToRecordBatches();
  publish.join();
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 10u);
  EXPECT_TRUE((*all)[9]->Equals(*Batch(900, 100)));
}

// from=oldest: the batches a slow local reader still holds come first, then the live ones.
TEST(ServerTest, DoGetFromOldestStreamsTheBacklogFirst) {
  PrivateDir dir;
  auto server = Server::Start({.listen = dir.Listen()});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  auto client = fl::FlightClient::Connect(*fl::Location::Parse((*server)->location()));
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  const std::string name = UniqueName("server-oldest");
  auto channel = CreateArrowChannel(name, Batch(0, 1)->schema(), {.capacity = 1 << 20});
  ASSERT_TRUE(channel.ok());
  auto slow = channel->CreateSubscriber();  // reads nothing: everything stays its backlog
  ASSERT_TRUE(slow.ok());
  auto made = ArrowPublisher::Make(*channel);
  ASSERT_TRUE(made.ok());
  std::optional<ArrowPublisher> publisher(std::move(*made));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(publisher->Publish(*Batch(i * 10, 10)).ok());

  auto get = (*client)->DoGet(fl::Ticket{name + "?from=oldest"});
  ASSERT_TRUE(get.ok()) << get.status().ToString();
  std::thread publish([&] {
    while (channel->Stats().subscribers.size() < 2) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    for (int i = 3; i < 5; ++i) EXPECT_TRUE(publisher->Publish(*Batch(i * 10, 10)).ok());
    publisher.reset();
  });
  auto all = (*get)->ToRecordBatches();
  publish.join();
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE((*all)[i]->Equals(*Batch(i * 10, 10))) << i;
}

TEST(ComputeTicketTest, ParsesServiceAndRequestAndRefusesTheRest) {
  EXPECT_TRUE(IsComputeTicket(R"( {"service": "s"})"));
  EXPECT_FALSE(IsComputeTicket("ledger?from=oldest"));
  auto ok = ParseComputeTicket(R"({"service": "sum", "request": {"plan": 7}})");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->service, "sum");
  EXPECT_EQ(ok->request["plan"], 7);
  EXPECT_EQ(ParseComputeTicket(R"({"service": "sum")").status().code(),
            ErrorCode::kInvalidArgument);  // not JSON
  EXPECT_EQ(ParseComputeTicket(R"({"request": {}})").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ParseComputeTicket(R"({"service": "a/b"})").status().code(),
            ErrorCode::kInvalidArgument);  // not a name: never a path
  EXPECT_EQ(ParseComputeTicket(R"({"service": "s", "plan": 1})").status().code(),
            ErrorCode::kInvalidArgument);
  const std::string huge = R"({"service": "s", "request": ")" + std::string(70000, 'x') + "\"}";
  EXPECT_EQ(ParseComputeTicket(huge).status().code(), ErrorCode::kResourceExhausted);
}

// A service in this process: "count" publishes request.batches batches of request.rows
// rows (ids from 0), or fails with its message when the request says so.
std::unique_ptr<control::Service> CountService(const std::string& name) {
  auto service = control::Service::Listen(
      name, Batch(0, 1)->schema(),
      [](control::ServiceCall& call) -> Status {
        const nlohmann::json& request = call.request;
        if (request.contains("fail")) return Status::InvalidArgument(request["fail"]);
        if (call.inputs != nullptr) {  // an exchange: each batch back with its ids doubled
          while (true) {
            Result<ArrowSample> in = call.inputs->Receive(std::chrono::seconds(10));
            if (!in.ok() && in.status().code() == ErrorCode::kPeerGone) return Status::OK();
            QUIVER_RETURN_IF_ERROR(in.status());
            const auto& ids = static_cast<const arrow::Int64Array&>(*in->batch->column(0));
            QUIVER_RETURN_IF_ERROR(
                call.results.Publish(*Batch(ids.Value(0) * 2, in->batch->num_rows())));
          }
        }
        const int64_t rows = request.value("rows", 10);
        for (int64_t b = 0; b < request.value("batches", 1); ++b) {
          QUIVER_RETURN_IF_ERROR(call.results.Publish(*Batch(b * rows, rows)));
        }
        return Status::OK();
      },
      {.description = "counts"});
  EXPECT_TRUE(service.ok()) << service.status().ToString();
  if (!service.ok()) return nullptr;
  (*service)->Start();
  return std::move(*service);
}

TEST(ServerTest, AComputeTicketRunsTheServiceAndStreamsItsBatches) {
  PrivateDir dir;
  auto server = Server::Start({.listen = dir.Listen()});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  auto client = fl::FlightClient::Connect(*fl::Location::Parse((*server)->location()));
  ASSERT_TRUE(client.ok());
  const std::string name = UniqueName("svc");
  auto service = CountService(name);
  ASSERT_NE(service, nullptr);

  const std::string ticket =
      R"({"service": ")" + name + R"(", "request": {"batches": 4, "rows": 25}})";
  auto get = (*client)->DoGet(fl::Ticket{ticket});
  ASSERT_TRUE(get.ok()) << get.status().ToString();
  auto all = (*get)->ToRecordBatches();
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 4u);
  for (int b = 0; b < 4; ++b) EXPECT_TRUE((*all)[b]->Equals(*Batch(b * 25, 25))) << b;

  // Listed beside the channels, with its schema; its descriptor is the ticket's JSON.
  auto listing = (*client)->ListFlights();
  ASSERT_TRUE(listing.ok());
  bool listed = false;
  while (true) {
    auto info = (*listing)->Next();
    ASSERT_TRUE(info.ok());
    if (*info == nullptr) break;
    if ((*info)->descriptor().type != fl::FlightDescriptor::CMD) continue;
    auto cmd = nlohmann::json::parse((*info)->descriptor().cmd);
    if (cmd["service"] != name) continue;
    listed = true;
    arrow::ipc::DictionaryMemo memo;
    auto schema = (*info)->GetSchema(&memo);
    ASSERT_TRUE(schema.ok());
    EXPECT_TRUE((*schema)->Equals(*Batch(0, 1)->schema()));
    EXPECT_EQ(nlohmann::json::parse((*info)->app_metadata())["description"], "counts");
  }
  EXPECT_TRUE(listed);
}

TEST(ServerTest, AComputeTicketsErrorsAreClearGrpcStatuses) {
  PrivateDir dir;
  auto server = Server::Start({.listen = dir.Listen()});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  auto client = fl::FlightClient::Connect(*fl::Location::Parse((*server)->location()));
  ASSERT_TRUE(client.ok());
  const std::string name = UniqueName("svc-err");
  auto service = CountService(name);
  ASSERT_NE(service, nullptr);
  auto run = [&](const std::string& ticket) -> arrow::Status {
    auto get = (*client)->DoGet(fl::Ticket{ticket});
    if (!get.ok()) return get.status();
    return (*get)->ToRecordBatches().status();
  };
  // The worker's error, with its chain.
  arrow::Status failed =
      run(R"({"service": ")" + name + R"(", "request": {"fail": "plan 7 does not exist"}})");
  EXPECT_TRUE(failed.IsInvalid()) << failed.ToString();
  EXPECT_NE(failed.ToString().find("plan 7 does not exist"), std::string::npos)
      << failed.ToString();
  EXPECT_NE(failed.ToString().find("service '" + name + "' failed"), std::string::npos);
  // Nobody serves it: NOT_FOUND naming the services there are.
  arrow::Status unknown = run(R"({"service": "nobody-serves-this"})");
  EXPECT_TRUE(unknown.IsKeyError()) << unknown.ToString();
  EXPECT_NE(unknown.ToString().find(name), std::string::npos) << unknown.ToString();
  EXPECT_TRUE(run(R"({"service": )").IsInvalid());
  const std::string huge =
      R"({"service": ")" + name + R"(", "request": ")" + std::string(70000, 'x') + "\"}";
  EXPECT_FALSE(run(huge).ok());
  // The service still serves after all that.
  EXPECT_TRUE(run(R"({"service": ")" + name + R"("})").ok());
}

// DoExchange: the client's batches are the service's input; its results come back on the
// same call (the count service doubles each batch's first id).
TEST(ServerTest, DoExchangeStreamsBatchesInAndTheServicesResultsBack) {
  PrivateDir dir;
  auto server = Server::Start({.listen = dir.Listen()});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  auto client = fl::FlightClient::Connect(*fl::Location::Parse((*server)->location()));
  ASSERT_TRUE(client.ok());
  const std::string name = UniqueName("svc-x");
  auto service = CountService(name);
  ASSERT_NE(service, nullptr);
  auto exchange =
      (*client)->DoExchange(fl::FlightDescriptor::Command(R"({"service": ")" + name + R"("})"));
  ASSERT_TRUE(exchange.ok()) << exchange.status().ToString();
  ASSERT_TRUE(exchange->writer->Begin(Batch(0, 1)->schema()).ok());
  for (int i = 1; i <= 5; ++i) {
    ASSERT_TRUE(exchange->writer->WriteRecordBatch(*Batch(i * 100, 10)).ok());
    auto back = exchange->reader->Next();  // each batch's answer before the next is sent
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    ASSERT_NE(back->data, nullptr);
    EXPECT_TRUE(back->data->Equals(*Batch(i * 200, 10))) << i;
  }
  ASSERT_TRUE(exchange->writer->DoneWriting().ok());
  auto end = exchange->reader->Next();
  ASSERT_TRUE(end.ok()) << end.status().ToString();
  EXPECT_EQ(end->data, nullptr);
  EXPECT_TRUE(exchange->writer->Close().ok());

  // A path descriptor is no compute ticket.
  auto wrong = (*client)->DoExchange(fl::FlightDescriptor::Path({name}));
  ASSERT_TRUE(wrong.ok()) << wrong.status().ToString();  // the call starts; its status comes
  (void)wrong->writer->Begin(Batch(0, 1)->schema());     // the server may have ended it
  auto next = wrong->reader->Next();
  EXPECT_FALSE(next.ok());
  EXPECT_NE(next.status().ToString().find("CMD descriptor"), std::string::npos)
      << next.status().ToString();
}

TEST(ServiceTest, ALiveNameIsRefusedAndADeadOnesSocketReplaced) {
  const std::string name = UniqueName("svc-twice");
  auto first = CountService(name);
  ASSERT_NE(first, nullptr);
  auto second = control::Service::Listen(name, Batch(0, 1)->schema(),
                                         [](control::ServiceCall&) { return Status::OK(); });
  EXPECT_EQ(second.status().code(), ErrorCode::kAlreadyExists) << second.status().ToString();
  auto listed = control::ListServices();
  ASSERT_TRUE(listed.ok());
  EXPECT_NE(std::find(listed->begin(), listed->end(), name), listed->end());
  first.reset();
  listed = control::ListServices();
  EXPECT_EQ(std::find(listed->begin(), listed->end(), name), listed->end());
}

}  // namespace
}  // namespace quiver::flight
