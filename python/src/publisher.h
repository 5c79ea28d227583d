// quiver._quiver.Publisher: the one writer of a channel, seen from Python. Arrow data
// arrives as C data interface capsules, bytes as bytes, tensors as loans; every call that
// may wait for room waits Interruptibly (blocking.h). Thread-compatible, as Publisher.
#pragma once

#include <nanobind/nanobind.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "quiver/arrow.h"
#include "quiver/channel.h"
#include "tensor_loan.h"

namespace quiver::python {

class PyPublisher {
 public:
  PyPublisher(Channel channel, std::optional<double> loan_timeout);

  Publisher& publisher() { return arrow_ ? arrow_->publisher() : *raw_; }
  /// The Arrow publisher; InvalidArgumentError for a channel without a schema.
  ArrowPublisher& arrow();

  void PublishCArray(nanobind::handle schema_capsule, nanobind::handle array_capsule);
  /// Publishes each batch of the stream (an empty one only if it is the first); returns how
  /// many were published.
  int64_t PublishCStream(nanobind::handle stream_capsule);
  /// msgpack-encoded records (msgspec), decoded into a batch of the channel schema in C++.
  /// In msgspec.cc.
  void PublishMsgpack(nanobind::bytes data);
  void PublishBytes(nanobind::bytes data);
  TensorLoan LoanTensor(std::vector<int64_t> shape, const std::string& dtype);

  uint32_t subscriber_count() { return publisher().subscriber_count(); }
  Channel& channel() { return channel_; }

 private:
  Channel channel_;
  std::optional<double> loan_timeout_;  // the caller's; loans themselves wait a slice each
  std::optional<ArrowPublisher> arrow_;
  std::optional<Publisher> raw_;
};

}  // namespace quiver::python
