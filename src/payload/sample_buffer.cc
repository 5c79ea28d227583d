#include "payload/sample_buffer.h"

namespace quiver::payload {
namespace {

class SampleBuffer final : public arrow::Buffer {
 public:
  explicit SampleBuffer(std::shared_ptr<const Sample> sample)
      : arrow::Buffer(reinterpret_cast<const uint8_t*>(sample->data().data()),
                      static_cast<int64_t>(sample->size())),
        sample_(std::move(sample)) {}

 private:
  std::shared_ptr<const Sample> sample_;
};

}  // namespace

std::shared_ptr<arrow::Buffer> WrapSample(std::shared_ptr<const Sample> sample) {
  return std::make_shared<SampleBuffer>(std::move(sample));
}

std::shared_ptr<arrow::MutableBuffer> WrapLoan(const LoanedSample& loan) {
  return std::make_shared<arrow::MutableBuffer>(reinterpret_cast<uint8_t*>(loan.data().data()),
                                                static_cast<int64_t>(loan.size()));
}

}  // namespace quiver::payload
