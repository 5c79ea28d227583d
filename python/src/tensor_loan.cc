#include "tensor_loan.h"

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <utility>
#include <vector>

#include "arrays.h"
#include "errors.h"
#include "module.h"

namespace nb = nanobind;
using namespace nb::literals;

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
  return NumpyArray(loan.data().data(), shape, strides, DlpackType(*loan.type()), self,
                    /*writable=*/true);
}

void Publish(TensorLoan& t, nb::handle seal) {
  LoanedTensor loan = std::move(Active(t));
  t.loan.reset();
  Seal(seal);
  // With the GIL held: publishing a loan copies nothing and never waits (at most a futex
  // wake), and giving the GIL away and back would cost more than the publish.
  Check(PublishTensor(*t.publisher, std::move(loan)));
}

}  // namespace

void RegisterTensorLoan(nb::module_& m) {
  nb::class_<TensorLoan>(m, "TensorLoan")
      .def_prop_ro("array", &Array)
      // `seal`: the loan's array, made read-only (arrays.h Seal).
      .def("publish", &Publish, "seal"_a = nb::none())
      .def(
          "discard",
          [](TensorLoan& t, nb::handle seal) {
            t.loan.reset();
            Seal(seal);
          },
          "seal"_a = nb::none())
      .def_prop_ro("active", [](const TensorLoan& t) { return t.loan.has_value(); });
}

}  // namespace quiver::python
