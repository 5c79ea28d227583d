// Streams: the result channels a worker publishes on (CMD_STREAM_START), and the safe handles
// of what it publishes.
#include <map>
#include <optional>

#include "quiver/arrow.h"
#include "quiver/control.h"
#include "quiver/schema_file.h"

namespace quiver::control {
namespace {

// The optional unsigned field `key` of `payload`, or `fallback`.
Result<uint64_t> OptionalCount(const nlohmann::json& payload, const char* key, uint64_t fallback) {
  auto it = payload.find(key);
  if (it == payload.end()) return fallback;
  if (!it->is_number_integer() || (!it->is_number_unsigned() && it->get<int64_t>() < 0)) {
    return Status::InvalidArgument(std::string("CMD_STREAM_START payload.") + key +
                                   " must be a whole number of at least 0");
  }
  return it->get<uint64_t>();
}

}  // namespace

struct Streams::Impl {
  struct Stream {
    std::optional<ArrowPublisher> arrow;  // a stream with a schema
    std::optional<Publisher> raw;         // one without
    Publisher& publisher() { return arrow ? arrow->publisher() : *raw; }
  };
  Result<Stream*> Find(std::string_view name) {
    auto it = publishers.find(name);
    if (it != publishers.end()) return it->second.get();
    std::string names;
    for (const auto& [n, pub] : publishers) names += (names.empty() ? "" : ", ") + n;
    return Status::NotFound("no stream '" + std::string(name) + "' was started (" +
                            (names.empty() ? std::string("none is") : "there are: " + names) + ")");
  }
  std::mutex mu;
  std::map<std::string, std::unique_ptr<Stream>, std::less<>> publishers;
};

Streams::Streams() : impl_(std::make_unique<Impl>()) {}
Streams::~Streams() = default;

Result<std::pair<Channel, Envelope>> StartStream(const Envelope& command) {
  const nlohmann::json& p = command.payload;
  auto stream = p.find("stream");
  if (stream == p.end() || !stream->is_string()) {
    return Status::InvalidArgument(
        "CMD_STREAM_START needs payload.stream, the name of the channel to make");
  }
  const std::string name = stream->get<std::string>();
  ChannelOptions options;
  QUIVER_ASSIGN_OR_RETURN(uint64_t capacity, OptionalCount(p, "capacity", options.capacity));
  QUIVER_ASSIGN_OR_RETURN(uint64_t max_samples,
                          OptionalCount(p, "max_samples", options.max_samples));
  if (max_samples > kMaxSamples) {
    return Status::InvalidArgument("CMD_STREAM_START payload.max_samples must be at most " +
                                   std::to_string(kMaxSamples));
  }
  options.capacity = capacity;
  options.max_samples = static_cast<uint32_t>(max_samples);
  if (auto overflow = p.find("overflow"); overflow != p.end()) {
    if (!overflow->is_string()) {
      return Status::InvalidArgument("CMD_STREAM_START payload.overflow must be a string");
    }
    QUIVER_ASSIGN_OR_RETURN(options.overflow, ParseOverflowPolicy(overflow->get<std::string>()));
  }
  Result<Channel> channel = Status::OK();
  if (auto schema = p.find("schema"); schema != p.end()) {
    QUIVER_ASSIGN_OR_RETURN(std::shared_ptr<arrow::Schema> parsed,
                            ParseSchemaJson(schema->dump(), "CMD_STREAM_START payload.schema"));
    channel = CreateArrowChannel(name, parsed, options);
  } else {
    channel = Channel::Create(name, options);
  }
  if (!channel.ok()) return channel.status();
  Envelope answer =
      MakeEnvelope(kResOk, {{"stream", name},
                            {"segment_id", channel->name()},
                            {"generation", channel->generation()},
                            {"capacity", channel->capacity()},
                            {"overflow", std::string(OverflowPolicyName(channel->overflow()))}});
  return std::pair<Channel, Envelope>(std::move(channel).value(), std::move(answer));
}

Result<Envelope> Streams::Start(const Envelope& command) {
  std::lock_guard lock(impl_->mu);
  // A stream started already is a live channel: Channel::Create refuses its name
  // (kAlreadyExists), the one rule for both languages' Streams.
  QUIVER_ASSIGN_OR_RETURN(auto started, StartStream(command));
  auto stream = std::make_unique<Impl::Stream>();
  if (started.first.type_versions() > 0) {
    QUIVER_ASSIGN_OR_RETURN(ArrowPublisher publisher, ArrowPublisher::Make(started.first));
    stream->arrow.emplace(std::move(publisher));
  } else {
    QUIVER_ASSIGN_OR_RETURN(Publisher publisher, started.first.CreatePublisher());
    stream->raw.emplace(std::move(publisher));
  }
  impl_->publishers.emplace(started.first.name(), std::move(stream));
  return std::move(started.second);
}

Handler Streams::handler() {
  return [this](const Envelope& command) { return Start(command); };
}

Result<Publisher*> Streams::Find(std::string_view name) {
  std::lock_guard lock(impl_->mu);
  QUIVER_ASSIGN_OR_RETURN(Impl::Stream * stream, impl_->Find(name));
  return &stream->publisher();
}

Result<ArrowPublisher*> Streams::FindArrow(std::string_view name) {
  std::lock_guard lock(impl_->mu);
  QUIVER_ASSIGN_OR_RETURN(Impl::Stream * stream, impl_->Find(name));
  if (!stream->arrow) {
    return Status::InvalidArgument("stream '" + std::string(name) +
                                   "' has no schema: publish bytes, tensors or frames on it");
  }
  return &*stream->arrow;
}

Result<ShmHandle> HandleForLast(const Publisher& publisher, ShmFormat format) {
  QUIVER_ASSIGN_OR_RETURN(PublishedSample last, publisher.last_published());
  const Channel channel = publisher.channel();
  return ShmHandle{channel.name(), last.offset,          last.size,
                   format,         channel.generation(), last.sequence};
}

Result<Envelope> PublishResult(Publisher& publisher, std::span<const std::byte> bytes,
                               nlohmann::json payload) {
  QUIVER_RETURN_IF_ERROR(publisher.PublishCopy(bytes));
  Envelope answer = MakeEnvelope(kResDataReady, std::move(payload));
  QUIVER_ASSIGN_OR_RETURN(answer.shm_handle, HandleForLast(publisher, ShmFormat::kRaw));
  return answer;
}

}  // namespace quiver::control
