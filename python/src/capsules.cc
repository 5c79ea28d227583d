#include "capsules.h"

#include <arrow/c/abi.h>
#include <arrow/c/bridge.h>

#include "errors.h"

namespace nb = nanobind;

namespace quiver::python {
namespace {

void DeleteSchemaCapsule(PyObject* o) {
  auto* s = static_cast<ArrowSchema*>(PyCapsule_GetPointer(o, "arrow_schema"));
  if (s->release != nullptr) s->release(s);
  delete s;
}

void DeleteArrayCapsule(PyObject* o) {
  auto* a = static_cast<ArrowArray*>(PyCapsule_GetPointer(o, "arrow_array"));
  if (a->release != nullptr) a->release(a);
  delete a;
}

}  // namespace

nb::object SchemaCapsule(const arrow::Schema& schema) {
  auto* c = new ArrowSchema;
  const arrow::Status st = arrow::ExportSchema(schema, c);
  if (!st.ok()) {
    delete c;
    CheckArrow(st, "exporting schema");
  }
  return nb::steal(PyCapsule_New(c, "arrow_schema", DeleteSchemaCapsule));
}

nb::tuple BatchCapsules(const arrow::RecordBatch& batch) {
  auto* schema = new ArrowSchema;
  auto* array = new ArrowArray;
  const arrow::Status st = arrow::ExportRecordBatch(batch, array, schema);
  if (!st.ok()) {
    delete schema;
    delete array;
    CheckArrow(st, "exporting batch");
  }
  nb::object schema_capsule = nb::steal(PyCapsule_New(schema, "arrow_schema", DeleteSchemaCapsule));
  nb::object array_capsule = nb::steal(PyCapsule_New(array, "arrow_array", DeleteArrayCapsule));
  return nb::make_tuple(schema_capsule, array_capsule);
}

std::shared_ptr<arrow::Schema> ImportSchemaCapsule(nb::handle capsule) {
  auto schema = arrow::ImportSchema(CapsulePointer<ArrowSchema>(capsule, "arrow_schema"));
  CheckArrow(schema.status(), "importing schema");
  return *schema;
}

}  // namespace quiver::python
