// quiver._quiver.Publisher: the one writer of a channel, seen from Python. Arrow data
// arrives as C data interface capsules, bytes as bytes, tensors and frames as loans or numpy
// arrays; every call that may wait for room waits Interruptibly (blocking.h).
// Thread-compatible, as Publisher.
#pragma once

#include <nanobind/nanobind.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "arrays.h"
#include "frame_loan.h"
#include "quiver/arrow.h"
#include "quiver/channel.h"
#include "quiver/sample_header.h"
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
  /// An image frame loan (LoanImageFrame); `pixel_format` a ParsePixelFormat name, no
  /// `stride`: C++'s default (tight rows). In frame_loan.cc, as the three below.
  ImageLoan LoanImage(int64_t width, int64_t height, const std::string& pixel_format,
                      std::optional<int64_t> stride);
  /// One copy of `pixels`, (height, width[, channels]) of the format's dtype, any strides.
  void PublishImage(const AnyCpuArray& pixels, const std::string& pixel_format,
                    std::optional<int64_t> stride);
  /// An audio frame loan (LoanAudioFrame); `sample_format` a ParseSampleFormat name.
  AudioLoan LoanAudio(int64_t frame_count, int64_t sample_rate, int64_t channels,
                      const std::string& sample_format);
  /// One copy of `pcm`, (frames, channels) or (frames,); no `sample_format`: the one whose
  /// numpy dtype `pcm` has.
  void PublishAudio(const AnyCpuArray& pcm, int64_t sample_rate,
                    std::optional<std::string> sample_format);

  uint32_t subscriber_count() { return publisher().subscriber_count(); }
  Channel& channel() { return channel_; }

 private:
  /// The publisher of samples of `kind` (nullopt: raw bytes) on a channel without a schema;
  /// InvalidArgumentError, by CheckChannelCarries, for one with an Arrow schema.
  Publisher& untyped_publisher(std::optional<PayloadKind> kind);

  Channel channel_;
  std::optional<double> loan_timeout_;  // the caller's; loans themselves wait a slice each
  std::optional<ArrowPublisher> arrow_;
  std::optional<Publisher> raw_;
};

}  // namespace quiver::python
