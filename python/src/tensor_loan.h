// quiver._quiver.TensorLoan: a tensor sample being written in place from Python (behind
// Publisher.loan_ndarray), its elements a writable numpy array until it is published.
#pragma once

#include <optional>

#include "quiver/channel.h"
#include "quiver/tensor.h"

namespace quiver::python {

struct TensorLoan {
  std::optional<LoanedTensor> loan;  // empty once published or discarded
  Publisher* publisher;              // owned by the PyPublisher that made the loan
};

}  // namespace quiver::python
