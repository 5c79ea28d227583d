// w6_command_peer: benchmark W6 command/result (bench/w6_command.py). A core process sends a
// command to a worker process and waits for its result, which it then holds ready to use:
//   none    no payload: RES_OK
//   frame   a 1920x1080 RGBA frame (8,294,400 bytes), checked at both ends of the image
//   batch   a 10,000-row Ledger batch (page int64, row int64, amount float64, code utf8),
//           as an arrow::RecordBatch, checked (rows, last row)
// over one of three transports, each with the worker this program starts (itself, --worker):
//   quiver      quiver/control.h over two pipes (as `quiver run` connects them); the worker
//   publishes the result into a stream
//               (CMD_STREAM_START) and answers RES_DATA_READY with a safe handle, which the
//               core resolves and decodes zero-copy (ReadImageFrame, DecodeArrowSample)
//   json-stdio  the way such pipelines are often built today: one JSON line each way over the worker's stdin/stdout;
//               the frame base64 in it, the batch as JSON rows, parsed back into Arrow
//   grpc        a gRPC unary-style call (Arrow Flight DoAction, one result) carrying the same
//               bytes: the frame, the batch as Arrow IPC
// The time of one round trip is from just before the command is sent until the core holds
// the checked result. Prints one JSON line per payload: {"transport","payload","bytes",
// "samples_us":[...]}. `--list` prints {"transports": [...]}.
//
//   w6_command_peer --transport quiver --payloads none,frame,batch --reps 200 --warmup 20
#include <arrow/api.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/reader.h>
#include <arrow/ipc/writer.h>
#include <arrow/util/base64.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "quiver/arrow.h"
#include "quiver/control.h"
#include "quiver/frame.h"
#include "run_id.h"

#if defined(QUIVER_HAVE_FLIGHT)
#include <arrow/flight/api.h>
#endif

namespace {

using namespace quiver;
using namespace quiver::control;
using nlohmann::json;

constexpr int kWidth = 1920, kHeight = 1080, kRows = 10'000;
constexpr size_t kFrameBytes = size_t{kWidth} * kHeight * 4;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "w6_command_peer: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T Must(Result<T> r, const char* what) {
  if (!r.ok()) Fail(std::string(what) + ": " + r.status().ToString());
  return std::move(r).value();
}
template <typename T>
T MustArrow(arrow::Result<T> r, const char* what) {
  if (!r.ok()) Fail(std::string(what) + ": " + r.status().ToString());
  return std::move(r).ValueOrDie();
}
void MustOk(const Status& st, const char* what) {
  if (!st.ok()) Fail(std::string(what) + ": " + st.ToString());
}

// ---- the worker's data, made once -----------------------------------------------------------

std::vector<std::byte> MakeFrame() {
  std::vector<std::byte> frame(kFrameBytes);
  for (size_t i = 0; i < frame.size(); ++i) frame[i] = std::byte(i * 31 + 7);
  return frame;
}

std::shared_ptr<arrow::Schema> LedgerSchema() {
  return arrow::schema({arrow::field("page", arrow::int64()), arrow::field("row", arrow::int64()),
                        arrow::field("amount", arrow::float64()),
                        arrow::field("code", arrow::utf8())});
}

std::shared_ptr<arrow::RecordBatch> MakeBatch() {
  arrow::Int64Builder page, row;
  arrow::DoubleBuilder amount;
  arrow::StringBuilder code;
  for (int i = 0; i < kRows; ++i) {
    (void)page.Append(3);
    (void)row.Append(i);
    (void)amount.Append(i * 0.25);
    (void)code.Append("code-" + std::to_string(i % 97));
  }
  std::vector<std::shared_ptr<arrow::Array>> columns(4);
  (void)page.Finish(&columns[0]);
  (void)row.Finish(&columns[1]);
  (void)amount.Finish(&columns[2]);
  (void)code.Finish(&columns[3]);
  return arrow::RecordBatch::Make(LedgerSchema(), kRows, columns);
}

// The core's checks: the result is the one the worker made.
void CheckFrame(std::span<const std::byte> pixels) {
  if (pixels.size() < kFrameBytes || pixels[0] != std::byte(7) ||
      pixels[kFrameBytes - 1] != std::byte((kFrameBytes - 1) * 31 + 7)) {
    Fail("the frame arrived wrong");
  }
}
void CheckBatch(const arrow::RecordBatch& batch) {
  auto rows = std::static_pointer_cast<arrow::Int64Array>(batch.column(1));
  if (batch.num_rows() != kRows || rows->Value(kRows - 1) != kRows - 1) {
    Fail("the batch arrived wrong");
  }
}

// ---- starting the worker --------------------------------------------------------------------

// This program again as the worker, `--worker TRANSPORT`, with `child_stdin`/`child_stdout`
// as its stdio (or -1: inherited) and `env` added. It execs: Arrow has threads here.
pid_t StartWorker(const std::string& transport, int child_stdin, int child_stdout,
                  const std::string& env) {
  std::string arg0 = "w6_command_peer", arg1 = "--worker", arg2 = transport;
  char* argv[] = {arg0.data(), arg1.data(), arg2.data(), nullptr};
  std::fflush(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) Fail(std::string("fork: ") + std::strerror(errno));
  if (pid > 0) return pid;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(1);
  if (child_stdin >= 0 && dup2(child_stdin, STDIN_FILENO) < 0) _exit(126);
  if (child_stdout >= 0 && dup2(child_stdout, STDOUT_FILENO) < 0) _exit(126);
  if (!env.empty()) putenv(const_cast<char*>(env.c_str()));
  execv("/proc/self/exe", argv);
  _exit(127);
}

// ---- quiver ---------------------------------------------------------------------------------

int QuiverWorker() {
  const std::vector<std::byte> frame = MakeFrame();
  const auto batch = MakeBatch();
  Streams streams;
  Handlers handlers;
  MustOk(handlers.Add(kCmdStreamStart, streams.handler()), "add");
  MustOk(handlers.Add("CMD_NONE",
                      [](const Envelope&) { return Result<Envelope>(MakeEnvelope(kResOk)); }),
         "add");
  MustOk(handlers.Add("CMD_FRAME",
                      [&](const Envelope& c) -> Result<Envelope> {
                        QUIVER_ASSIGN_OR_RETURN(
                            Publisher * pub, streams.Find(c.payload["stream"].get<std::string>()));
                        QUIVER_RETURN_IF_ERROR(PublishImageFrame(
                            *pub, {kWidth, kHeight, PixelFormat::kRgba8, 0}, frame));
                        Envelope answer = MakeEnvelope(kResDataReady);
                        QUIVER_ASSIGN_OR_RETURN(answer.shm_handle,
                                                HandleForLast(*pub, ShmFormat::kTensor));
                        return answer;
                      }),
         "add");
  MustOk(handlers.Add(
             "CMD_BATCH",
             [&](const Envelope& c) -> Result<Envelope> {
               QUIVER_ASSIGN_OR_RETURN(ArrowPublisher * pub,
                                       streams.FindArrow(c.payload["stream"].get<std::string>()));
               QUIVER_RETURN_IF_ERROR(pub->Publish(*batch));
               Envelope answer = MakeEnvelope(kResDataReady);
               QUIVER_ASSIGN_OR_RETURN(answer.shm_handle,
                                       HandleForLast(pub->publisher(), ShmFormat::kArrowStream));
               return answer;
             }),
         "add");
  MustOk(Worker(handlers).ServeFromEnvironment(), "serve");
  return 0;
}

struct QuiverCore {
  QuiverCore() {
    // Two pipes, as `quiver run` connects a core and its worker.
    int to_worker[2], to_core[2];
    if (pipe(to_worker) != 0 || pipe(to_core) != 0) Fail("pipe");
    fcntl(to_worker[1], F_SETFD, FD_CLOEXEC);
    fcntl(to_core[0], F_SETFD, FD_CLOEXEC);
    env = std::string(kControlEnv) + "=" + FormatControlFds({to_worker[0], to_core[1]});
    pid = StartWorker("quiver", -1, -1, env);
    close(to_worker[0]);
    close(to_core[1]);
    client = Must(Client::FromFds({to_core[0], to_worker[1]}, "w6-worker"), "client");
    const std::string run = quiver::bench::RunId();
    frames = Start("w6-" + run + "-frames", nullptr);
    batches = Start("w6-" + run + "-batches", LedgerSchema().get());
  }
  ~QuiverCore() {
    (void)client->Call(MakeEnvelope(kCmdShutdown), std::chrono::seconds(10));
    client.reset();
    waitpid(pid, nullptr, 0);
  }
  std::string Start(const std::string& name, const arrow::Schema* schema) {
    json payload = {{"stream", name}, {"capacity", 64 << 20}, {"max_samples", 16}};
    if (schema != nullptr) {
      payload["schema"] = json::parse(
          R"([{"name":"page","type":"int64"},{"name":"row","type":"int64"},
              {"name":"amount","type":"float64"},{"name":"code","type":"utf8"}])");
    }
    (void)Must(client->Call(MakeEnvelope(kCmdStreamStart, payload)), "CMD_STREAM_START");
    Channel channel = Must(Channel::Open(name), "open");
    MustOk(resolver.Watch(channel), "watch");
    channels.emplace(name, channel);
    return name;
  }
  void RoundTrip(const std::string& payload) {
    if (payload == "none") {
      (void)Must(client->Call(MakeEnvelope("CMD_NONE")), "CMD_NONE");
    } else if (payload == "frame") {
      Envelope r = Must(client->Call(MakeEnvelope("CMD_FRAME", {{"stream", frames}})), "CMD_FRAME");
      auto sample =
          std::make_shared<const Sample>(Must(resolver.Resolve(*r.shm_handle), "resolve"));
      ImageFrameView view = Must(ReadImageFrame(sample), "frame");
      CheckFrame(view.data);
    } else {
      Envelope r =
          Must(client->Call(MakeEnvelope("CMD_BATCH", {{"stream", batches}})), "CMD_BATCH");
      Sample sample = Must(resolver.Resolve(*r.shm_handle), "resolve");
      ArrowSample decoded =
          Must(DecodeArrowSample(channels.at(batches), std::move(sample)), "decode");
      CheckBatch(*decoded.batch);
    }
  }

  std::string env;
  pid_t pid = -1;
  std::unique_ptr<Client> client;
  HandleResolver resolver;
  std::map<std::string, Channel> channels;
  std::string frames, batches;
};

// ---- json-stdio -----------------------------------------------------------------------------

std::string BatchToJsonRows(const arrow::RecordBatch& batch) {
  auto page = std::static_pointer_cast<arrow::Int64Array>(batch.column(0));
  auto row = std::static_pointer_cast<arrow::Int64Array>(batch.column(1));
  auto amount = std::static_pointer_cast<arrow::DoubleArray>(batch.column(2));
  auto code = std::static_pointer_cast<arrow::StringArray>(batch.column(3));
  json rows = json::array();
  for (int64_t i = 0; i < batch.num_rows(); ++i) {
    rows.push_back({{"page", page->Value(i)},
                    {"row", row->Value(i)},
                    {"amount", amount->Value(i)},
                    {"code", std::string(code->GetView(i))}});
  }
  return rows.dump();
}

std::shared_ptr<arrow::RecordBatch> JsonRowsToBatch(const json& rows) {
  arrow::Int64Builder page, row;
  arrow::DoubleBuilder amount;
  arrow::StringBuilder code;
  for (const json& r : rows) {
    (void)page.Append(r.at("page").get<int64_t>());
    (void)row.Append(r.at("row").get<int64_t>());
    (void)amount.Append(r.at("amount").get<double>());
    (void)code.Append(r.at("code").get_ref<const std::string&>());
  }
  std::vector<std::shared_ptr<arrow::Array>> columns(4);
  (void)page.Finish(&columns[0]);
  (void)row.Finish(&columns[1]);
  (void)amount.Finish(&columns[2]);
  (void)code.Finish(&columns[3]);
  return arrow::RecordBatch::Make(LedgerSchema(), static_cast<int64_t>(rows.size()), columns);
}

int JsonWorker() {
  const std::vector<std::byte> frame = MakeFrame();
  const auto batch = MakeBatch();
  std::string line;
  while (std::getline(std::cin, line)) {
    const json command = json::parse(line);
    const std::string type = command.at("type");
    json answer = {{"protocol_v", "2.0.0"},
                   {"msg_id", command.at("msg_id")},
                   {"type", "RES_OK"},
                   {"payload", json::object()}};
    if (type == "CMD_FRAME") {
      answer["type"] = "RES_DATA_READY";
      answer["payload"] = {
          {"width", kWidth},
          {"height", kHeight},
          {"format", "rgba8"},
          {"data", arrow::util::base64_encode(std::string_view(
                       reinterpret_cast<const char*>(frame.data()), frame.size()))}};
    } else if (type == "CMD_BATCH") {
      answer["type"] = "RES_DATA_READY";
      answer["payload"] = {{"rows", json::parse(BatchToJsonRows(*batch))}};
    } else if (type == "CMD_SHUTDOWN") {
      std::cout << answer.dump() << '\n' << std::flush;
      return 0;
    }
    std::cout << answer.dump() << '\n' << std::flush;
  }
  return 0;
}

struct JsonCore {
  JsonCore() {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) Fail("pipe");
    pid = StartWorker("json-stdio", in[0], out[1], "");
    close(in[0]);
    close(out[1]);
    to = fdopen(in[1], "w");
    from = fdopen(out[0], "r");
  }
  ~JsonCore() {
    Send("CMD_SHUTDOWN");
    (void)Read();
    fclose(to);
    fclose(from);
    waitpid(pid, nullptr, 0);
  }
  void Send(const std::string& type) {
    json command = {{"protocol_v", "2.0.0"},
                    {"msg_id", NewMsgId()},
                    {"type", type},
                    {"payload", json::object()}};
    const std::string text = command.dump() + "\n";
    if (std::fwrite(text.data(), 1, text.size(), to) != text.size() || std::fflush(to) != 0) {
      Fail("write to the json worker");
    }
  }
  json Read() {
    std::string line;
    char buf[1 << 16];
    for (;;) {
      if (!std::fgets(buf, sizeof buf, from)) Fail("the json worker closed its stdout");
      line += buf;
      if (!line.empty() && line.back() == '\n') break;
    }
    return json::parse(line);
  }
  void RoundTrip(const std::string& payload) {
    Send(payload == "none" ? "CMD_NONE" : payload == "frame" ? "CMD_FRAME" : "CMD_BATCH");
    const json answer = Read();
    if (payload == "frame") {
      const std::string pixels = MustArrow(
          arrow::util::base64_decode(answer["payload"]["data"].get_ref<const std::string&>()),
          "base64");
      CheckFrame(std::as_bytes(std::span(pixels.data(), pixels.size())));
    } else if (payload == "batch") {
      CheckBatch(*JsonRowsToBatch(answer["payload"]["rows"]));
    }
  }
  pid_t pid = -1;
  FILE* to = nullptr;
  FILE* from = nullptr;
};

// ---- grpc (Arrow Flight DoAction) -----------------------------------------------------------

#if defined(QUIVER_HAVE_FLIGHT)
namespace flight = arrow::flight;

class ActionServer : public flight::FlightServerBase {
 public:
  ActionServer() : frame_(MakeFrame()), batch_(MakeBatch()) {}
  arrow::Status DoAction(const flight::ServerCallContext&, const flight::Action& action,
                         std::unique_ptr<flight::ResultStream>* result) override {
    std::vector<flight::Result> results(1);
    if (action.type == "frame") {
      results[0].body = arrow::Buffer::FromString(
          std::string(reinterpret_cast<const char*>(frame_.data()), frame_.size()));
    } else if (action.type == "batch") {
      ARROW_ASSIGN_OR_RAISE(results[0].body, arrow::ipc::SerializeRecordBatch(
                                                 *batch_, arrow::ipc::IpcWriteOptions::Defaults()));
    } else {
      results[0].body = arrow::Buffer::FromString("");
    }
    *result = std::make_unique<flight::SimpleResultStream>(std::move(results));
    return arrow::Status::OK();
  }

 private:
  std::vector<std::byte> frame_;
  std::shared_ptr<arrow::RecordBatch> batch_;
};

int GrpcWorker() {
  ActionServer server;
  auto location = MustArrow(flight::Location::ForGrpcTcp("127.0.0.1", 0), "location");
  flight::FlightServerOptions options(location);
  auto st = server.Init(options);
  if (!st.ok()) Fail("flight init: " + st.ToString());
  std::printf("%d\n", server.port());
  std::fflush(stdout);
  // Served until stdin closes (the core ends).
  std::thread watcher([&] {
    char c;
    while (read(STDIN_FILENO, &c, 1) > 0) {
    }
    (void)server.Shutdown();
  });
  (void)server.Serve();
  watcher.join();
  return 0;
}

struct GrpcCore {
  GrpcCore() {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) Fail("pipe");
    pid = StartWorker("grpc", in[0], out[1], "");
    close(in[0]);
    close(out[1]);
    keep_alive = in[1];
    FILE* from = fdopen(out[0], "r");
    int port = 0;
    if (std::fscanf(from, "%d", &port) != 1) Fail("the grpc worker printed no port");
    fclose(from);
    auto location = MustArrow(flight::Location::ForGrpcTcp("127.0.0.1", port), "location");
    client = MustArrow(flight::FlightClient::Connect(location), "connect");
  }
  ~GrpcCore() {
    client.reset();
    close(keep_alive);
    waitpid(pid, nullptr, 0);
  }
  void RoundTrip(const std::string& payload) {
    auto stream = MustArrow(client->DoAction(flight::Action{payload, nullptr}), "DoAction");
    auto result = MustArrow(stream->Next(), "result");
    if (!result) Fail("DoAction returned no result");
    if (payload == "frame") {
      CheckFrame(std::as_bytes(std::span(result->body->data(), result->body->size())));
    } else if (payload == "batch") {
      arrow::io::BufferReader reader(result->body);
      arrow::ipc::DictionaryMemo memo;
      auto batch =
          MustArrow(arrow::ipc::ReadRecordBatch(LedgerSchema(), &memo,
                                                arrow::ipc::IpcReadOptions::Defaults(), &reader),
                    "ipc");
      CheckBatch(*batch);
    }
  }
  pid_t pid = -1;
  int keep_alive = -1;
  std::unique_ptr<flight::FlightClient> client;
};
#endif

size_t PayloadBytes(const std::string& payload) {
  if (payload == "frame") return kFrameBytes;
  if (payload == "batch") {
    auto batch = MakeBatch();
    int64_t size = 0;
    (void)arrow::ipc::GetRecordBatchSize(*batch, &size);
    return static_cast<size_t>(size);
  }
  return 0;
}

template <typename Core>
void Measure(const std::string& transport, const std::vector<std::string>& payloads, int reps,
             int warmup) {
  Core core;
  for (const std::string& payload : payloads) {
    for (int i = 0; i < warmup; ++i) core.RoundTrip(payload);
    std::vector<double> samples;
    samples.reserve(reps);
    for (int i = 0; i < reps; ++i) {
      const auto start = std::chrono::steady_clock::now();
      core.RoundTrip(payload);
      samples.push_back(
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
              .count());
    }
    std::cout << json{{"transport", transport},
                      {"payload", payload},
                      {"bytes", PayloadBytes(payload)},
                      {"samples_us", samples}}
                     .dump()
              << std::endl;
  }
}

std::vector<std::string> Split(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, ',');) out.push_back(part);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 2 && args[0] == "--worker") {
    if (args[1] == "quiver") return QuiverWorker();
    if (args[1] == "json-stdio") return JsonWorker();
#if defined(QUIVER_HAVE_FLIGHT)
    if (args[1] == "grpc") return GrpcWorker();
#endif
    Fail("unknown worker transport " + args[1]);
  }
  if (args.size() == 1 && args[0] == "--list") {
    json transports = {"quiver", "json-stdio"};
#if defined(QUIVER_HAVE_FLIGHT)
    transports.push_back("grpc");
#endif
    std::cout << json{{"transports", transports}}.dump() << std::endl;
    return 0;
  }
  std::string transport = "quiver";
  std::vector<std::string> payloads = {"none", "frame", "batch"};
  int reps = 100, warmup = 10;
  for (size_t i = 0; i + 1 < args.size(); i += 2) {
    if (args[i] == "--transport")
      transport = args[i + 1];
    else if (args[i] == "--payloads")
      payloads = Split(args[i + 1]);
    else if (args[i] == "--reps")
      reps = std::atoi(args[i + 1].c_str());
    else if (args[i] == "--warmup")
      warmup = std::atoi(args[i + 1].c_str());
    else
      Fail(
          "usage: w6_command_peer --transport quiver|json-stdio|grpc [--payloads none,frame,batch] "
          "[--reps N] [--warmup N] | --list");
  }
  for (const std::string& p : payloads) {
    if (p != "none" && p != "frame" && p != "batch") Fail("unknown payload " + p);
  }
  if (reps < 1) Fail("--reps must be at least 1");
  if (transport == "quiver") {
    Measure<QuiverCore>(transport, payloads, reps, warmup);
  } else if (transport == "json-stdio") {
    Measure<JsonCore>(transport, payloads, reps, warmup);
#if defined(QUIVER_HAVE_FLIGHT)
  } else if (transport == "grpc") {
    Measure<GrpcCore>(transport, payloads, reps, warmup);
#endif
  } else {
    Fail("unknown transport " + transport);
  }
  return 0;
}
