#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "control/connection.h"
#include "control/server.h"
#include "test_support.h"

namespace quiver::control {
namespace {

using nlohmann::json;

// Echoes CMD_PROCESS's handle back as RES_DATA_READY; fails CMD_STREAM_START with a chain.
Result<Envelope> EchoHandler(const Envelope& request) {
  if (request.type == kCmdStreamStart) {
    return Status::ShmCorruption("bad magic")
        .Wrap(ErrorCode::kSchemaMismatch, "cannot start the stream");
  }
  Envelope response = MakeEnvelope(kResDataReady);
  response.shm_handle = request.shm_handle;
  return response;
}

// EchoHandler for CMD_PROCESS and CMD_STREAM_START (Handlers::Add refuses nothing here).
Handlers HandlersOf(Handler handler) {
  Handlers handlers;
  EXPECT_TRUE(handlers.Add(kCmdProcess, handler).ok());
  EXPECT_TRUE(handlers.Add(kCmdStreamStart, handler).ok());
  return handlers;
}

Handlers EchoHandlers() { return HandlersOf(EchoHandler); }

std::string Request(std::string_view type, const std::string& id, json payload = json::object()) {
  Envelope e = MakeEnvelope(type, std::move(payload));
  e.msg_id = id;
  if (type == kCmdProcess) e.shm_handle = ShmHandle{"x", 0, 8, ShmFormat::kRaw};
  return Serialize(e);
}

struct Expected {
  std::string type;
  std::string code;    // for RES_ERROR_V2
  std::string msg_id;  // empty: null
};

// A mix of good and bad lines and the answers they must get, in order.
void MixedConversation(std::vector<std::string>* lines, std::vector<Expected>* expected) {
  const std::string a = NewMsgId(), b = NewMsgId(), c = NewMsgId(), d = NewMsgId(), e = NewMsgId();
  *lines = {
      Request(kCmdProcess, a),
      "{not json",
      std::string(200 << 10, 'x'),  // far beyond the line limit
      Request(kCmdStreamStart, b),
      "",
      R"({"protocol_v":"3.0.0","msg_id":")" + c + R"(","type":"CMD_PROCESS","payload":{}})",
      R"({"protocol_v":"2.0.0","msg_id":")" + d + R"(","type":"CMD_FLY","payload":{}})",
      Request(kResOk, e),
      Request(kCmdProcess, e),
  };
  *expected = {
      {"RES_DATA_READY", "", a},
      {"RES_ERROR_V2", "INVALID_ENVELOPE", ""},
      {"RES_ERROR_V2", "LINE_TOO_LONG", ""},
      {"RES_ERROR_V2", "SCHEMA_MISMATCH", b},
      {"RES_ERROR_V2", "INVALID_ENVELOPE", ""},
      {"RES_ERROR_V2", "UNSUPPORTED_VERSION", c},
      {"RES_ERROR_V2", "UNKNOWN_TYPE", d},
      {"RES_ERROR_V2", "UNEXPECTED_TYPE", e},
      {"RES_DATA_READY", "", e},
  };
}

// Writes every line from a second thread (so a large line cannot deadlock against the
// answers), then reads and checks the answers in order, then shuts the server side down.
void Converse(Connection& client) {
  std::vector<std::string> lines;
  std::vector<Expected> expected;
  MixedConversation(&lines, &expected);
  std::thread writer([&] {
    for (const std::string& line : lines) ASSERT_TRUE(client.WriteLine(line).ok());
  });
  for (const Expected& want : expected) {
    auto line = client.ReadLine();
    ASSERT_TRUE(line.ok()) << line.status().ToString();
    ASSERT_TRUE(line->has_value());
    ParseOutcome answer = ParseEnvelope(**line);
    ASSERT_TRUE(answer.ok()) << **line;
    EXPECT_EQ(answer.envelope->type, want.type) << **line;
    EXPECT_EQ(answer.envelope->msg_id, want.msg_id) << **line;
    if (!want.code.empty()) {
      EXPECT_EQ(answer.envelope->payload["code"], want.code) << **line;
    }
  }
  writer.join();
  const std::string id = NewMsgId();
  ASSERT_TRUE(client.WriteLine(Request(kCmdShutdown, id)).ok());
  auto ack = client.ReadLine();
  ASSERT_TRUE(ack.ok() && ack->has_value());
  ParseOutcome parsed = ParseEnvelope(**ack);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed.envelope->type, kResOk);
  EXPECT_EQ(parsed.envelope->msg_id, id);
  // The server ends the connection after the acknowledgement.
  auto eof = client.ReadLine();
  ASSERT_TRUE(eof.ok()) << eof.status().ToString();
  EXPECT_FALSE(eof->has_value());
}

constexpr char kToken[] = "s3cret-control-token";

struct Logs {
  std::mutex mu;
  std::vector<std::string> lines;
  // The conversations' handles name channel "x": the server exposes it and nothing else.
  ServeOptions options() {
    return {.log =
                [this](std::string_view line) {
                  std::lock_guard lock(mu);
                  lines.emplace_back(line);
                },
            .exposes = [](std::string_view channel) { return channel == "x"; },
            .token = kToken};
  }
};

// Authenticates a TCP connection (CMD_AUTH with `token`); returns the answer's type name.
std::string Authenticate(Connection& client, const std::string& token) {
  Envelope auth = MakeEnvelope(kCmdAuth, {{"token", token}});
  EXPECT_TRUE(client.WriteLine(Serialize(auth)).ok());
  auto line = client.ReadLine();
  if (!line.ok() || !line->has_value()) return "(none)";
  ParseOutcome answer = ParseEnvelope(**line);
  if (!answer.ok()) return "(bad)";
  if (answer.envelope->type == kResErrorV2) {
    return answer.envelope->payload["code"].get<std::string>();
  }
  return answer.envelope->type;
}

TEST(ControlServerTest, SocketpairAnswersEveryLineInOrderAndLogsTheBadOnes) {
  auto pair = Connection::Pair();
  ASSERT_TRUE(pair.ok());
  Logs logs;
  Result<ConnectionEnd> end = Status::IoError("not run");
  std::thread server([&] { end = ServeConnection(pair->second, EchoHandlers(), logs.options()); });
  Converse(pair->first);
  server.join();
  ASSERT_TRUE(end.ok()) << end.status().ToString();
  EXPECT_EQ(*end, ConnectionEnd::kShutdown);
  EXPECT_EQ(logs.lines.size(), 6u);  // every protocol error, not the handler's own error
}

TEST(ControlServerTest, UnixSocketServerAnswersInOrder) {
  const std::string path = "/tmp/quiver-ctl-test-" + NewMsgId().substr(0, 8) + ".sock";
  Logs logs;
  auto server = Server::ListenUnix(path, EchoHandlers(), logs.options());
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  (*server)->Start();
  auto again = Server::ListenUnix(path, EchoHandlers());
  EXPECT_FALSE(again.ok());
  auto client = Connection::ConnectUnix(path);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  Converse(*client);
  server->reset();
  EXPECT_NE(::access(path.c_str(), F_OK), 0);  // the socket file is removed
}

TEST(ControlServerTest, TcpLoopbackServerOnEphemeralPortServesTwoClientsAtOnce) {
  Logs logs;
  auto server = Server::ListenTcp(0, EchoHandlers(), logs.options());
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  ASSERT_NE((*server)->port(), 0);
  (*server)->Start();
  auto idle = Connection::ConnectTcp((*server)->port());  // stays open, must not block others
  ASSERT_TRUE(idle.ok());
  ASSERT_EQ(Authenticate(*idle, kToken), "RES_OK");
  auto client = Connection::ConnectTcp((*server)->port());
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  ASSERT_EQ(Authenticate(*client, kToken), "RES_OK");
  Converse(*client);
  server->reset();  // stops with `idle` still connected
  auto after = idle->ReadLine();
  ASSERT_TRUE(after.ok());
  EXPECT_FALSE(after->has_value());
}

TEST(ControlServerTest, PartialLineAtEndOfStreamIsAnsweredThenTheConnectionEnds) {
  auto pair = Connection::Pair();
  ASSERT_TRUE(pair.ok());
  ASSERT_EQ(::write(pair->first.write_fd(), "{\"protocol_v\":", 14), 14);
  ::shutdown(pair->first.write_fd(), SHUT_WR);
  Logs logs;
  auto end = ServeConnection(pair->second, EchoHandlers(), logs.options());
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(*end, ConnectionEnd::kEndOfStream);
  auto answer = pair->first.ReadLine();
  ASSERT_TRUE(answer.ok() && answer->has_value());
  EXPECT_EQ(ParseEnvelope(**answer).envelope->payload["code"], "INVALID_ENVELOPE");
  EXPECT_EQ(logs.lines.size(), 1u);
}

TEST(ControlServerTest, ThrowingHandlerIsAnsweredInternal) {
  auto pair = Connection::Pair();
  ASSERT_TRUE(pair.ok());
  Logs logs;
  std::thread server([&] {
    (void)ServeConnection(pair->second, HandlersOf([](const Envelope&) -> Result<Envelope> {
                            throw std::runtime_error("boom");
                          }),
                          logs.options());
  });
  const std::string id = NewMsgId();
  ASSERT_TRUE(pair->first.WriteLine(Request(kCmdProcess, id)).ok());
  auto answer = pair->first.ReadLine();
  ASSERT_TRUE(answer.ok() && answer->has_value());
  ParseOutcome parsed = ParseEnvelope(**answer);
  EXPECT_EQ(parsed.envelope->payload["code"], "INTERNAL");
  EXPECT_EQ(parsed.envelope->msg_id, id);
  pair->first.Shutdown();
  server.join();
}

TEST(ControlServerTest, HandleToAChannelTheServerDoesNotExposeIsRefusedBeforeTheHandler) {
  auto pair = Connection::Pair();
  ASSERT_TRUE(pair.ok());
  std::atomic<int> handled{0};
  Logs logs;
  std::thread server([&] {
    (void)ServeConnection(pair->second,
                          HandlersOf([&](const Envelope& request) -> Result<Envelope> {
                            ++handled;
                            return EchoHandler(request);
                          }),
                          logs.options());
  });
  for (const std::string channel : {"secrets", "x-other", ""}) {
    Envelope request = MakeEnvelope(kCmdProcess);
    request.shm_handle = ShmHandle{channel, 0, 8, ShmFormat::kRaw};
    ASSERT_TRUE(pair->first.WriteLine(Serialize(request)).ok());
    auto answer = pair->first.ReadLine();
    ASSERT_TRUE(answer.ok() && answer->has_value());
    ParseOutcome parsed = ParseEnvelope(**answer);
    ASSERT_TRUE(parsed.ok()) << **answer;
    if (channel.empty()) {  // not even a valid handle
      EXPECT_EQ(parsed.envelope->payload["code"], "INVALID_ENVELOPE");
      continue;
    }
    EXPECT_EQ(parsed.envelope->payload["code"], "PERMISSION_DENIED") << **answer;
    EXPECT_EQ(parsed.envelope->msg_id, request.msg_id);
  }
  ASSERT_TRUE(pair->first.WriteLine(Request(kCmdProcess, NewMsgId())).ok());
  auto exposed = pair->first.ReadLine();
  ASSERT_TRUE(exposed.ok() && exposed->has_value());
  EXPECT_EQ(ParseEnvelope(**exposed).envelope->type, kResDataReady);
  EXPECT_EQ(handled.load(), 1) << "refused requests never reach the handler";
  pair->first.Shutdown();
  server.join();

  // With no exposes at all, no handle is accepted.
  auto bare = Connection::Pair();
  ASSERT_TRUE(bare.ok());
  std::thread bare_server([&] { (void)ServeConnection(bare->second, EchoHandlers()); });
  ASSERT_TRUE(bare->first.WriteLine(Request(kCmdProcess, NewMsgId())).ok());
  auto refused = bare->first.ReadLine();
  ASSERT_TRUE(refused.ok() && refused->has_value());
  EXPECT_EQ(ParseEnvelope(**refused).envelope->payload["code"], "PERMISSION_DENIED");
  bare->first.Shutdown();
  bare_server.join();
}

TEST(ControlServerTest, TcpNeedsATokenAndEveryConnectionMustAuthenticateFirst) {
  EXPECT_EQ(Server::ListenTcp(0, EchoHandlers()).status().code(), ErrorCode::kInvalidArgument);
  Logs logs;
  auto server = Server::ListenTcp(0, EchoHandlers(), logs.options());
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  (*server)->Start();
  auto connect = [&] { return std::move(*Connection::ConnectTcp((*server)->port())); };
  {
    Connection wrong = connect();
    EXPECT_EQ(Authenticate(wrong, "guess"), "UNAUTHENTICATED");
    auto eof = wrong.ReadLine();  // and the server closed it
    ASSERT_TRUE(eof.ok());
    EXPECT_FALSE(eof->has_value());
  }
  {
    Connection eager = connect();  // a request before CMD_AUTH
    ASSERT_TRUE(eager.WriteLine(Request(kCmdProcess, NewMsgId())).ok());
    auto answer = eager.ReadLine();
    ASSERT_TRUE(answer.ok() && answer->has_value());
    EXPECT_EQ(ParseEnvelope(**answer).envelope->payload["code"], "UNAUTHENTICATED");
  }
  Connection right = connect();
  ASSERT_EQ(Authenticate(right, kToken), "RES_OK");
  ASSERT_TRUE(right.WriteLine(Request(kCmdProcess, NewMsgId())).ok());
  auto answer = right.ReadLine();
  ASSERT_TRUE(answer.ok() && answer->has_value());
  EXPECT_EQ(ParseEnvelope(**answer).envelope->type, kResDataReady);
}

TEST(ControlServerTest, SilentConnectionsAreClosed) {
  Logs logs;
  ServeOptions options = logs.options();
  options.auth_timeout = std::chrono::milliseconds(200);
  options.idle_timeout = std::chrono::milliseconds(300);
  auto server = Server::ListenTcp(0, EchoHandlers(), options);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  (*server)->Start();
  auto mute = Connection::ConnectTcp((*server)->port());  // never authenticates
  ASSERT_TRUE(mute.ok());
  auto idle = Connection::ConnectTcp((*server)->port());  // authenticates, then says nothing
  ASSERT_TRUE(idle.ok());
  ASSERT_EQ(Authenticate(*idle, kToken), "RES_OK");
  for (Connection* c : {&*mute, &*idle}) {
    auto eof = c->ReadLine(std::chrono::seconds(10));
    ASSERT_TRUE(eof.ok()) << eof.status().ToString();
    EXPECT_FALSE(eof->has_value()) << "the server closed it";
  }
}

TEST(ControlServerTest, ConnectionsPastTheLimitAreRefusedAndTheServerGoesOn) {
  const std::string path = "/tmp/quiver-ctl-limit-" + NewMsgId().substr(0, 8) + ".sock";
  Logs logs;
  ServeOptions options = logs.options();
  options.max_connections = 2;
  auto server = Server::ListenUnix(path, EchoHandlers(), options);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  (*server)->Start();
  std::vector<Connection> held;
  for (int i = 0; i < 2; ++i) {
    held.push_back(std::move(*Connection::ConnectUnix(path)));
    ASSERT_TRUE(held.back().WriteLine(Request(kCmdProcess, NewMsgId())).ok());
    ASSERT_TRUE(held.back().ReadLine().ok());  // served: it holds a slot now
  }
  auto third = Connection::ConnectUnix(path);
  ASSERT_TRUE(third.ok());
  auto refused = third->ReadLine(std::chrono::seconds(10));
  ASSERT_TRUE(refused.ok() && refused->has_value()) << refused.status().ToString();
  EXPECT_EQ(ParseEnvelope(**refused).envelope->payload["code"], "RESOURCE_EXHAUSTED");
  held.clear();  // slots come back once those end
  for (int attempt = 0;; ++attempt) {
    auto next = Connection::ConnectUnix(path);
    ASSERT_TRUE(next.ok());
    // While a slot is still taken, the server refuses and closes, maybe before our request
    // is written (EPIPE) or read (a reset): then try again.
    if (next->WriteLine(Request(kCmdProcess, NewMsgId())).ok()) {
      auto answer = next->ReadLine(std::chrono::seconds(10));
      if (answer.ok() && answer->has_value() &&
          ParseEnvelope(**answer).envelope->type == kResDataReady) {
        break;
      }
    }
    ASSERT_LT(attempt, 100) << "the freed slots never came back";
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// Limits the calling process to a few thread stacks (8 MiB each) more than it maps now.
bool LimitAddressSpace() {
  std::ifstream status("/proc/self/status");
  size_t vm_kib = 0;
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmSize:", 0) == 0) vm_kib = std::stoul(line.substr(7));
  }
  const rlimit space{(vm_kib << 10) + (size_t{40} << 20), (vm_kib << 10) + (size_t{40} << 20)};
  return vm_kib != 0 && ::setrlimit(RLIMIT_AS, &space) == 0;
}

// A server in a child process squeezed by `squeeze` is flooded with silent connections;
// afterwards the process is alive and serves a new client.
void FloodSurvives(const std::function<bool()>& squeeze) {
  const std::string path = "/tmp/quiver-ctl-exhaust-" + NewMsgId().substr(0, 8) + ".sock";
  testing::Signal ready;
  testing::Child server([&] {
    ServeOptions options = Logs().options();
    options.max_connections = 10000;
    options.log = {};  // stderr: what it refused shows in the test's output
    auto listening = Server::ListenUnix(path, EchoHandlers(), options);
    if (!listening.ok() || !squeeze()) return 2;
    ready.Notify();
    return (*listening)->Run().ok() ? 0 : 1;  // Run returns only on an unexpected error
  });
  ready.Await();
  std::vector<UniqueFd> flood;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  // Past 32 fds: the server accepts until it runs out, then its listen queue (16) fills up.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (flood.size() < 36 && std::chrono::steady_clock::now() < give_up) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) {
      flood.push_back(std::move(fd));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // a full queue: wait
    }
  }
  ASSERT_GE(flood.size(), 36u) << "more connections than the server has fds";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_EQ(::kill(server.pid(), 0), 0) << "the server process died";
  flood.clear();
  bool served = false;
  for (int attempt = 0; attempt < 200 && !served; ++attempt) {
    auto c = Connection::ConnectUnix(path);
    if (c.ok() && c->WriteLine(Request(kCmdProcess, NewMsgId())).ok()) {
      auto answer = c->ReadLine(std::chrono::seconds(5));
      served = answer.ok() && answer->has_value() &&
               ParseEnvelope(**answer).envelope->type == kResDataReady;
    }
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(served) << "the server never served again";
  EXPECT_EQ(::kill(server.pid(), 0), 0) << "the server process died";
  server.Kill(SIGKILL);
  server.Wait();
  ::unlink(path.c_str());
}

// ~1,020 idle connections once exhausted the fds (EMFILE) and took the accept loop down.
TEST(ControlServerTest, RunningOutOfFdsRefusesConnectionsNotTheServer) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // Their runtimes need fds of their own (UBSan's vptr check reads /proc/self/maps and,
  // without one, reports every virtual call as a bad vptr): no fd limit under them.
  GTEST_SKIP() << "a sanitizer runtime cannot run out of fds";
#endif
  FloodSurvives([] {
    const rlimit fds{32, 32};
    return ::setrlimit(RLIMIT_NOFILE, &fds) == 0;
  });
}

// A failed thread creation (std::system_error) used to abort the whole process.
TEST(ControlServerTest, RunningOutOfThreadsRefusesConnectionsNotTheProcess) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "sanitizers reserve terabytes of shadow memory: no address-space limit";
#else
  FloodSurvives(LimitAddressSpace);
#endif
}

TEST(ConnectionTest, OversizedLineIsReportedOnceAndSkipped) {
  auto pair = Connection::Pair();
  ASSERT_TRUE(pair.ok());
  Connection reader =
      Connection::FromSocket(UniqueFd(::dup(pair->second.read_fd())), /*max_line=*/16);
  std::thread writer([&] {
    ASSERT_TRUE(pair->first.WriteLine("short").ok());
    ASSERT_TRUE(pair->first.WriteLine(std::string(1 << 20, 'y')).ok());
    ASSERT_TRUE(pair->first.WriteLine("exactly-16-bytes").ok());
    ASSERT_TRUE(pair->first.WriteLine("seventeen-bytes!!").ok());
    ASSERT_TRUE(pair->first.WriteLine("").ok());
    pair->first.Shutdown();
  });
  EXPECT_EQ(**reader.ReadLine(), "short");
  EXPECT_EQ(reader.ReadLine().status().code(), ErrorCode::kCapacityExceeded);
  EXPECT_EQ(**reader.ReadLine(), "exactly-16-bytes");
  EXPECT_EQ(reader.ReadLine().status().code(), ErrorCode::kCapacityExceeded);
  EXPECT_EQ(**reader.ReadLine(), "");
  auto eof = reader.ReadLine();
  ASSERT_TRUE(eof.ok());
  EXPECT_FALSE(eof->has_value());
  writer.join();
}

TEST(ConnectionTest, ConnectToNothingIsNotFound) {
  auto unix_client = Connection::ConnectUnix("/tmp/quiver-ctl-nothing-" + NewMsgId());
  ASSERT_FALSE(unix_client.ok());
  EXPECT_EQ(unix_client.status().code(), ErrorCode::kNotFound);
  auto too_long = Connection::ConnectUnix(std::string(200, 'p'));
  EXPECT_EQ(too_long.status().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace quiver::control
