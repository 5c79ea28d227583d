#include "flight/compute.h"

#include <arrow/buffer.h>
#include <arrow/flight/server.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/api.h>
#include <arrow/record_batch.h>
#include <arrow/util/base64.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <optional>
#include <thread>

#include "quiver/arrow.h"
#include "quiver/control.h"

namespace quiver::flight {
namespace fl = arrow::flight;

namespace {

std::string ServiceNames() {
  Result<std::vector<std::string>> names = control::ListServices();
  if (!names.ok() || names->empty()) return "none is";
  std::string out;
  for (const std::string& n : *names) out += (out.empty() ? "" : ", ") + n;
  return "there are: " + out;
}

Result<std::unique_ptr<control::Client>> ConnectService(std::string_view name) {
  QUIVER_ASSIGN_OR_RETURN(std::string path, control::ServicePath(name));
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    return Status::NotFound("no service '" + std::string(name) + "' is served by this user (" +
                            ServiceNames() + ")");
  }
  Result<std::unique_ptr<control::Client>> client =
      control::Client::ConnectUnix(path, std::string(name));
  if (!client.ok()) {
    return client.status().Wrap(ErrorCode::kNotFound, "service '" + std::string(name) +
                                                          "' is not running (its worker is gone)");
  }
  return client;
}

Result<ServiceInfo> Describe(control::Client& client, std::string_view name) {
  QUIVER_ASSIGN_OR_RETURN(
      control::Envelope answer,
      client.Call(control::MakeEnvelope(control::kCmdServiceInfo), std::chrono::seconds(10)));
  const std::string what = "service '" + std::string(name) + "' answered CMD_SERVICE_INFO ";
  auto schema_b64 = answer.payload.find("schema");
  if (answer.type != control::kResOk || schema_b64 == answer.payload.end() ||
      !schema_b64->is_string()) {
    return Status::InvalidArgument(what + "without a schema: " + control::Serialize(answer));
  }
  auto bytes = arrow::util::base64_decode(schema_b64->get<std::string>());
  if (!bytes.ok()) return Status::InvalidArgument(what + "with a schema that is not base64");
  arrow::io::BufferReader reader(std::make_shared<arrow::Buffer>(*bytes));
  arrow::ipc::DictionaryMemo memo;
  auto schema = arrow::ipc::ReadSchema(&reader, &memo);
  if (!schema.ok()) {
    return Status::InvalidArgument(
        what + "with a schema Arrow cannot read: " + schema.status().ToString());
  }
  ServiceInfo info;
  info.name = std::string(name);
  info.description = answer.payload.value("description", "");
  info.schema = std::move(schema).ValueUnsafe();
  return info;
}

// How a call's end becomes the stream's status.
arrow::Status CallFailed(const Status& status, const std::string& service) {
  if (status.code() == ErrorCode::kPeerGone) {
    return fl::MakeFlightError(fl::FlightStatusCode::Unavailable,
                               "the worker of " + service + " died: " + status.ToString());
  }
  return ToArrow(status);
}

class ComputeReader final : public arrow::RecordBatchReader {
 public:
  ComputeReader(std::unique_ptr<control::Client> client, control::PendingCall call, Channel channel,
                ArrowSubscriber subscriber, std::optional<CreationBudget::Reservation> reservation,
                std::shared_ptr<arrow::Schema> schema, std::string service, ComputeOptions options)
      : client_(std::move(client)),
        call_(std::move(call)),
        channel_(std::move(channel)),
        subscriber_(std::move(subscriber)),
        reservation_(std::move(reservation)),
        schema_(std::move(schema)),
        service_(std::move(service)),
        options_(std::move(options)) {}

  std::shared_ptr<arrow::Schema> schema() const override { return schema_; }

  arrow::Status ReadNext(std::shared_ptr<arrow::RecordBatch>* batch) override {
    batch->reset();
    if (ended_) return arrow::Status::OK();
    for (;;) {
      if (options_.stop && options_.stop()) {
        return arrow::Status::Cancelled("the call was cancelled or the server stops");
      }
      Result<ArrowSample> sample = subscriber_.Receive(options_.poll);
      if (sample.ok()) {
        *batch = std::move(sample->batch);
        return arrow::Status::OK();
      }
      if (sample.status().code() == ErrorCode::kTimeout) {
        // An answer before the end of the stream is an error (or a worker gone): a worker
        // closes the channel before it answers RES_OK.
        if (call_.done()) {
          Result<control::Envelope> answer = call_.Wait(std::chrono::milliseconds(0));
          if (!answer.ok()) return End(CallFailed(answer.status(), service_));
        }
        continue;
      }
      if (sample.status().code() != ErrorCode::kPeerGone) return End(ToArrow(sample.status()));
      if (channel_.publisher_died()) {
        return End(fl::MakeFlightError(
            fl::FlightStatusCode::Unavailable,
            "the worker of " + service_ + " died while it published the results"));
      }
      // Every batch is in; the answer says whether they are the whole result.
      for (;;) {
        if (options_.stop && options_.stop()) {
          return arrow::Status::Cancelled("the call was cancelled or the server stops");
        }
        Result<control::Envelope> answer = call_.Wait(options_.poll);
        if (answer.ok()) return End(arrow::Status::OK());
        if (answer.status().code() != ErrorCode::kTimeout) {
          return End(CallFailed(answer.status(), service_));
        }
      }
    }
  }

 private:
  arrow::Status End(arrow::Status status) {
    ended_ = true;
    return status;
  }

  std::unique_ptr<control::Client> client_;
  control::PendingCall call_;
  Channel channel_;
  ArrowSubscriber subscriber_;
  std::optional<CreationBudget::Reservation> reservation_;
  std::shared_ptr<arrow::Schema> schema_;
  std::string service_;
  ComputeOptions options_;
  bool ended_ = false;
};

}  // namespace

bool IsComputeTicket(std::string_view ticket) {
  const size_t first = ticket.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && ticket[first] == '{';
}

Result<ComputeTicket> ParseComputeTicket(std::string_view ticket) {
  if (ticket.size() > kMaxComputeTicket) {
    return Status::ResourceExhausted("a compute ticket may be " +
                                     std::to_string(kMaxComputeTicket) + " bytes, this one is " +
                                     std::to_string(ticket.size()));
  }
  const nlohmann::json j = nlohmann::json::parse(ticket, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::InvalidArgument(
        "a compute ticket is a JSON object {\"service\": NAME, \"request\": {...}}; this one "
        "is not valid JSON");
  }
  auto service = j.find("service");
  if (service == j.end() || !service->is_string()) {
    return Status::InvalidArgument("a compute ticket needs \"service\", a service's name");
  }
  for (const auto& [key, value] : j.items()) {
    if (key != "service" && key != "request") {
      return Status::InvalidArgument(
          "a compute ticket has \"service\" and \"request\" only, not \"" + key + "\"");
    }
  }
  ComputeTicket out;
  out.service = service->get<std::string>();
  QUIVER_RETURN_IF_ERROR(control::ValidateServiceName(out.service));
  if (auto request = j.find("request"); request != j.end()) out.request = *request;
  return out;
}

Result<ServiceInfo> DescribeService(std::string_view name) {
  QUIVER_ASSIGN_OR_RETURN(std::unique_ptr<control::Client> client, ConnectService(name));
  return Describe(*client, name);
}

namespace {

// A call's private result channel, subscribed, and what it is charged to.
struct Results {
  std::string name;
  std::optional<CreationBudget::Reservation> reservation;
  Channel channel;
  ArrowSubscriber subscriber;
};

Result<Results> OpenResults(const ServiceInfo& info, const ComputeOptions& options) {
  const std::string name = "call-" + control::NewMsgId();  // a fresh id: nobody else's
  std::optional<CreationBudget::Reservation> reservation;
  if (options.budget != nullptr) {
    QUIVER_ASSIGN_OR_RETURN(CreationBudget::Reservation share,
                            options.budget->Reserve(name, options.capacity));
    reservation.emplace(std::move(share));
  }
  QUIVER_ASSIGN_OR_RETURN(Channel channel,
                          CreateArrowChannel(name, info.schema, {.capacity = options.capacity}));
  ArrowSubscriberOptions sub_options;
  sub_options.reader_schema = info.schema;
  QUIVER_ASSIGN_OR_RETURN(ArrowSubscriber subscriber, ArrowSubscriber::Make(channel, sub_options));
  return Results{name, std::move(reservation), std::move(channel), std::move(subscriber)};
}

}  // namespace

Result<std::unique_ptr<fl::FlightDataStream>> RunCompute(const ComputeTicket& ticket,
                                                         ComputeOptions options) {
  QUIVER_ASSIGN_OR_RETURN(std::unique_ptr<control::Client> client, ConnectService(ticket.service));
  QUIVER_ASSIGN_OR_RETURN(ServiceInfo info, Describe(*client, ticket.service));
  QUIVER_ASSIGN_OR_RETURN(Results results, OpenResults(info, options));
  QUIVER_ASSIGN_OR_RETURN(
      control::PendingCall call,
      client->Send(control::MakeEnvelope(control::kCmdServiceCall,
                                         {{"request", ticket.request}, {"stream", results.name}})));
  auto reader = std::make_shared<ComputeReader>(
      std::move(client), std::move(call), std::move(results.channel), std::move(results.subscriber),
      std::move(results.reservation), info.schema, "service '" + ticket.service + "'",
      std::move(options));
  return std::unique_ptr<fl::FlightDataStream>(
      std::make_unique<fl::RecordBatchStream>(std::move(reader)));
}

arrow::Status RunExchange(const ComputeTicket& ticket, fl::FlightMessageReader& reader,
                          fl::FlightMessageWriter& writer, ComputeOptions options) {
  const std::string service = "service '" + ticket.service + "'";
  Result<std::unique_ptr<control::Client>> client = ConnectService(ticket.service);
  if (!client.ok()) return ToArrow(client.status());
  Result<ServiceInfo> info = Describe(**client, ticket.service);
  if (!info.ok()) return ToArrow(info.status());
  ARROW_ASSIGN_OR_RAISE(std::shared_ptr<arrow::Schema> input_schema, reader.GetSchema());

  // The input channel, of the client's schema, charged to the budget like a DoPut's.
  const std::string input = "in-" + control::NewMsgId();
  Result<RemotePublisher> feed = RemotePublisher::Open(
      input, input_schema, options.capacity, OverflowPolicy::kBlock, options.poll, options.budget);
  if (!feed.ok()) return ToArrow(feed.status());
  std::optional<RemotePublisher> publisher(std::move(*feed));
  Result<Channel> input_channel = Channel::Open(input);
  if (!input_channel.ok()) return ToArrow(input_channel.status());

  Result<Results> results = OpenResults(*info, options);
  if (!results.ok()) return ToArrow(results.status());
  Result<control::PendingCall> call = (*client)->Send(control::MakeEnvelope(
      control::kCmdServiceCall,
      {{"request", ticket.request}, {"stream", results->name}, {"input", input}}));
  if (!call.ok()) return ToArrow(call.status());

  // Nothing is published before the worker subscribed to the input (or failed to).
  while (true) {
    const ChannelStats stats = input_channel->Stats();
    if (std::any_of(stats.subscribers.begin(), stats.subscribers.end(),
                    [](const SubscriberStats& s) { return s.alive; })) {
      break;
    }
    if (options.stop && options.stop()) {
      return arrow::Status::Cancelled("the call was cancelled or the server stops");
    }
    if (call->done()) {
      Result<control::Envelope> answer = call->Wait(std::chrono::milliseconds(0));
      return answer.ok() ? arrow::Status::OK() : CallFailed(answer.status(), service);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ARROW_RETURN_NOT_OK(writer.Begin(info->schema));

  // The results go back from a thread of their own while this one reads the client.
  std::atomic<bool> results_ended{false};
  arrow::Status results_status;
  ComputeReader stream(std::move(*client), *call, std::move(results->channel),
                       std::move(results->subscriber), std::move(results->reservation),
                       info->schema, service, options);
  std::thread back([&] {
    while (true) {
      std::shared_ptr<arrow::RecordBatch> batch;
      arrow::Status st = stream.ReadNext(&batch);
      if (st.ok() && batch == nullptr) break;
      if (st.ok()) st = writer.WriteRecordBatch(*batch);
      if (!st.ok()) {
        results_status = st;
        // The status can only go out once the client has ended its side (this thread cannot
        // end a read the other one waits in): say it now, in a metadata-only message, so a
        // client that waits for a result before it sends more learns why none comes.
        const std::string error =
            nlohmann::json{
                {"error", {{"code", static_cast<int>(st.code())}, {"message", st.ToString()}}}}
                .dump();
        (void)writer.WriteMetadata(arrow::Buffer::FromString(error));
        break;
      }
    }
    results_ended.store(true);
  });
  auto stop_feeding = [&] { return results_ended.load() || (options.stop && options.stop()); };
  arrow::Status feed_status;
  while (true) {
    arrow::Result<fl::FlightStreamChunk> chunk = reader.Next();
    if (!chunk.ok()) {
      feed_status = chunk.status();
      break;
    }
    if (chunk->data == nullptr) break;   // the client sent everything
    if (results_ended.load()) continue;  // the worker answered or died: drain to the end
    if (Status published = publisher->Publish(chunk->data, stop_feeding); !published.ok()) {
      if (!results_ended.load()) feed_status = ToArrow(published);
      break;
    }
  }
  publisher.reset();  // the end of the input: the worker's inputs end, and it answers
  back.join();
  if (!results_status.ok()) return results_status;
  return feed_status;
}

}  // namespace quiver::flight
