// Tensor samples: an n-dimensional array of fixed-width numbers in one channel sample, read in
// place as an arrow::Tensor. Free functions; a LoanedTensor is thread-compatible like the
// LoanedSample it owns, and the arrow::Tensor a reader gets is immutable (thread-safe).
//
// A tensor sample is [SampleHeader | TensorHeader | padding | elements], the elements starting
// at a multiple of 64 bytes. The layout is a wire format: docs/ARCHITECTURE.md, "Typed samples".
//
//   auto loan = quiver::LoanTensor(publisher, arrow::float32(), {480, 640, 3});
//   FillPixels(loan->data());                       // written in place, row-major
//   quiver::PublishTensor(publisher, std::move(*loan));
//
//   auto tensor = quiver::ReadTensor(std::make_shared<const quiver::Sample>(std::move(sample)));
#pragma once

#include <arrow/tensor.h>
#include <arrow/type_fwd.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

#include "quiver/channel.h"
#include "quiver/status.h"

namespace quiver {

static_assert(std::endian::native == std::endian::little,
              "typed sample headers are little-endian and copied as raw structs");

inline constexpr uint32_t kTensorHeaderVersion = 1;
/// Dimensions a tensor sample can carry (the fixed arrays of TensorHeader).
inline constexpr uint32_t kMaxTensorDims = 8;

/// The kind-specific header of a kTensor sample, at SampleHeader::meta_offset
/// (meta_length == sizeof(TensorHeader)). Little-endian, 144 bytes.
struct TensorHeader {
  uint32_t version;   // kTensorHeaderVersion
  uint32_t dtype;     // arrow::Type::type id: UINT8 (2) .. DOUBLE (12), HALF_FLOAT (10) included
  uint32_t ndim;      // 0 (a scalar: one element) .. kMaxTensorDims
  uint32_t reserved;  // 0
  int64_t shape[kMaxTensorDims];    // elements per dimension, >= 0; slots >= ndim are 0
  int64_t strides[kMaxTensorDims];  // bytes, >= 0, multiples of the element size
};
static_assert(std::is_trivially_copyable_v<TensorHeader> && sizeof(TensorHeader) == 144 &&
              alignof(TensorHeader) == 8 && offsetof(TensorHeader, shape) == 16 &&
              offsetof(TensorHeader, strides) == 80);

/// A tensor being written in place in a loaned sample. Its headers are already written; fill
/// data() (row-major, C order) and hand it to PublishTensor. Dropping it unpublished gives the
/// space back. Move-only.
class LoanedTensor {
 public:
  /// The elements, row-major, 64-byte aligned, not zeroed: size() * element bytes.
  std::span<std::byte> data() const { return data_; }
  const std::shared_ptr<arrow::DataType>& type() const { return type_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  /// Row-major strides in bytes.
  const std::vector<int64_t>& strides() const { return strides_; }
  /// Number of elements (1 for a 0-d tensor).
  int64_t size() const { return size_; }

  /// The whole loaned sample, headers included. For tests and tools that need the raw bytes;
  /// writing outside data() produces a sample readers will refuse.
  LoanedSample& sample() { return sample_; }

 private:
  friend Result<LoanedTensor> LoanTensor(Publisher&, std::shared_ptr<arrow::DataType>,
                                         std::vector<int64_t>, LoanWait);
  LoanedTensor(LoanedSample sample, std::span<std::byte> data,
               std::shared_ptr<arrow::DataType> type, std::vector<int64_t> shape,
               std::vector<int64_t> strides, int64_t size);

  LoanedSample sample_;
  std::span<std::byte> data_;
  std::shared_ptr<arrow::DataType> type_;
  std::vector<int64_t> shape_;
  std::vector<int64_t> strides_;
  int64_t size_ = 0;
};

/// The tensor element type named `name` as numpy names it: "uint8", "int8", ... "int64",
/// "float16", "float32", "float64". kInvalidArgument for any other name.
Result<std::shared_ptr<arrow::DataType>> TensorTypeFromName(std::string_view name);
/// The numpy name of a tensor element type ("float32"), or "" for a type a tensor sample
/// cannot hold: the inverse of TensorTypeFromName.
std::string_view TensorTypeName(const arrow::DataType& type);

/// Loans a sample for a row-major tensor of `type` (a fixed-width integer or floating-point
/// type) and `shape` (at most kMaxTensorDims dimensions, each >= 0; empty = a scalar) and
/// writes its headers. kInvalidArgument for any other type or shape; loan errors as
/// Publisher::Loan.
Result<LoanedTensor> LoanTensor(Publisher& publisher, std::shared_ptr<arrow::DataType> type,
                                std::vector<int64_t> shape, LoanWait wait = LoanWait::kForRoom);

/// Publishes a tensor loaned by LoanTensor.
Status PublishTensor(Publisher& publisher, LoanedTensor&& tensor);

/// Publishes a copy of `tensor`: its elements are copied once, straight into shared memory,
/// in row-major order whatever its strides. Dimension names are not carried.
Status PublishTensor(Publisher& publisher, const arrow::Tensor& tensor);

/// A received tensor, checked, as its fields (ReadTensorView): elements of `type`, `shape`,
/// `strides` in bytes, in `data` (inside the sample, which `sample` keeps received).
struct TensorView {
  std::shared_ptr<arrow::DataType> type;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;
  std::span<const std::byte> data;
  std::shared_ptr<const Sample> sample;
};

/// The tensor in `sample`, without copying and without making an arrow::Tensor (for a
/// binding that makes its own array object). Every header field is checked first, so no
/// element lies outside the sample: kShmCorruption (naming the field) if one is wrong;
/// kInvalidArgument if `sample` is null or a valid sample of another kind.
Result<TensorView> ReadTensorView(std::shared_ptr<const Sample> sample);

/// Returns the tensor in `sample` without copying: its buffer is a slice of the sample, and
/// the sample stays received until the tensor and every buffer taken from it are gone.
/// Checked and refused as ReadTensorView.
Result<std::shared_ptr<arrow::Tensor>> ReadTensor(std::shared_ptr<const Sample> sample);

}  // namespace quiver
