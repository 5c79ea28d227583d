// `quiver echo CHANNEL` and `quiver info CHANNEL`: one channel looked at closely, as
// `ros2 topic echo` / `ros2 topic info --verbose` and `iox2 service details` do.
#include <arrow/api.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/channels.h"
#include "cli/commands.h"
#include "discovery/discovery.h"
#include "quiver/arrow.h"
#include "quiver/channel.h"
#include "quiver/frame.h"
#include "quiver/sample_header.h"
#include "quiver/tensor.h"

namespace quiver::cli {
namespace {

using nlohmann::json;

volatile std::sig_atomic_t g_stop = 0;

constexpr int64_t kHeadRows = 5;

// "python3" for a pid, from /proc/PID/comm; "?" if it is gone.
std::string CommandOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::string comm;
  return std::getline(in, comm) ? comm : "?";
}

// A cell of an Arrow column as JSON: numbers and booleans as such, null as null, the rest
// as Arrow prints it.
json CellJson(const arrow::Array& column, int64_t row) {
  if (column.IsNull(row)) return nullptr;
  auto scalar = column.GetScalar(row);
  if (!scalar.ok()) return "?";
  const arrow::Scalar& s = **scalar;
  switch (s.type->id()) {
    case arrow::Type::BOOL:
      return static_cast<const arrow::BooleanScalar&>(s).value;
    case arrow::Type::INT8:
    case arrow::Type::INT16:
    case arrow::Type::INT32:
    case arrow::Type::INT64: {
      auto cast = s.CastTo(arrow::int64());
      if (cast.ok()) return static_cast<const arrow::Int64Scalar&>(**cast).value;
      break;
    }
    case arrow::Type::UINT8:
    case arrow::Type::UINT16:
    case arrow::Type::UINT32:
    case arrow::Type::UINT64: {
      auto cast = s.CastTo(arrow::uint64());
      if (cast.ok()) return static_cast<const arrow::UInt64Scalar&>(**cast).value;
      break;
    }
    case arrow::Type::FLOAT:
      return static_cast<const arrow::FloatScalar&>(s).value;
    case arrow::Type::DOUBLE:
      return static_cast<const arrow::DoubleScalar&>(s).value;
    default:
      break;
  }
  return s.ToString();
}

std::string CellText(const arrow::Array& column, int64_t row) {
  const json cell = CellJson(column, row);
  return cell.is_string() ? cell.get<std::string>() : cell.dump();
}

// The first rows of a batch as an aligned table, "(N more rows)" after.
std::string BatchHead(const arrow::RecordBatch& batch) {
  const int64_t rows = std::min<int64_t>(batch.num_rows(), kHeadRows);
  std::vector<std::vector<std::string>> cells(static_cast<size_t>(batch.num_columns()));
  std::vector<size_t> width(cells.size());
  for (int c = 0; c < batch.num_columns(); ++c) {
    auto& column = cells[static_cast<size_t>(c)];
    column.push_back(batch.schema()->field(c)->name());
    for (int64_t r = 0; r < rows; ++r) {
      std::string text = CellText(*batch.column(c), r);
      if (text.size() > 32) text = text.substr(0, 31) + "…";
      column.push_back(std::move(text));
    }
    for (const std::string& t : column)
      width[static_cast<size_t>(c)] = std::max(width[static_cast<size_t>(c)], t.size());
  }
  std::string out;
  for (int64_t r = 0; r <= rows; ++r) {
    std::string line = "  ";
    for (size_t c = 0; c < cells.size(); ++c) {
      const std::string& t = cells[c][static_cast<size_t>(r)];
      line += t + std::string(width[c] - std::min(width[c], t.size()) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  if (batch.num_rows() > rows) {
    out += "  (" + std::to_string(batch.num_rows() - rows) + " more rows)\n";
  }
  return out;
}

json BatchJson(const ArrowSample& decoded) {
  const arrow::RecordBatch& batch = *decoded.batch;
  json columns = json::array();
  for (const auto& field : batch.schema()->fields()) columns.push_back(field->name());
  json head = json::array();
  for (int64_t r = 0; r < std::min<int64_t>(batch.num_rows(), kHeadRows); ++r) {
    json row = json::object();
    for (int c = 0; c < batch.num_columns(); ++c) {
      row[batch.schema()->field(c)->name()] = CellJson(*batch.column(c), r);
    }
    head.push_back(std::move(row));
  }
  return {{"kind", "arrow_batch"},
          {"schema_version", decoded.schema_version},
          {"rows", batch.num_rows()},
          {"columns", std::move(columns)},
          {"head", std::move(head)}};
}

// min, max and mean of a row-major tensor's elements (none for float16).
template <typename T>
json Summary(const arrow::Tensor& tensor) {
  const auto* values = reinterpret_cast<const T*>(tensor.raw_data());
  const int64_t n = tensor.size();
  if (n == 0) return {{"min", nullptr}, {"max", nullptr}, {"mean", nullptr}};
  double lo = std::numeric_limits<double>::infinity(), hi = -lo, sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = static_cast<double>(values[i]);
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    sum += v;
  }
  return {{"min", lo}, {"max", hi}, {"mean", sum / static_cast<double>(n)}};
}

json TensorJson(const arrow::Tensor& tensor) {
  json j = {{"kind", "tensor"},
            {"dtype", std::string(TensorTypeName(*tensor.type()))},
            {"shape", tensor.shape()}};
  json summary;
  switch (tensor.type()->id()) {
    case arrow::Type::UINT8:
      summary = Summary<uint8_t>(tensor);
      break;
    case arrow::Type::INT8:
      summary = Summary<int8_t>(tensor);
      break;
    case arrow::Type::UINT16:
      summary = Summary<uint16_t>(tensor);
      break;
    case arrow::Type::INT16:
      summary = Summary<int16_t>(tensor);
      break;
    case arrow::Type::UINT32:
      summary = Summary<uint32_t>(tensor);
      break;
    case arrow::Type::INT32:
      summary = Summary<int32_t>(tensor);
      break;
    case arrow::Type::UINT64:
      summary = Summary<uint64_t>(tensor);
      break;
    case arrow::Type::INT64:
      summary = Summary<int64_t>(tensor);
      break;
    case arrow::Type::FLOAT:
      summary = Summary<float>(tensor);
      break;
    case arrow::Type::DOUBLE:
      summary = Summary<double>(tensor);
      break;
    default:
      break;  // float16: no summary
  }
  if (!summary.is_null()) j.update(summary);
  return j;
}

std::string Hex(std::span<const std::byte> bytes, size_t most) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < std::min(bytes.size(), most); ++i) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    if (!out.empty()) out += ' ';
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

// One received sample as JSON: what `echo --json` prints, and what its text form is made
// from. Samples that fail their kind's checks say why instead.
json SampleJson(const Channel& channel, Sample sample, std::string* table) {
  json j = {{"sequence", sample.sequence()}, {"bytes", sample.size()}};
  const std::optional<PayloadKind> kind = PeekPayloadKind(sample.data());
  if (channel.type_versions() > 0 || kind == PayloadKind::kArrowBatch) {
    Result<ArrowSample> decoded = DecodeArrowSample(channel, std::move(sample));
    if (!decoded.ok()) {
      j["kind"] = "arrow_batch";
      j["error"] = decoded.status().ToString();
      return j;
    }
    if (table != nullptr) *table = BatchHead(*decoded->batch);
    j.update(BatchJson(*decoded));
    return j;
  }
  auto shared = std::make_shared<const Sample>(std::move(sample));
  if (kind == PayloadKind::kTensor) {
    Result<std::shared_ptr<arrow::Tensor>> tensor = ReadTensor(shared);
    if (tensor.ok()) {
      j.update(TensorJson(**tensor));
    } else {
      j["kind"] = "tensor";
      j["error"] = tensor.status().ToString();
    }
  } else if (kind == PayloadKind::kImageFrame) {
    Result<ImageFrameView> frame = ReadImageFrame(shared);
    j["kind"] = "image_frame";
    if (frame.ok()) {
      j["width"] = frame->info.width;
      j["height"] = frame->info.height;
      j["format"] = std::string(PixelFormatName(frame->info.format));
      j["stride"] = frame->info.stride;
    } else {
      j["error"] = frame.status().ToString();
    }
  } else if (kind == PayloadKind::kAudioFrame) {
    Result<AudioFrameView> frame = ReadAudioFrame(shared);
    j["kind"] = "audio_frame";
    if (frame.ok()) {
      j["format"] = std::string(SampleFormatName(frame->info.format));
      j["channels"] = frame->info.channels;
      j["sample_rate"] = frame->info.sample_rate;
      j["frames"] = frame->info.frame_count;
    } else {
      j["error"] = frame.status().ToString();
    }
  } else {
    j["kind"] = "raw";
    j["head_hex"] = Hex(shared->data(), 16);
  }
  return j;
}

std::string Dims(const json& shape, const char* sep) {
  std::string out;
  for (const json& d : shape) out += (out.empty() ? "" : sep) + d.dump();
  return out;
}

// The one-line text form of SampleJson.
std::string SampleLine(const json& j) {
  std::ostringstream out;
  out << "#" << j["sequence"].get<uint64_t>() << "  ";
  const std::string kind = j["kind"];
  const std::string size = HumanBytes(j["bytes"].get<double>());
  if (j.contains("error")) {
    out << kind << ", " << size << ": cannot be read: " << j["error"].get<std::string>();
  } else if (kind == "arrow_batch") {
    out << "arrow batch, schema v" << j["schema_version"] << ", " << j["rows"] << " rows × "
        << j["columns"].size() << " columns, " << size;
  } else if (kind == "tensor") {
    out << "tensor " << j["dtype"].get<std::string>() << " [" << Dims(j["shape"], ", ") << "], "
        << size;
    if (j.contains("min") && !j["min"].is_null()) {  // none for float16 or an empty tensor
      char stats[128];
      std::snprintf(stats, sizeof(stats), ": min %g max %g mean %g", j["min"].get<double>(),
                    j["max"].get<double>(), j["mean"].get<double>());
      out << stats;
    }
  } else if (kind == "image_frame") {
    out << "image " << j["format"].get<std::string>() << " " << j["width"] << "×" << j["height"]
        << ", stride " << j["stride"] << ", " << size;
  } else if (kind == "audio_frame") {
    const double ms =
        1e3 * j["frames"].get<double>() / std::max(1.0, j["sample_rate"].get<double>());
    char duration[32];
    std::snprintf(duration, sizeof(duration), "%.1f ms", ms);
    out << "audio " << j["format"].get<std::string>() << ", " << j["channels"] << " ch, "
        << j["sample_rate"] << " Hz, " << j["frames"] << " frames (" << duration << ")";
  } else {
    out << size << ": " << j["head_hex"].get<std::string>()
        << (j["bytes"].get<uint64_t>() > 16 ? " …" : "");
  }
  return out.str();
}

Result<Channel> OpenForTool(const std::string& name, const char* tool) {
  Result<Channel> channel = discovery::OpenChannel(name);
  if (!channel.ok()) {
    std::cerr << "quiver " << tool << ": " << channel.status().ToString()
              << "\n(quiver ls lists the channels this user can reach)\n";
  }
  return channel;
}

}  // namespace

int Echo(const EchoOptions& options) {
  Result<Channel> channel = OpenForTool(options.channel, "echo");
  if (!channel.ok()) return 1;
  SubscriberOptions sub_options;
  sub_options.from_oldest = options.from_oldest;
  Result<Subscriber> subscriber = channel->CreateSubscriber(sub_options);
  if (!subscriber.ok()) {
    std::cerr << "quiver echo: cannot subscribe to '" << options.channel
              << "': " << subscriber.status().ToString() << "\n";
    return 1;
  }
  std::signal(SIGINT, [](int) { g_stop = 1; });
  std::signal(SIGTERM, [](int) { g_stop = 1; });
  if (!options.json) {
    std::cerr << "quiver echo: " << options.channel << ": waiting for samples"
              << (options.count > 0 ? " (" + std::to_string(options.count) + ")" : "")
              << ", Ctrl-C to stop\n";
  }
  uint64_t seen = 0;
  while (!g_stop && (options.count == 0 || seen < options.count)) {
    Result<Sample> sample = subscriber->Receive(std::chrono::milliseconds(100));
    if (!sample.ok()) {
      if (sample.status().code() == ErrorCode::kTimeout) continue;
      if (sample.status().code() == ErrorCode::kPeerGone) {
        std::cerr << "quiver echo: " << options.channel << ": the publisher is gone ("
                  << sample.status().message() << ") after " << seen << " samples\n";
        return options.count == 0 ? 0 : 1;
      }
      std::cerr << "quiver echo: " << sample.status().ToString() << "\n";
      return 1;
    }
    ++seen;
    std::string table;
    const json j = SampleJson(*channel, std::move(*sample), options.json ? nullptr : &table);
    if (options.json) {
      std::cout << j.dump() << "\n";
    } else {
      std::cout << SampleLine(j) << "\n" << table;
    }
    std::cout.flush();
  }
  return g_stop ? 130 : 0;
}

int Info(const std::string& name, bool as_json) {
  Result<Channel> channel = OpenForTool(name, "info");
  if (!channel.ok()) return 1;
  std::string pipeline;
  for (const discovery::ChannelEntry& entry : discovery::ListChannels()) {
    if (entry.name == name && !entry.pipeline.empty()) pipeline = entry.pipeline;
  }
  const ChannelStats stats = channel->Stats();
  const ChannelHolders holders = channel->Holders();
  std::vector<std::string> schemas;
  for (uint32_t v = 1; v <= channel->type_versions(); ++v) {
    Result<std::shared_ptr<arrow::Schema>> schema = ChannelSchema(*channel, v);
    schemas.push_back(schema.ok() ? (*schema)->ToString()
                                  : "unreadable: " + schema.status().ToString());
  }
  const pid_t self = ::getpid();
  std::vector<pid_t> others;
  for (pid_t pid : holders.processes) {
    if (pid != self) others.push_back(pid);
  }

  json j = json::parse(stats.ToJson());
  j["backing"] = channel->named() ? "named" : "memfd";
  if (!pipeline.empty()) j["pipeline"] = pipeline;
  j["schemas"] = schemas;
  std::string evolution;
  if (channel->type_versions() > 0) {
    Result<SchemaEvolution> rule = ChannelEvolution(*channel);
    evolution = rule.ok() ? std::string(SchemaEvolutionName(*rule))
                          : "unreadable: " + rule.status().ToString();
    j["evolution"] = evolution;
  }
  j["publisher_pid"] = holders.publisher != 0 ? json(holders.publisher) : json(nullptr);
  for (json& sub : j["subscribers"]) {
    const auto it = holders.subscribers.find(sub["slot"].get<uint32_t>());
    sub["pid"] = it != holders.subscribers.end() ? json(it->second) : json(nullptr);
  }
  j["processes"] = others;
  if (as_json) {
    std::cout << j.dump(2) << "\n";
    return 0;
  }

  auto pid_text = [](pid_t pid) {
    return pid != 0 ? "pid " + std::to_string(pid) + " (" + CommandOf(pid) + ")" : "pid unknown";
  };
  std::ostringstream out;
  out << "channel      " << name << "  ("
      << (pipeline.empty() ? std::string(channel->named() ? "named" : "memfd")
                           : "of the pipeline at " + pipeline)
      << ")\n";
  out << "capacity     " << HumanBytes(static_cast<double>(stats.capacity)) << ", "
      << stats.max_samples << " samples, " << stats.max_subscribers << " subscriber slots\n";
  out << "policy       " << OverflowPolicyName(stats.overflow) << ", stall timeout "
      << (stats.stall_timeout ? std::to_string(stats.stall_timeout->count()) + " ms" : "none")
      << "\n";
  char fill[64];
  std::snprintf(fill, sizeof(fill), "%.1f%%",
                stats.capacity ? 100.0 * static_cast<double>(stats.bytes_in_use) /
                                     static_cast<double>(stats.capacity)
                               : 0.0);
  out << "in use       " << HumanBytes(static_cast<double>(stats.bytes_in_use)) << " (" << fill
      << "), " << stats.samples_in_use << " samples\n";
  if (schemas.empty()) {
    out << "schema       none (raw, tensor or frame samples)\n";
  } else {
    for (size_t v = 0; v < schemas.size(); ++v) {
      std::string text = schemas[v];
      // Under the first field: past "schema       vN: ".
      const std::string prefix = "v" + std::to_string(v + 1) + ": ";
      const std::string indent = "\n" + std::string(13 + prefix.size(), ' ');
      for (size_t at = 0; (at = text.find('\n', at)) != std::string::npos; at += indent.size()) {
        text.replace(at, 1, indent);
      }
      out << (v == 0 ? "schema       " : "             ") << prefix << text << "\n";
    }
    out << "evolution    " << evolution
        << (evolution == "strict" ? " (batches must have exactly this schema)"
                                  : " (nullable fields may be added or left out)")
        << "\n";
  }
  out << "publisher    "
      << (stats.publisher_alive ? pid_text(holders.publisher) : std::string("none")) << "\n";
  out << "published    " << stats.published << " samples, "
      << HumanBytes(static_cast<double>(stats.published_bytes)) << "; dropped " << stats.dropped
      << "; stalls " << stats.publisher_stalls;
  if (stats.publisher_waiting.count() > 0) {
    out << " (waiting for room for " << stats.publisher_waiting.count() << " ms now)";
  }
  out << "\nsubscribers  " << stats.subscribers.size() << " of " << stats.max_subscribers
      << "; reclaimed " << stats.reclaimed_subscribers << ", evicted " << stats.evicted_subscribers
      << "\n";
  for (const SubscriberStats& sub : stats.subscribers) {
    const auto it = holders.subscribers.find(sub.slot);
    out << "  slot " << sub.slot << "  "
        << (sub.alive ? pid_text(it != holders.subscribers.end() ? it->second : 0)
                      : std::string("dead"))
        << "  received " << sub.received << "  queued " << sub.queued << "  held " << sub.held
        << "  missed " << sub.missed;
    if (sub.evicted_after.count() > 0)
      out << "  evicted after " << sub.evicted_after.count() << " ms";
    out << "\n";
  }
  out << "processes    ";
  if (others.empty()) out << "none besides this one";
  for (size_t i = 0; i < others.size(); ++i) out << (i ? ", " : "") << pid_text(others[i]);
  out << "\n";
  std::cout << out.str();
  return 0;
}

}  // namespace quiver::cli
