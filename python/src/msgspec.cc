// Publisher.publish_msgspec's native half: records of a schema still in flux arrive
// msgpack-encoded (msgspec) and become an Arrow batch of the channel's newest schema, fields
// bound by name (DecodeMsgpackRecords), then are published like any batch.
#include <arrow/record_batch.h>

#include <memory>
#include <string_view>

#include "blocking.h"
#include "errors.h"
#include "publisher.h"
#include "quiver/msgpack_records.h"

namespace nb = nanobind;

namespace quiver::python {

void PyPublisher::PublishMsgpack(nb::bytes data) {
  ArrowPublisher& p = arrow();
  auto schema = Unwrap(ChannelSchema(channel_));
  const std::string_view bytes(data.c_str(), data.size());
  std::shared_ptr<arrow::RecordBatch> batch = Unwrap([&] {
    nb::gil_scoped_release release;
    return DecodeMsgpackRecords(bytes, schema);
  }());
  Check(Interruptibly(channel_.name(), loan_timeout_, [&] { return p.Publish(*batch); }));
}

}  // namespace quiver::python
