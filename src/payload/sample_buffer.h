// Arrow buffers over Quiver samples: zero-copy views that keep their sample alive, and
// writable views over loans. Thread-safe as arrow::Buffer is (immutable after creation).
#pragma once

#include <arrow/buffer.h>

#include <memory>

#include "quiver/channel.h"

namespace quiver::payload {

/// The whole of `sample` as an arrow::Buffer. Every slice of it (and so every array built
/// on it) holds the sample, which is released when the last of them is gone.
std::shared_ptr<arrow::Buffer> WrapSample(std::shared_ptr<const Sample> sample);

/// The whole of `loan` as a writable arrow::MutableBuffer. Does not own the loan: the
/// caller keeps the LoanedSample alive while the buffer is used.
std::shared_ptr<arrow::MutableBuffer> WrapLoan(const LoanedSample& loan);

}  // namespace quiver::payload
