#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "control/connection.h"
#include "control/server.h"

namespace quiver::control {
namespace {

using nlohmann::json;

// Echoes CMD_PROCESS's handle back as RES_DATA_READY; fails CMD_STREAM_START with a chain.
Result<Envelope> EchoHandler(const Envelope& request) {
  if (request.type == MessageType::kCmdStreamStart) {
    return Status(ErrorCode::kShmCorruption, "bad magic")
        .Wrap(ErrorCode::kSchemaMismatch, "cannot start the stream");
  }
  Envelope response = MakeEnvelope(MessageType::kResDataReady);
  response.shm_handle = request.shm_handle;
  return response;
}

std::string Request(MessageType type, const std::string& id, json payload = json::object()) {
  Envelope e = MakeEnvelope(type, std::move(payload));
  e.msg_id = id;
  if (type == MessageType::kCmdProcess) e.shm_handle = ShmHandle{"x", 0, 8, ShmFormat::kRaw};
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
      Request(MessageType::kCmdProcess, a),
      "{not json",
      std::string(200 << 10, 'x'),  // far beyond the line limit
      Request(MessageType::kCmdStreamStart, b),
      "",
      R"({"protocol_v":"3.0.0","msg_id":")" + c + R"(","type":"CMD_PROCESS","payload":{}})",
      R"({"protocol_v":"2.0.0","msg_id":")" + d + R"(","type":"CMD_FLY","payload":{}})",
      Request(MessageType::kResOk, e),
      Request(MessageType::kCmdProcess, e),
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
    EXPECT_EQ(MessageTypeName(answer.envelope->type), want.type) << **line;
    EXPECT_EQ(answer.envelope->msg_id, want.msg_id) << **line;
    if (!want.code.empty()) {
      EXPECT_EQ(answer.envelope->payload["code"], want.code) << **line;
    }
  }
  writer.join();
  const std::string id = NewMsgId();
  ASSERT_TRUE(client.WriteLine(Request(MessageType::kCmdShutdown, id)).ok());
  auto ack = client.ReadLine();
  ASSERT_TRUE(ack.ok() && ack->has_value());
  ParseOutcome parsed = ParseEnvelope(**ack);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed.envelope->type, MessageType::kResOk);
  EXPECT_EQ(parsed.envelope->msg_id, id);
  // The server ends the connection after the acknowledgement.
  auto eof = client.ReadLine();
  ASSERT_TRUE(eof.ok()) << eof.status().ToString();
  EXPECT_FALSE(eof->has_value());
}

struct Logs {
  std::mutex mu;
  std::vector<std::string> lines;
  ServeOptions options() {
    return {.log = [this](std::string_view line) {
      std::lock_guard lock(mu);
      lines.emplace_back(line);
    }};
  }
};

TEST(ControlServerTest, SocketpairAnswersEveryLineInOrderAndLogsTheBadOnes) {
  auto pair = Connection::Pair();
  ASSERT_TRUE(pair.ok());
  Logs logs;
  Result<ConnectionEnd> end = Status(ErrorCode::kIoError, "not run");
  std::thread server([&] { end = ServeConnection(pair->second, EchoHandler, logs.options()); });
  Converse(pair->first);
  server.join();
  ASSERT_TRUE(end.ok()) << end.status().ToString();
  EXPECT_EQ(*end, ConnectionEnd::kShutdown);
  EXPECT_EQ(logs.lines.size(), 6u);  // every protocol error, not the handler's own error
}

TEST(ControlServerTest, UnixSocketServerAnswersInOrder) {
  const std::string path = "/tmp/quiver-ctl-test-" + NewMsgId().substr(0, 8) + ".sock";
  Logs logs;
  auto server = Server::ListenUnix(path, EchoHandler, logs.options());
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  (*server)->Start();
  auto again = Server::ListenUnix(path, EchoHandler);
  EXPECT_FALSE(again.ok());
  auto client = Connection::ConnectUnix(path);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  Converse(*client);
  server->reset();
  EXPECT_NE(::access(path.c_str(), F_OK), 0);  // the socket file is removed
}

TEST(ControlServerTest, TcpLoopbackServerOnEphemeralPortServesTwoClientsAtOnce) {
  Logs logs;
  auto server = Server::ListenTcp(0, EchoHandler, logs.options());
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  ASSERT_NE((*server)->port(), 0);
  (*server)->Start();
  auto idle = Connection::ConnectTcp((*server)->port());  // stays open, must not block others
  ASSERT_TRUE(idle.ok());
  auto client = Connection::ConnectTcp((*server)->port());
  ASSERT_TRUE(client.ok()) << client.status().ToString();
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
  auto end = ServeConnection(pair->second, EchoHandler, logs.options());
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
  std::thread server([&] {
    (void)ServeConnection(pair->second, [](const Envelope&) -> Result<Envelope> {
      throw std::runtime_error("boom");
    });
  });
  const std::string id = NewMsgId();
  ASSERT_TRUE(pair->first.WriteLine(Request(MessageType::kCmdProcess, id)).ok());
  auto answer = pair->first.ReadLine();
  ASSERT_TRUE(answer.ok() && answer->has_value());
  ParseOutcome parsed = ParseEnvelope(**answer);
  EXPECT_EQ(parsed.envelope->payload["code"], "INTERNAL");
  EXPECT_EQ(parsed.envelope->msg_id, id);
  pair->first.Shutdown();
  server.join();
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
