#include "quiver/tensor.h"

#include <arrow/buffer.h>
#include <arrow/type.h>

#include <cstring>
#include <string>
#include <string_view>

#include "payload/sample_buffer.h"
#include "payload/typed_header.h"
#include "quiver/sample_header.h"
#include "shm/stream_copy.h"

namespace quiver {
namespace {

// The dtype field stores arrow::Type ids, so they are part of our wire format: fail the build
// rather than silently change the meaning of bytes already written.
static_assert(arrow::Type::UINT8 == 2 && arrow::Type::INT8 == 3 && arrow::Type::UINT16 == 4 &&
              arrow::Type::INT16 == 5 && arrow::Type::UINT32 == 6 && arrow::Type::INT32 == 7 &&
              arrow::Type::UINT64 == 8 && arrow::Type::INT64 == 9 &&
              arrow::Type::HALF_FLOAT == 10 && arrow::Type::FLOAT == 11 &&
              arrow::Type::DOUBLE == 12);

// The element types a tensor sample may hold, with the names numpy gives them (Python's
// loan_ndarray passes np.dtype(...).name).
struct TensorType {
  arrow::Type::type id;
  std::string_view name;
  const std::shared_ptr<arrow::DataType>& (*make)();
};
constexpr TensorType kTensorTypes[] = {
    {arrow::Type::UINT8, "uint8", arrow::uint8},
    {arrow::Type::INT8, "int8", arrow::int8},
    {arrow::Type::UINT16, "uint16", arrow::uint16},
    {arrow::Type::INT16, "int16", arrow::int16},
    {arrow::Type::UINT32, "uint32", arrow::uint32},
    {arrow::Type::INT32, "int32", arrow::int32},
    {arrow::Type::UINT64, "uint64", arrow::uint64},
    {arrow::Type::INT64, "int64", arrow::int64},
    {arrow::Type::HALF_FLOAT, "float16", arrow::float16},
    {arrow::Type::FLOAT, "float32", arrow::float32},
    {arrow::Type::DOUBLE, "float64", arrow::float64},
};

// The data type for a dtype id we accept, or nullptr. Decoded from our own table so that a
// reader never trusts a shared id beyond this list.
std::shared_ptr<arrow::DataType> TypeFromId(uint32_t id) {
  for (const TensorType& t : kTensorTypes) {
    if (static_cast<uint32_t>(t.id) == id) return t.make();
  }
  return nullptr;
}

// The body starts at the first aligned offset after both headers.
constexpr uint64_t kTensorBodyOffset = payload::BodyOffsetAfter(sizeof(TensorHeader));

Status Corrupt(const std::string& what) { return Status::ShmCorruption("tensor sample: " + what); }

// Copies a row-major or strided source into row-major `out`, one element at a time.
void CopyStrided(const arrow::Tensor& src, std::span<std::byte> out) {
  const int ndim = src.ndim();
  const size_t elem = static_cast<size_t>(src.type()->byte_width());
  std::vector<int64_t> index(static_cast<size_t>(ndim), 0);
  const auto* base = reinterpret_cast<const std::byte*>(src.raw_data());
  for (size_t offset = 0; offset < out.size(); offset += elem) {
    std::memcpy(out.data() + offset, base + src.CalculateValueOffset(index), elem);
    for (int d = ndim - 1; d >= 0; --d) {  // odometer: the last index runs fastest
      if (++index[static_cast<size_t>(d)] < src.shape()[static_cast<size_t>(d)]) break;
      index[static_cast<size_t>(d)] = 0;
    }
  }
}

}  // namespace

LoanedTensor::LoanedTensor(LoanedSample sample, std::span<std::byte> data,
                           std::shared_ptr<arrow::DataType> type, std::vector<int64_t> shape,
                           std::vector<int64_t> strides, int64_t size)
    : sample_(std::move(sample)),
      data_(data),
      type_(std::move(type)),
      shape_(std::move(shape)),
      strides_(std::move(strides)),
      size_(size) {}

Result<std::shared_ptr<arrow::DataType>> TensorTypeFromName(std::string_view name) {
  std::string names;
  for (const TensorType& t : kTensorTypes) {
    if (t.name == name) return t.make();
    names += (names.empty() ? "" : ", ") + std::string(t.name);
  }
  return Status::InvalidArgument("unsupported dtype '" + std::string(name) +
                                 "' (use a fixed-width integer or float dtype: " + names + ")");
}

std::string_view TensorTypeName(const arrow::DataType& type) {
  for (const TensorType& t : kTensorTypes) {
    if (t.id == type.id()) return t.name;
  }
  return {};
}

Result<LoanedTensor> LoanTensor(Publisher& publisher, std::shared_ptr<arrow::DataType> type,
                                std::vector<int64_t> shape, LoanWait wait) {
  if (type == nullptr || TypeFromId(static_cast<uint32_t>(type->id())) == nullptr) {
    return Status::InvalidArgument(
        "tensor type must be a fixed-width integer or floating-point type, not " +
        (type ? type->ToString() : std::string("null")));
  }
  if (shape.size() > kMaxTensorDims) {
    return Status::InvalidArgument("tensor of " + std::to_string(shape.size()) +
                                   " dimensions; at most " + std::to_string(kMaxTensorDims));
  }
  const auto elem = static_cast<int64_t>(type->byte_width());
  int64_t count = 1;
  for (int64_t dim : shape) {
    if (dim < 0 || __builtin_mul_overflow(count, dim, &count)) {
      return Status::InvalidArgument(
          "tensor shape has a negative or too large "
          "dimension");
    }
  }
  int64_t body_length = 0;
  if (__builtin_mul_overflow(count, elem, &body_length)) {
    return Status::InvalidArgument("tensor too large");
  }
  // Row-major strides in bytes: the last dimension is contiguous. An empty tensor gets the
  // element size in every dimension, as Arrow gives it, so readers see is_row_major().
  std::vector<int64_t> strides(shape.size(), elem);
  if (count > 0 && !shape.empty()) {
    for (size_t d = shape.size() - 1; d-- > 0;) strides[d] = strides[d + 1] * shape[d + 1];
  }

  TensorHeader tensor{};
  tensor.version = kTensorHeaderVersion;
  tensor.dtype = static_cast<uint32_t>(type->id());
  tensor.ndim = static_cast<uint32_t>(shape.size());
  for (size_t d = 0; d < shape.size(); ++d) {
    tensor.shape[d] = shape[d];
    tensor.strides[d] = strides[d];
  }
  QUIVER_ASSIGN_OR_RETURN(LoanedSample loan,
                          payload::LoanTypedSample(publisher, PayloadKind::kTensor,
                                                   std::as_bytes(std::span(&tensor, 1)),
                                                   static_cast<uint64_t>(body_length),
                                                   static_cast<uint64_t>(count), wait));
  std::span<std::byte> data = loan.data().subspan(kTensorBodyOffset);
  return LoanedTensor(std::move(loan), data, std::move(type), std::move(shape), std::move(strides),
                      count);
}

Status PublishTensor(Publisher& publisher, LoanedTensor&& tensor) {
  return publisher.Publish(std::move(tensor.sample()));
}

Status PublishTensor(Publisher& publisher, const arrow::Tensor& tensor) {
  // An arrow::Tensor built with its plain constructor is unchecked: refuse one whose strides
  // would make us read outside its buffer.
  if (arrow::Status st = tensor.Validate(); !st.ok()) {
    return Status::InvalidArgument("invalid arrow::Tensor: " + st.ToString());
  }
  QUIVER_ASSIGN_OR_RETURN(LoanedTensor loan, LoanTensor(publisher, tensor.type(), tensor.shape()));
  if (!loan.data().empty()) {
    if (tensor.is_row_major()) {
      shm::CopyToShared(loan.data().data(), tensor.raw_data(), loan.data().size());
    } else {
      CopyStrided(tensor, loan.data());
    }
  }
  return PublishTensor(publisher, std::move(loan));
}

Result<TensorView> ReadTensorView(std::shared_ptr<const Sample> sample) {
  if (sample == nullptr) return Status::InvalidArgument("null sample");
  TensorHeader h;
  QUIVER_ASSIGN_OR_RETURN(SampleHeader header,
                          payload::ReadTypedHeader(sample->data(), PayloadKind::kTensor,
                                                   std::as_writable_bytes(std::span(&h, 1))));
  if (h.version != kTensorHeaderVersion) {
    return Corrupt("tensor header version " + std::to_string(h.version) + ", this build reads " +
                   std::to_string(kTensorHeaderVersion));
  }
  std::shared_ptr<arrow::DataType> type = TypeFromId(h.dtype);
  if (type == nullptr) return Corrupt("dtype " + std::to_string(h.dtype) + " is not supported");
  if (h.ndim > kMaxTensorDims) {
    return Corrupt("ndim " + std::to_string(h.ndim) + " exceeds " + std::to_string(kMaxTensorDims));
  }
  const auto elem = static_cast<int64_t>(type->byte_width());
  std::vector<int64_t> shape(h.shape, h.shape + h.ndim);
  std::vector<int64_t> strides(h.strides, h.strides + h.ndim);
  int64_t count = 1;
  bool empty = false;
  for (uint32_t d = 0; d < h.ndim; ++d) {
    auto field = [d] { return "[" + std::to_string(d) + "] "; };  // for errors only
    if (shape[d] < 0) return Corrupt("shape" + field() + std::to_string(shape[d]) + " < 0");
    if (__builtin_mul_overflow(count, shape[d], &count)) {
      return Corrupt("shape" + field() + "overflows the element count");
    }
    // Element-size multiples keep every element naturally aligned (the body is 64-aligned),
    // so typed access through arrow::Tensor::Value is well defined.
    if (strides[d] < 0 || strides[d] % elem != 0) {
      return Corrupt("strides" + field() + std::to_string(strides[d]) +
                     " is negative or not a multiple of the element size " + std::to_string(elem));
    }
    empty = empty || shape[d] == 0;
  }
  if (static_cast<uint64_t>(count) != header.count) {
    return Corrupt("count " + std::to_string(header.count) + " but the shape holds " +
                   std::to_string(count) + " elements");
  }
  // The furthest byte any element reaches: sum((shape - 1) * stride) + element size.
  int64_t extent = 0;
  if (!empty) {
    extent = elem;
    for (uint32_t d = 0; d < h.ndim; ++d) {
      int64_t step = 0;
      if (__builtin_mul_overflow(shape[d] - 1, strides[d], &step) ||
          __builtin_add_overflow(extent, step, &extent)) {
        return Corrupt("strides[" + std::to_string(d) + "] overflow the tensor extent");
      }
    }
  }
  if (static_cast<uint64_t>(extent) > header.body_length) {
    return Corrupt("shape and strides reach " + std::to_string(extent) +
                   " bytes but body_length is " + std::to_string(header.body_length));
  }

  const std::span<const std::byte> data =
      sample->data().subspan(header.body_offset, header.body_length);
  return TensorView{std::move(type), std::move(shape), std::move(strides), data, std::move(sample)};
}

Result<std::shared_ptr<arrow::Tensor>> ReadTensor(std::shared_ptr<const Sample> sample) {
  QUIVER_ASSIGN_OR_RETURN(TensorView view, ReadTensorView(std::move(sample)));
  const auto offset = static_cast<int64_t>(view.data.data() - view.sample->data().data());
  std::shared_ptr<arrow::Buffer> body = arrow::SliceBuffer(
      payload::WrapSample(std::move(view.sample)), offset, static_cast<int64_t>(view.data.size()));
  // Arrow re-checks the same bounds; it cannot fail after the checks above, but if it ever
  // disagrees the sample is refused, not trusted.
  auto tensor = arrow::Tensor::Make(view.type, body, view.shape, view.strides);
  if (!tensor.ok()) return Corrupt("refused by arrow::Tensor: " + tensor.status().ToString());
  return std::move(tensor).ValueOrDie();
}

}  // namespace quiver
