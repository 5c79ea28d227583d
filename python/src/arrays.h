// numpy arrays over shared memory (nanobind ndarrays, no copy): read-only views of received
// tensors and frames, and the numpy dtype of an Arrow element type. Used by the sample and
// tensor loan bindings.
#pragma once

#include <arrow/type_fwd.h>
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace quiver::python {

/// The dlpack (numpy) dtype of a fixed-width integer or floating-point Arrow type, from its
/// signedness and bit width; InvalidArgumentError for any other type.
nanobind::dlpack::dtype DlpackType(const arrow::DataType& type);

/// Strides in bytes as numpy counts them here: in elements of `element_bytes`.
std::vector<int64_t> StridesInElements(const std::vector<int64_t>& byte_strides,
                                       int64_t element_bytes);

/// A read-only numpy array over `data`. `keep` (any shared_ptr) lives as long as the array:
/// it holds the sample.
template <typename Keep>
nanobind::object ReadOnlyArray(const void* data, std::vector<size_t> shape,
                               std::vector<int64_t> strides_in_elements,
                               nanobind::dlpack::dtype dtype, std::shared_ptr<Keep> keep) {
  auto* holder = new std::shared_ptr<Keep>(std::move(keep));
  nanobind::capsule owner(holder,
                          [](void* p) noexcept { delete static_cast<std::shared_ptr<Keep>*>(p); });
  nanobind::ndarray<nanobind::numpy, nanobind::ro> array(data, shape.size(), shape.data(), owner,
                                                         strides_in_elements.data(), dtype);
  return array.cast();
}

}  // namespace quiver::python
