// w1_ledger_peer: the C++ consumer of benchmark W1 (bench/w1_ledger.py, docs/benchmarks.md "W1
// ledger"). A Python producer holds a Ledger batch; this process must end up with it as
// arrow::RecordBatch(es) and compute sum(amount), over one of five transports:
//
//   json-stdio       JSON objects, one per line on stdin, parsed with nlohmann::json and
//                    appended with Arrow builders (the way such pipelines are often built today)
//   msgspec-pipe     frames of msgpack on stdin, each an 8-byte little-endian length and one
//                    msgpack array of records (msgspec), decoded by quiver::DecodeMsgpackRecords
//   arrow-ipc-pipe   an Arrow IPC stream on stdin
//   flight-loopback  an Arrow Flight server on 127.0.0.1 taking one DoPut
//   quiver           a subscriber of the Quiver channel --channel, the batch read in place
//
// Protocol (stdout, one JSON object per line): {"ready":true[,"port":N]} once set up and
// waiting, then {"rows":N,"sum":X,"batches":B,"got_ns":T1,"done_ns":T2,"cpu_s":C} where
// got_ns is when the batch(es) were complete and done_ns right after the sum, both
// CLOCK_MONOTONIC ns (what Python's time.monotonic_ns() reads), and cpu_s the user + system
// CPU seconds of this process (all threads) from waiting for the data (after the ready line;
// flight-loopback: from the start of the DoPut call, so the connection's set-up is left out)
// until the sum is computed and the batch(es) released. Errors: a message on stderr and exit 1.
// `w1_ledger_peer --list` prints {"transports":[...]}, the transports this build has.
#include <arrow/api.h>
#include <arrow/io/stdio.h>
#include <arrow/ipc/reader.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cpu_clock.h"
#include "quiver/arrow.h"
#include "quiver/msgpack_records.h"

#if defined(QUIVER_HAVE_FLIGHT)
#include <arrow/flight/api.h>
#endif

namespace {

#if defined(QUIVER_HAVE_FLIGHT)
constexpr bool kHaveFlight = true;
#else
constexpr bool kHaveFlight = false;
#endif

using Batches = std::vector<std::shared_ptr<arrow::RecordBatch>>;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::shared_ptr<arrow::Schema> LedgerSchema() {
  return arrow::schema({
      arrow::field("stt", arrow::int32(), false),
      arrow::field("code", arrow::utf8(), false),
      arrow::field("name", arrow::utf8(), false),
      arrow::field("unit", arrow::utf8(), false),
      arrow::field("quantity", arrow::float64(), false),
      arrow::field("unit_price", arrow::float64(), false),
      arrow::field("amount", arrow::float64(), false),
  });
}

arrow::Status FromQuiver(const quiver::Status& status) {
  return status.ok() ? arrow::Status::OK() : arrow::Status::IOError(status.ToString());
}

template <typename T>
arrow::Result<T> FromQuiver(quiver::Result<T> result) {
  if (!result.ok()) return FromQuiver(result.status());
  return std::move(result).value();
}

void PrintReady(std::optional<int> port = std::nullopt) {
  if (port) {
    std::printf("{\"ready\":true,\"port\":%d}\n", *port);
  } else {
    std::printf("{\"ready\":true}\n");
  }
  std::fflush(stdout);
}

struct Report {
  int64_t rows = 0;
  int64_t batches = 0;
  double sum = 0;
  int64_t got_ns = 0;   // the batches complete
  int64_t done_ns = 0;  // the sum computed
  double cpu_s = 0;     // used from waiting for the data until done and released
};

// The sum of `n` doubles, in 8 independent lanes (vectorized, not bound by the latency of
// one chain of additions).
double Total(const double* values, int64_t n) {
  double lanes[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) lanes[k] += values[i + k];
  }
  double sum = 0;
  for (; i < n; ++i) sum += values[i];
  for (const double lane : lanes) sum += lane;
  return sum;
}

// sum(amount) over `batches`, which must have the Ledger schema. `got_ns`: when they were
// complete; `cpu_start`: this process's CPU when it began waiting for them. The batches are
// released before the CPU is read: freeing what it received is part of a consumer's work.
arrow::Result<Report> Sum(Batches batches, int64_t got_ns, double cpu_start) {
  static const std::shared_ptr<arrow::Schema> kSchema = LedgerSchema();
  Report report;
  report.got_ns = got_ns;
  for (const auto& batch : batches) {
    if (!batch->schema()->Equals(*kSchema, /*check_metadata=*/false)) {
      return arrow::Status::Invalid("a batch is not of the Ledger schema: ",
                                    batch->schema()->ToString());
    }
    const auto& amount = static_cast<const arrow::DoubleArray&>(*batch->column(6));
    if (amount.null_count() == 0) {
      report.sum += Total(amount.raw_values(), amount.length());
    } else {
      for (int64_t i = 0; i < amount.length(); ++i) {
        if (amount.IsValid(i)) report.sum += amount.Value(i);
      }
    }
    report.rows += batch->num_rows();
    ++report.batches;
  }
  report.done_ns = NowNs();
  batches.clear();
  report.cpu_s = quiver::bench::CpuSeconds() - cpu_start;
  return report;
}

void PrintReport(const Report& report) {
  std::printf(
      "{\"rows\":%lld,\"sum\":%.17g,\"batches\":%lld,\"got_ns\":%lld,\"done_ns\":%lld,"
      "\"cpu_s\":%.9f}\n",
      static_cast<long long>(report.rows), report.sum, static_cast<long long>(report.batches),
      static_cast<long long>(report.got_ns), static_cast<long long>(report.done_ns), report.cpu_s);
  std::fflush(stdout);
}

// --- json-stdio ---------------------------------------------------------------------------

arrow::Result<Report> RunJsonStdio() {
  std::ios::sync_with_stdio(false);
  PrintReady();
  const double cpu_start = quiver::bench::CpuSeconds();
  arrow::Int32Builder stt;
  arrow::StringBuilder code, name, unit;
  arrow::DoubleBuilder quantity, unit_price, amount;
  std::string line;
  int64_t line_number = 0;
  while (std::getline(std::cin, line)) {
    ++line_number;
    if (line.empty()) continue;
    try {
      const auto row = nlohmann::json::parse(line);
      ARROW_RETURN_NOT_OK(stt.Append(row.at("stt").get<int32_t>()));
      ARROW_RETURN_NOT_OK(code.Append(row.at("code").get_ref<const std::string&>()));
      ARROW_RETURN_NOT_OK(name.Append(row.at("name").get_ref<const std::string&>()));
      ARROW_RETURN_NOT_OK(unit.Append(row.at("unit").get_ref<const std::string&>()));
      ARROW_RETURN_NOT_OK(quantity.Append(row.at("quantity").get<double>()));
      ARROW_RETURN_NOT_OK(unit_price.Append(row.at("unit_price").get<double>()));
      ARROW_RETURN_NOT_OK(amount.Append(row.at("amount").get<double>()));
    } catch (const nlohmann::json::exception& e) {
      return arrow::Status::Invalid("stdin line ", line_number, ": ", e.what());
    }
  }
  if (std::cin.bad()) return arrow::Status::IOError("reading stdin failed");
  std::vector<std::shared_ptr<arrow::Array>> columns(7);
  ARROW_RETURN_NOT_OK(stt.Finish(&columns[0]));
  ARROW_RETURN_NOT_OK(code.Finish(&columns[1]));
  ARROW_RETURN_NOT_OK(name.Finish(&columns[2]));
  ARROW_RETURN_NOT_OK(unit.Finish(&columns[3]));
  ARROW_RETURN_NOT_OK(quantity.Finish(&columns[4]));
  ARROW_RETURN_NOT_OK(unit_price.Finish(&columns[5]));
  ARROW_RETURN_NOT_OK(amount.Finish(&columns[6]));
  const int64_t rows = columns[0]->length();
  Batches batches{arrow::RecordBatch::Make(LedgerSchema(), rows, std::move(columns))};
  return Sum(std::move(batches), NowNs(), cpu_start);
}

// --- msgspec-pipe -------------------------------------------------------------------------

// Reads up to `size` bytes from `fd`; fewer only at end of file.
arrow::Result<size_t> ReadFull(int fd, char* data, size_t size) {
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::read(fd, data + done, size - done);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      return arrow::Status::IOError("reading stdin: ", std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  return done;
}

arrow::Result<Report> RunMsgspecPipe() {
  const auto schema = LedgerSchema();
  PrintReady();
  const double cpu_start = quiver::bench::CpuSeconds();
  Batches batches;
  std::string frame;
  for (;;) {
    unsigned char prefix[8];
    ARROW_ASSIGN_OR_RAISE(size_t got, ReadFull(0, reinterpret_cast<char*>(prefix), 8));
    if (got == 0) break;
    if (got != 8) return arrow::Status::Invalid("stdin ends inside a frame's length prefix");
    uint64_t length = 0;
    for (int i = 7; i >= 0; --i) length = (length << 8) | prefix[i];
    if (length > (uint64_t{1} << 40)) {
      return arrow::Status::Invalid("frame length ", length, " is not plausible");
    }
    frame.resize(length);
    ARROW_ASSIGN_OR_RAISE(got, ReadFull(0, frame.data(), length));
    if (got != length) {
      return arrow::Status::Invalid("stdin ends inside a frame (", got, " of ", length, " bytes)");
    }
    ARROW_ASSIGN_OR_RAISE(auto batch, FromQuiver(quiver::DecodeMsgpackRecords(frame, schema)));
    batches.push_back(std::move(batch));
  }
  return Sum(std::move(batches), NowNs(), cpu_start);
}

// --- arrow-ipc-pipe -----------------------------------------------------------------------

arrow::Result<Report> RunArrowIpcPipe() {
  // std::cin underneath, synced with stdio: large reads go to read(2) straight into the
  // buffers the reader allocates.
  auto input = std::make_shared<arrow::io::StdinStream>();
  PrintReady();
  const double cpu_start = quiver::bench::CpuSeconds();
  // Opening reads the schema message: it waits for the producer.
  ARROW_ASSIGN_OR_RAISE(auto reader, arrow::ipc::RecordBatchStreamReader::Open(input));
  ARROW_ASSIGN_OR_RAISE(Batches batches, reader->ToRecordBatches());
  return Sum(std::move(batches), NowNs(), cpu_start);
}

// --- flight-loopback ----------------------------------------------------------------------

#if defined(QUIVER_HAVE_FLIGHT)
namespace flight = arrow::flight;

// Takes one DoPut: reads its batches, sums them and hands the report to main.
class LedgerServer : public flight::FlightServerBase {
 public:
  arrow::Status DoPut(const flight::ServerCallContext& /*context*/,
                      std::unique_ptr<flight::FlightMessageReader> reader,
                      std::unique_ptr<flight::FlightMetadataWriter> /*writer*/) override {
    arrow::Result<Report> report = ReadAndSum(*reader, quiver::bench::CpuSeconds());
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!result_) result_ = report;
    }
    done_.notify_all();
    return report.status();
  }

  arrow::Result<Report> WaitForPut(std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!done_.wait_for(lock, timeout, [this] { return result_.has_value(); })) {
      return arrow::Status::IOError("no DoPut within ", timeout.count(), " s");
    }
    return *result_;
  }

 private:
  static arrow::Result<Report> ReadAndSum(flight::FlightMessageReader& reader, double cpu_start) {
    ARROW_ASSIGN_OR_RAISE(Batches batches, reader.ToRecordBatches());
    return Sum(std::move(batches), NowNs(), cpu_start);
  }

  std::mutex mutex_;
  std::condition_variable done_;
  std::optional<arrow::Result<Report>> result_;
};

arrow::Result<Report> RunFlightLoopback(int port) {
  ARROW_ASSIGN_OR_RAISE(auto location, flight::Location::ForGrpcTcp("127.0.0.1", port));
  LedgerServer server;
  ARROW_RETURN_NOT_OK(server.Init(flight::FlightServerOptions(location)));
  PrintReady(server.port());
  arrow::Result<Report> report = server.WaitForPut(std::chrono::seconds(600));
  if (report.ok()) PrintReport(*report);  // before the shutdown: the driver waits for it
  ARROW_RETURN_NOT_OK(server.Shutdown());
  ARROW_RETURN_NOT_OK(server.Wait());
  return report;
}
#endif

// --- quiver -------------------------------------------------------------------------------

arrow::Result<Report> RunQuiver(const std::string& channel_name) {
  ARROW_ASSIGN_OR_RAISE(auto channel, FromQuiver(quiver::Channel::Open(channel_name)));
  ARROW_ASSIGN_OR_RAISE(auto subscriber, FromQuiver(quiver::ArrowSubscriber::Make(channel)));
  PrintReady();
  const double cpu_start = quiver::bench::CpuSeconds();
  ARROW_ASSIGN_OR_RAISE(quiver::ArrowSample sample,
                        FromQuiver(subscriber.Receive(std::chrono::seconds(600))));
  const int64_t got_ns = NowNs();
  // The batch alone holds the sample: releasing it in Sum hands the sample back.
  return Sum(Batches{std::move(sample.batch)}, got_ns, cpu_start);
}

// --- main ---------------------------------------------------------------------------------

constexpr const char* kUsage =
    "usage: w1_ledger_peer --transport json-stdio|msgspec-pipe|arrow-ipc-pipe|"
    "flight-loopback|quiver [--channel NAME] [--port N]\n"
    "       w1_ledger_peer --list\n";

int Fail(const std::string& message) {
  std::fprintf(stderr, "w1_ledger_peer: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string transport, channel;
  int port = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--list") {
      std::printf(
          "{\"transports\":[\"json-stdio\",\"msgspec-pipe\",\"arrow-ipc-pipe\",%s\"quiver\"]}\n",
          kHaveFlight ? "\"flight-loopback\"," : "");
      return 0;
    }
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (i + 1 >= argc || (arg != "--transport" && arg != "--channel" && arg != "--port")) {
      return Fail("unexpected argument '" + std::string(arg) + "'\n" + kUsage);
    }
    const std::string value = argv[++i];
    if (arg == "--transport") {
      transport = value;
    } else if (arg == "--channel") {
      channel = value;
    } else {
      char* end = nullptr;
      const long parsed = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || parsed < 0 || parsed > 65535) {
        return Fail("--port wants a number 0..65535, got '" + value + "'");
      }
      port = static_cast<int>(parsed);
    }
  }

  arrow::Result<Report> report = arrow::Status::Invalid("unreachable");
  if (transport == "json-stdio") {
    report = RunJsonStdio();
  } else if (transport == "msgspec-pipe") {
    report = RunMsgspecPipe();
  } else if (transport == "arrow-ipc-pipe") {
    report = RunArrowIpcPipe();
  } else if (transport == "flight-loopback") {
#if defined(QUIVER_HAVE_FLIGHT)
    report = RunFlightLoopback(port);
    if (!report.ok()) return Fail("flight-loopback: " + report.status().ToString());
    return 0;  // RunFlightLoopback printed the report
#else
    (void)port;
    return Fail("flight-loopback: this build has no Arrow Flight (QUIVER_HAVE_FLIGHT)");
#endif
  } else if (transport == "quiver") {
    if (channel.empty()) return Fail("--transport quiver needs --channel NAME");
    report = RunQuiver(channel);
  } else {
    return Fail(transport.empty() ? std::string("--transport is required\n") + kUsage
                                  : "unknown transport '" + transport + "'\n" + kUsage);
  }
  if (!report.ok()) return Fail(transport + ": " + report.status().ToString());
  PrintReport(*report);
  return 0;
}
