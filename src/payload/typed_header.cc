#include "payload/typed_header.h"

#include <cstring>
#include <string>

namespace quiver::payload {

void WriteTypedHeader(std::span<std::byte> sample, const SampleHeader& header,
                      std::span<const std::byte> kind_header) {
  std::memcpy(sample.data(), &header, sizeof(header));
  std::memcpy(sample.data() + header.meta_offset, kind_header.data(), kind_header.size());
}

Result<LoanedSample> LoanTypedSample(Publisher& publisher, PayloadKind kind,
                                     std::span<const std::byte> kind_header, uint64_t body_length,
                                     uint64_t count, LoanWait wait) {
  QUIVER_RETURN_IF_ERROR(CheckChannelCarries(publisher.channel(), kind));
  const uint64_t body_offset = BodyOffsetAfter(kind_header.size());
  QUIVER_ASSIGN_OR_RETURN(LoanedSample loan, publisher.Loan(body_offset + body_length, wait));
  SampleHeader header = MakeSampleHeader(kind);
  header.meta_offset = kSampleHeaderBytes;
  header.meta_length = kind_header.size();
  header.body_offset = body_offset;
  header.body_length = body_length;
  header.count = count;
  std::memset(loan.data().data(), 0, body_offset);
  WriteTypedHeader(loan.data(), header, kind_header);
  return loan;
}

Result<SampleHeader> ReadTypedHeader(std::span<const std::byte> sample, PayloadKind kind,
                                     std::span<std::byte> kind_header, MetaLength length) {
  QUIVER_ASSIGN_OR_RETURN(SampleHeader header, ReadSampleHeader(sample, kind));
  const bool exact = length == MetaLength::kExact;
  if (exact ? header.meta_length != kind_header.size() : header.meta_length < kind_header.size()) {
    return Status::ShmCorruption(std::string(PayloadKindName(kind)) + " sample: meta_length " +
                                 std::to_string(header.meta_length) + ", expected " +
                                 (exact ? "" : "at least ") + std::to_string(kind_header.size()));
  }
  std::memcpy(kind_header.data(), sample.data() + header.meta_offset, kind_header.size());
  return header;
}

}  // namespace quiver::payload
