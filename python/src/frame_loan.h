// quiver._quiver.ImageLoan and AudioLoan: an image or audio frame being written in place from
// Python (behind Publisher.loan_image / loan_audio), its pixels or PCM a writable numpy array
// until it is published. Thread-compatible, as the Publisher that made it.
#pragma once

#include <optional>

#include "quiver/channel.h"
#include "quiver/frame.h"

namespace quiver::python {

template <typename Frame>
struct FrameLoan {
  std::optional<Frame> loan;  // empty once published or discarded
  Publisher* publisher;       // owned by the PyPublisher that made the loan, which it keeps alive
};

using ImageLoan = FrameLoan<LoanedImageFrame>;
using AudioLoan = FrameLoan<LoanedAudioFrame>;

}  // namespace quiver::python
