// numpy arrays over shared memory (made with numpy's C API, no copy): read-only views of received
// tensors and frames, writable views of loans, the numpy dtype of an Arrow element type and
// the numpy layout of a frame (one home for both directions), and the one copy a publish from
// a numpy array makes. Used by the sample, tensor loan and frame loan bindings.
#pragma once

#include <arrow/type_fwd.h>
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "quiver/frame.h"

namespace quiver::python {

/// The dlpack (numpy) dtype of a fixed-width integer or floating-point Arrow type, from its
/// signedness and bit width; InvalidArgumentError for any other type.
nanobind::dlpack::dtype DlpackType(const arrow::DataType& type);

/// Strides in bytes as numpy counts them here: in elements of `element_bytes`.
std::vector<int64_t> StridesInElements(const std::vector<int64_t>& byte_strides,
                                       int64_t element_bytes);

/// Any CPU array argument (numpy, or anything with DLPack or the buffer protocol) of any
/// dtype, shape and strides: with no constraint to meet, nanobind never converts it (no copy,
/// no cast).
using AnyCpuArray = nanobind::ndarray<nanobind::ro, nanobind::device::cpu>;

/// numpy's name of `dtype` ("uint8", "float32"), for error messages.
std::string DtypeName(nanobind::dlpack::dtype dtype);

/// How a frame's data looks to numpy: shape, strides in elements, element type.
struct ArrayLayout {
  std::vector<size_t> shape;
  std::vector<int64_t> strides;
  nanobind::dlpack::dtype dtype;
};

/// An image frame as numpy sees it: uint8 (height, width, channels) with BytesPerPixel
/// channels, or (height, width) for a one-channel format (GRAY8 uint8, GRAY16 uint16), rows
/// `info.stride` bytes apart. InvalidArgumentError when the stride is not a whole number of
/// elements (a GRAY16 frame with an odd stride has no uint16 view).
ArrayLayout ImageLayout(const ImageFrameInfo& info);

/// The numpy dtype of PCM samples of `format`: U8 uint8, S16 int16, S32 int32, F32 float32,
/// F64 float64.
nanobind::dlpack::dtype AudioDtype(SampleFormat format);

/// An audio frame as numpy sees it: (frame_count, channels), interleaved, of AudioDtype.
ArrayLayout AudioLayout(const AudioFrameInfo& info);

/// Copies the elements of `src` (any strides, in elements, negative too) to `dst` laid out as
/// `dst_strides`; both have `shape` and elements of `itemsize` bytes. Trailing dimensions
/// contiguous in both are merged, so a tight image is one memcpy and a padded one a memcpy per
/// row. Needs no GIL.
void CopyElements(const std::byte* src, std::span<const int64_t> src_strides, std::byte* dst,
                  std::span<const int64_t> dst_strides, std::span<const size_t> shape,
                  size_t itemsize);

/// Loads numpy's C API (once, from the module's init): NumpyArray needs it.
void ImportNumpy();

/// A numpy array over `data` (no copy) of `shape`, strides in elements and `dtype` (an
/// integer, unsigned, float or bool dtype), whose base is `owner` (kept alive as long as the
/// array), writable or read-only. Made by numpy's C API: nanobind's export goes through
/// numpy.asarray and the buffer protocol, about 0.9 us on the path of every loan and every
/// to_numpy(); this is about a fifth of it.
nanobind::object NumpyArray(const void* data, std::span<const size_t> shape,
                            std::span<const int64_t> strides_in_elements,
                            nanobind::dlpack::dtype dtype, nanobind::handle owner, bool writable);

/// Makes `array` read-only if it is a numpy array (a loan's view once the loan is published
/// or discarded: it belongs to the subscribers, or to the next loan); anything else is left
/// as it is. A flag cleared in C: `array.flags.writeable = False` costs about 0.2 us.
void Seal(nanobind::handle array);

/// A read-only numpy array over `data`. `keep` (any shared_ptr) lives as long as the array:
/// it holds the sample.
template <typename Keep>
nanobind::object ReadOnlyArray(const void* data, std::vector<size_t> shape,
                               std::vector<int64_t> strides_in_elements,
                               nanobind::dlpack::dtype dtype, std::shared_ptr<Keep> keep) {
  auto* holder = new std::shared_ptr<Keep>(std::move(keep));
  nanobind::capsule owner(holder,
                          [](void* p) noexcept { delete static_cast<std::shared_ptr<Keep>*>(p); });
  return NumpyArray(data, shape, strides_in_elements, dtype, owner, /*writable=*/false);
}

/// A read-only numpy array of `layout` over `data`; `keep` holds the sample.
template <typename Keep>
nanobind::object ReadOnlyArray(const void* data, ArrayLayout layout, std::shared_ptr<Keep> keep) {
  return ReadOnlyArray(data, std::move(layout.shape), std::move(layout.strides), layout.dtype,
                       std::move(keep));
}

/// A writable numpy array of `layout` over `data`, whose base is `owner` (a loan object).
nanobind::object WritableArray(void* data, const ArrayLayout& layout, nanobind::handle owner);

}  // namespace quiver::python
