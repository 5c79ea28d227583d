#include "arrays.h"

#include <arrow/type.h>
#include <arrow/type_traits.h>

#include <cstring>
#include <string>

// numpy's C API, in this file only (so its table needs no name shared across files).
#define NPY_NO_DEPRECATED_API NPY_2_0_API_VERSION
#define NPY_TARGET_VERSION NPY_1_25_API_VERSION  // runs with numpy >= 1.26, as the wheel says
#include <numpy/arrayobject.h>

#include "errors.h"
#include "shm/stream_copy.h"

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

std::string DtypeName(nb::dlpack::dtype dtype) {
  using nb::dlpack::dtype_code;
  std::string kind;
  switch (static_cast<dtype_code>(dtype.code)) {
    case dtype_code::Int:
      kind = "int";
      break;
    case dtype_code::UInt:
      kind = "uint";
      break;
    case dtype_code::Float:
      kind = "float";
      break;
    case dtype_code::Bool:
      return "bool";
    case dtype_code::Complex:
      kind = "complex";
      break;
    default:
      return "a " + std::to_string(dtype.bits) + "-bit dtype of DLPack code " +
             std::to_string(dtype.code);
  }
  return kind + std::to_string(dtype.bits);
}

ArrayLayout ImageLayout(const ImageFrameInfo& info) {
  // One byte per channel, except GRAY16's one 16-bit channel (quiver/frame.h).
  const bool wide = info.format == PixelFormat::kGray16;
  const size_t element = wide ? 2 : 1;
  const size_t channels = BytesPerPixel(info.format) / element;
  if (info.stride % element != 0) {
    throw Error{ErrorCode::kInvalidArgument,
                std::string(PixelFormatName(info.format)) + " frame with a stride of " +
                    std::to_string(info.stride) + " bytes, not a whole number of " +
                    std::to_string(element) + "-byte elements: it has no numpy view"};
  }
  const auto row = static_cast<int64_t>(info.stride / element);
  const auto h = static_cast<size_t>(info.height), w = static_cast<size_t>(info.width);
  const nb::dlpack::dtype dtype = wide ? nb::dtype<uint16_t>() : nb::dtype<uint8_t>();
  if (channels == 1) return ArrayLayout{.shape = {h, w}, .strides = {row, 1}, .dtype = dtype};
  return ArrayLayout{.shape = {h, w, channels},
                     .strides = {row, static_cast<int64_t>(channels), 1},
                     .dtype = dtype};
}

nb::dlpack::dtype AudioDtype(SampleFormat format) {
  switch (format) {
    case SampleFormat::kU8:
      return nb::dtype<uint8_t>();
    case SampleFormat::kS16:
      return nb::dtype<int16_t>();
    case SampleFormat::kS32:
      return nb::dtype<int32_t>();
    case SampleFormat::kF32:
      return nb::dtype<float>();
    case SampleFormat::kF64:
      return nb::dtype<double>();
  }
  throw Error{ErrorCode::kInvalidArgument, "no numpy dtype for this audio format"};
}

ArrayLayout AudioLayout(const AudioFrameInfo& info) {
  const auto channels = static_cast<size_t>(info.channels);
  return ArrayLayout{.shape = {static_cast<size_t>(info.frame_count), channels},
                     .strides = {static_cast<int64_t>(channels), 1},
                     .dtype = AudioDtype(info.format)};
}

namespace {

// Copies dimension `d` onwards; the last dimension is one copy into shared memory when
// contiguous in both (shm::CopyToShared: `total`, the bytes of the whole array, decides
// whether it streams).
void CopyDimension(const std::byte* src, const int64_t* src_strides, std::byte* dst,
                   const int64_t* dst_strides, const size_t* shape, size_t ndim, size_t itemsize,
                   size_t total) {
  const auto src_step = src_strides[0] * static_cast<int64_t>(itemsize);
  const auto dst_step = dst_strides[0] * static_cast<int64_t>(itemsize);
  if (ndim == 1 && src_strides[0] == 1 && dst_strides[0] == 1) {
    shm::CopyToShared(dst, src, shape[0] * itemsize, total);
    return;
  }
  for (size_t i = 0; i < shape[0]; ++i, src += src_step, dst += dst_step) {
    if (ndim == 1) {
      std::memcpy(dst, src, itemsize);
    } else {
      CopyDimension(src, src_strides + 1, dst, dst_strides + 1, shape + 1, ndim - 1, itemsize,
                    total);
    }
  }
}

}  // namespace

void CopyElements(const std::byte* src, std::span<const int64_t> src_strides, std::byte* dst,
                  std::span<const int64_t> dst_strides, std::span<const size_t> shape,
                  size_t itemsize) {
  std::vector<size_t> n(shape.begin(), shape.end());
  std::vector<int64_t> s(src_strides.begin(), src_strides.end());
  std::vector<int64_t> d(dst_strides.begin(), dst_strides.end());
  for (size_t extent : n) {
    if (extent == 0) return;
  }
  if (n.empty()) {  // a scalar
    std::memcpy(dst, src, itemsize);
    return;
  }
  while (n.size() > 1) {
    const size_t k = n.size() - 1;
    const auto extent = static_cast<int64_t>(n[k]);
    if (s[k - 1] != s[k] * extent || d[k - 1] != d[k] * extent) break;
    n[k - 1] *= n[k];
    s[k - 1] = s[k];
    d[k - 1] = d[k];
    n.pop_back();
    s.pop_back();
    d.pop_back();
  }
  size_t total = itemsize;
  for (size_t extent : n) total *= extent;
  CopyDimension(src, s.data(), dst, d.data(), n.data(), n.size(), itemsize, total);
}

void ImportNumpy() {
  if (_import_array() < 0) throw nb::python_error();
}

namespace {

int NumpyType(nb::dlpack::dtype dtype) {
  using nb::dlpack::dtype_code;
  struct Entry {
    dtype_code code;
    uint8_t bits;
    int type;
  };
  static constexpr Entry kTypes[] = {
      {dtype_code::Bool, 8, NPY_BOOL},      {dtype_code::Int, 8, NPY_INT8},
      {dtype_code::Int, 16, NPY_INT16},     {dtype_code::Int, 32, NPY_INT32},
      {dtype_code::Int, 64, NPY_INT64},     {dtype_code::UInt, 8, NPY_UINT8},
      {dtype_code::UInt, 16, NPY_UINT16},   {dtype_code::UInt, 32, NPY_UINT32},
      {dtype_code::UInt, 64, NPY_UINT64},   {dtype_code::Float, 16, NPY_FLOAT16},
      {dtype_code::Float, 32, NPY_FLOAT32}, {dtype_code::Float, 64, NPY_FLOAT64},
  };
  for (const Entry& e : kTypes) {
    if (static_cast<uint8_t>(e.code) == dtype.code && e.bits == dtype.bits) return e.type;
  }
  throw Error{ErrorCode::kInvalidArgument, "no numpy array of " + DtypeName(dtype)};
}

}  // namespace

nb::object NumpyArray(const void* data, std::span<const size_t> shape,
                      std::span<const int64_t> strides_in_elements, nb::dlpack::dtype dtype,
                      nb::handle owner, bool writable) {
  if (shape.size() != strides_in_elements.size() || shape.size() > NPY_MAXDIMS) {
    throw Error{ErrorCode::kInvalidArgument,
                "an array of " + std::to_string(shape.size()) + " dimensions has no numpy view"};
  }
  const int type = NumpyType(dtype);
  const auto itemsize = static_cast<npy_intp>(dtype.bits / 8);
  npy_intp dims[NPY_MAXDIMS], strides[NPY_MAXDIMS];
  for (size_t i = 0; i < shape.size(); ++i) {
    dims[i] = static_cast<npy_intp>(shape[i]);
    strides[i] = static_cast<npy_intp>(strides_in_elements[i]) * itemsize;
  }
  const int flags = writable ? NPY_ARRAY_WRITEABLE : 0;
  // PyArray_NewFromDescr takes the descriptor's reference, PyArray_SetBaseObject the owner's.
  PyObject* array = PyArray_NewFromDescr(&PyArray_Type, PyArray_DescrFromType(type),
                                         static_cast<int>(shape.size()), dims, strides,
                                         const_cast<void*>(data), flags, nullptr);
  if (array == nullptr) throw nb::python_error();
  if (PyArray_SetBaseObject(reinterpret_cast<PyArrayObject*>(array), owner.inc_ref().ptr()) < 0) {
    Py_DECREF(array);
    throw nb::python_error();
  }
  return nb::steal(array);
}

void Seal(nb::handle array) {
  if (array.is_valid() && PyArray_Check(array.ptr())) {
    PyArray_CLEARFLAGS(reinterpret_cast<PyArrayObject*>(array.ptr()), NPY_ARRAY_WRITEABLE);
  }
}

nb::object WritableArray(void* data, const ArrayLayout& layout, nb::handle owner) {
  return NumpyArray(data, layout.shape, layout.strides, layout.dtype, owner, /*writable=*/true);
}

}  // namespace quiver::python
