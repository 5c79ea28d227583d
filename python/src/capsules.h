// Arrow data across the boundary through the Arrow C data interface (PyCapsules named
// "arrow_schema", "arrow_array", "arrow_array_stream"), so nothing here depends on
// pyarrow's C++ ABI. Used by the channel, publisher, subscriber and sample bindings.
#pragma once

#include <arrow/record_batch.h>
#include <arrow/type_fwd.h>
#include <nanobind/nanobind.h>

#include <memory>

namespace quiver::python {

/// The pointer a capsule named `name` holds; raises (Python's error) for another capsule.
template <typename T>
T* CapsulePointer(nanobind::handle capsule, const char* name) {
  void* p = PyCapsule_GetPointer(capsule.ptr(), name);
  if (p == nullptr) throw nanobind::python_error();
  return static_cast<T*>(p);
}

/// An "arrow_schema" capsule exporting `schema`.
nanobind::object SchemaCapsule(const arrow::Schema& schema);

/// ("arrow_schema", "arrow_array") capsules exporting `batch`; the array's private data
/// holds the batch's buffers, and so the sample they live in.
nanobind::tuple BatchCapsules(const arrow::RecordBatch& batch);

/// The schema an "arrow_schema" capsule carries (the capsule's schema is consumed).
std::shared_ptr<arrow::Schema> ImportSchemaCapsule(nanobind::handle capsule);

}  // namespace quiver::python
