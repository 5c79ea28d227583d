#include "errors.h"

#include <nanobind/stl/string.h>

#include <map>
#include <string_view>

namespace nb = nanobind;

namespace quiver::python {
namespace {

std::map<ErrorCode, PyObject*>& ExceptionTypes() {
  static std::map<ErrorCode, PyObject*> types;
  return types;
}
PyObject* g_base_error = nullptr;

// The built-in exception class the error table names (e.g. "LookupError"), looked up in
// Python's builtins, or nullptr for "".
nb::object BuiltinException(std::string_view name) {
  if (name.empty()) return nb::none();
  nb::object type = nb::module_::import_("builtins").attr(std::string(name).c_str());
  if (!PyExceptionClass_Check(type.ptr())) {
    throw nb::type_error(
        ("error table: builtins." + std::string(name) + " is no exception class").c_str());
  }
  return type;
}

}  // namespace

void Throw(const Status& st) { throw Error{st.code(), st.ToString()}; }

void CheckArrow(const arrow::Status& st, const char* what) {
  if (!st.ok()) throw Error{ErrorCode::kInvalidArgument, std::string(what) + ": " + st.ToString()};
}

void RegisterErrors(nb::module_& m) {
  g_base_error = PyErr_NewExceptionWithDoc(
      "quiver._quiver.QuiverError", "Base class of every Quiver error.", PyExc_Exception, nullptr);
  m.attr("QuiverError") = nb::handle(g_base_error);
  nb::dict codes;
  nb::list names;
  for (const ErrorCodeInfo& info : ErrorCodes()) {
    nb::object builtin = BuiltinException(info.python_builtin);
    PyObject* bases = builtin.is_none() ? PyTuple_Pack(1, g_base_error)
                                        : PyTuple_Pack(2, g_base_error, builtin.ptr());
    const std::string qualified = "quiver._quiver." + std::string(info.python_class);
    const std::string doc = std::string(info.doc) + " (code " + std::string(info.name) + ")";
    PyObject* type = PyErr_NewExceptionWithDoc(qualified.c_str(), doc.c_str(), bases, nullptr);
    Py_DECREF(bases);
    if (type == nullptr) throw nb::python_error();
    ExceptionTypes()[info.code] = type;
    m.attr(std::string(info.python_class).c_str()) = nb::handle(type);
    m.attr(std::string(info.python_alias).c_str()) = nb::handle(type);
    codes[std::string(info.name).c_str()] = nb::handle(type);
    names.append(nb::make_tuple(std::string(info.python_class), std::string(info.python_alias)));
  }
  m.attr("error_classes") = codes;  // wire code -> class, for the control plane
  m.attr("error_names") = names;    // (class name, earlier name), for quiver/__init__.py
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const Error& e) {
      auto it = ExceptionTypes().find(e.code);
      PyErr_SetString(it != ExceptionTypes().end() ? it->second : g_base_error, e.message.c_str());
    }
  });
}

}  // namespace quiver::python
