// quiver._quiver.Sample: one received sample, held while the Python object (or a view made
// from it) lives. An Arrow sample is decoded on receipt; any other is kept as bytes and
// read by its kind's C++ reader when Python asks for a numpy view.
#pragma once

#include <nanobind/nanobind.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "quiver/arrow.h"
#include "quiver/channel.h"
#include "quiver/frame.h"
#include "quiver/sample_header.h"

namespace quiver::python {

struct PySample {
  std::shared_ptr<const Sample> raw;  // set for non-Arrow samples
  ArrowSample arrow;                  // set for Arrow samples
  uint64_t sequence = 0;
  uintptr_t address = 0;
  uint64_t offset = 0;
  size_t size = 0;

  /// The kind the sample's header names (PeekPayloadKind); nullopt for raw bytes.
  std::optional<PayloadKind> payload_kind() const;
  /// "arrow", "tensor", "image", "audio" or "raw": Sample.kind in Python.
  std::string kind() const;
  /// The decoded batch; InvalidArgumentError for a sample of another kind.
  const arrow::RecordBatch& batch() const;
  /// A read-only numpy view of a tensor, frame or raw sample.
  nanobind::object ToNumpy() const;
  /// The header of an image frame (ReadImageFrame); InvalidArgumentError for another kind.
  ImageFrameInfo image_info() const;
  /// The header of an audio frame (ReadAudioFrame); InvalidArgumentError for another kind.
  AudioFrameInfo audio_info() const;
};

}  // namespace quiver::python
