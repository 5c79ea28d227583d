#include "arrays.h"

#include <arrow/type.h>
#include <arrow/type_traits.h>

#include "errors.h"

namespace nb = nanobind;

namespace quiver::python {

nb::dlpack::dtype DlpackType(const arrow::DataType& type) {
  using nb::dlpack::dtype_code;
  dtype_code code;
  if (arrow::is_floating(type.id())) {
    code = dtype_code::Float;
  } else if (arrow::is_signed_integer(type.id())) {
    code = dtype_code::Int;
  } else if (arrow::is_unsigned_integer(type.id())) {
    code = dtype_code::UInt;
  } else {
    throw Error{ErrorCode::kInvalidArgument, "no numpy dtype for " + type.ToString()};
  }
  return nb::dlpack::dtype{static_cast<uint8_t>(code), static_cast<uint8_t>(type.bit_width()), 1};
}

std::vector<int64_t> StridesInElements(const std::vector<int64_t>& byte_strides,
                                       int64_t element_bytes) {
  std::vector<int64_t> strides;
  strides.reserve(byte_strides.size());
  for (int64_t s : byte_strides) strides.push_back(s / element_bytes);
  return strides;
}

}  // namespace quiver::python
