#include "tensor_loan.h"

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <utility>
#include <vector>

#include "arrays.h"
#include "errors.h"
#include "module.h"

namespace nb = nanobind;

namespace quiver::python {
namespace {

LoanedTensor& Active(TensorLoan& t) {
  if (!t.loan) throw Error{ErrorCode::kInvalidArgument, "the tensor was already published"};
  return *t.loan;
}

// Writable, owned by the TensorLoan Python object (kept alive as the array's base).
nb::object Array(nb::handle self) {
  const LoanedTensor& loan = Active(nb::cast<TensorLoan&>(self));
  std::vector<size_t> shape(loan.shape().begin(), loan.shape().end());
  std::vector<int64_t> strides = StridesInElements(loan.strides(), loan.type()->byte_width());
  nb::ndarray<nb::numpy> array(loan.data().data(), shape.size(), shape.data(), self, strides.data(),
                               DlpackType(*loan.type()));
  return array.cast();
}

void Publish(TensorLoan& t) {
  LoanedTensor loan = std::move(Active(t));
  t.loan.reset();
  nb::gil_scoped_release release;
  Check(PublishTensor(*t.publisher, std::move(loan)));
}

}  // namespace

void RegisterTensorLoan(nb::module_& m) {
  nb::class_<TensorLoan>(m, "TensorLoan")
      .def_prop_ro("array", &Array)
      .def("publish", &Publish)
      .def("discard", [](TensorLoan& t) { t.loan.reset(); })
      .def_prop_ro("active", [](const TensorLoan& t) { return t.loan.has_value(); });
}

}  // namespace quiver::python
