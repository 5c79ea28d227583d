// How the bindings turn a failed quiver::Status (or arrow::Status) into a Python exception:
// throw Error, and the translator RegisterErrors installs raises the class of its code. Used
// by every binding file; the exception classes themselves come from the C++ error table.
#pragma once

#include <arrow/status.h>
#include <nanobind/nanobind.h>

#include <string>
#include <utility>

#include "quiver/status.h"

namespace quiver::python {

/// What a binding throws to raise the quiver exception of `code` with `message`.
struct Error {
  ErrorCode code;
  std::string message;
};

/// Throws `st` (which must not be OK) as an Error: its code and full text, causes included.
[[noreturn]] void Throw(const Status& st);

/// Throws `st` unless it is OK.
inline void Check(const Status& st) {
  if (!st.ok()) Throw(st);
}

/// Returns the value of `r`, or throws its status.
template <typename T>
T Unwrap(Result<T> r) {
  if (!r.ok()) Throw(r.status());
  return std::move(r).value();
}

/// Throws an Arrow failure as InvalidArgumentError, prefixed by `what` ("importing schema").
void CheckArrow(const arrow::Status& st, const char* what);

/// Makes quiver.QuiverError and one subclass per ErrorCodes() row (with its earlier name as
/// an alias, and its built-in base where the row names one), the wire code -> class dict
/// `error_classes`, and the translator from Error to those classes.
void RegisterErrors(nanobind::module_& m);

}  // namespace quiver::python
