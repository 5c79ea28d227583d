#include "flight/tail_stream.h"

#include <arrow/record_batch.h>

#include "flight/common.h"
#include "quiver/arrow.h"

namespace quiver::flight {
namespace fl = arrow::flight;

namespace {

// Flight's RecordBatchStream turns each batch of this reader into an IPC payload that
// references the batch's buffers; gRPC's serializer wraps them as slices (no copy).
class TailReader final : public arrow::RecordBatchReader {
 public:
  TailReader(ArrowSubscriber subscriber, std::shared_ptr<arrow::Schema> schema,
             std::function<bool()> stop, std::chrono::milliseconds poll)
      : subscriber_(std::move(subscriber)),
        schema_(std::move(schema)),
        stop_(std::move(stop)),
        poll_(poll) {}

  std::shared_ptr<arrow::Schema> schema() const override { return schema_; }

  arrow::Status ReadNext(std::shared_ptr<arrow::RecordBatch>* batch) override {
    batch->reset();
    for (;;) {
      if (stop_()) return arrow::Status::Cancelled("the call was cancelled or the server stops");
      Result<ArrowSample> sample = subscriber_.Receive(poll_);
      if (sample.ok()) {
        *batch = std::move(sample->batch);
        return arrow::Status::OK();
      }
      if (sample.status().code() == ErrorCode::kTimeout) continue;
      if (sample.status().code() == ErrorCode::kPeerGone) return arrow::Status::OK();  // end
      return ToArrow(sample.status());
    }
  }

 private:
  ArrowSubscriber subscriber_;
  std::shared_ptr<arrow::Schema> schema_;
  std::function<bool()> stop_;
  std::chrono::milliseconds poll_;
};

}  // namespace

Result<std::unique_ptr<fl::FlightDataStream>> MakeTailStream(Channel& channel,
                                                             const SubscriberOptions& subscriber,
                                                             std::function<bool()> stop,
                                                             std::chrono::milliseconds poll) {
  QUIVER_ASSIGN_OR_RETURN(std::shared_ptr<arrow::Schema> schema, ChannelSchema(channel));
  ArrowSubscriberOptions options;
  options.subscriber = subscriber;
  options.reader_schema = schema;
  QUIVER_ASSIGN_OR_RETURN(ArrowSubscriber tail, ArrowSubscriber::Make(channel, options));
  auto reader = std::make_shared<TailReader>(std::move(tail), schema, std::move(stop), poll);
  return std::unique_ptr<fl::FlightDataStream>(
      std::make_unique<fl::RecordBatchStream>(std::move(reader)));
}

}  // namespace quiver::flight
