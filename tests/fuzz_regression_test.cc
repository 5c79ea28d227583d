// The fuzzers' inputs in the normal test suite (under ASan + UBSan in CI): every seed of every
// corpus in tests/fuzz/corpus/, and every input that once broke a fuzzer, run through the
// very targets the libFuzzer binaries run (tests/fuzz/<name>_target.h). A target that finds a
// broken promise aborts with a message naming it.
#include <arrow/api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <msgpack.hpp>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "quiver/envelope.h"
#include "fuzz/envelope_target.h"
#include "fuzz/msgpack_records_target.h"
#include "fuzz/pipeline_target.h"
#include "fuzz/sample_target.h"
#include "fuzz/shm_handle_target.h"
#include "quiver/arrow.h"
#include "quiver/msgpack_records.h"
#include "quiver/status.h"

namespace quiver::fuzz {
namespace {

namespace fs = std::filesystem;

using Target = void (*)(const uint8_t*, size_t);

fs::path CorpusDir() {
  if (const char* dir = std::getenv("QUIVER_FUZZ_CORPUS")) return dir;
  return fs::path(__FILE__).parent_path() / "fuzz" / "corpus";
}

void RunInput(Target target, std::string_view input) {
  target(reinterpret_cast<const uint8_t*>(input.data()), input.size());
}

// Runs every seed of tests/fuzz/corpus/<fuzzer>/ through `target`.
void RunCorpus(const std::string& fuzzer, Target target) {
  const fs::path dir = CorpusDir() / fuzzer;
  ASSERT_TRUE(fs::is_directory(dir)) << dir;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir)) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  EXPECT_GE(files.size(), 5u) << "a thin corpus in " << dir;
  for (const fs::path& file : files) {
    SCOPED_TRACE(file.string());
    std::ifstream in(file, std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    RunInput(target, bytes.str());
  }
}

std::string ReadSeed(const std::string& fuzzer, const std::string& name) {
  std::ifstream in(CorpusDir() / fuzzer / name, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

TEST(FuzzCorpusTest, EnvelopeSeeds) { RunCorpus("envelope_fuzzer", FuzzEnvelope); }
TEST(FuzzCorpusTest, ShmHandleSeeds) { RunCorpus("shm_handle_fuzzer", FuzzShmHandle); }
TEST(FuzzCorpusTest, SampleSeeds) { RunCorpus("sample_fuzzer", FuzzSample); }
TEST(FuzzCorpusTest, MsgpackRecordsSeeds) {
  RunCorpus("msgpack_records_fuzzer", FuzzMsgpackRecords);
}
TEST(FuzzCorpusTest, PipelineSeeds) { RunCorpus("pipeline_fuzzer", FuzzPipeline); }

// ---- Regressions: inputs that broke a fuzzer, and what was wrong ----------------------------

// msgpack_records_fuzzer: a record without its nullable struct field "point", whose child
// "label" is a dictionary. StructBuilder::AppendNull gave the child its "empty value", index 0,
// valid, while the dictionary was still empty: DecodeMsgpackRecords returned a batch that
// failed ValidateFull ("Dictionary indices invalid: Value at position 0 out of bounds") and,
// published and read with kStructure validation, indexed past its dictionary.
// Input: [[1, true, nil, -5], [2]] (array records, "point" missing from both).
TEST(FuzzRegressionTest, MsgpackNullStructWithDictionaryChildDecodesToAValidBatch) {
  const std::string input("\x92\x94\x01\xc3\xc0\xfb\x91\x02", 8);
  RunInput(FuzzMsgpackRecords, input);
  auto batch = DecodeMsgpackRecords(input, MsgpackSchema());
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  ASSERT_TRUE((*batch)->ValidateFull().ok()) << (*batch)->ValidateFull().ToString();
  const auto point = (*batch)->GetColumnByName("point");
  ASSERT_NE(point, nullptr);
  EXPECT_EQ(point->null_count(), 2);
}

// The same through every way a struct becomes null (explicit nil, a missing map key, a short
// array record) and one level deeper: a struct inside a null struct gets empty children, and
// its dictionary child a null index.
TEST(FuzzRegressionTest, MsgpackNullStructsKeepDictionaryChildrenValid) {
  using arrow::field;
  auto dict = arrow::dictionary(arrow::int32(), arrow::utf8());
  auto schema = arrow::schema({
      field("id", arrow::int64(), false),
      field("outer", arrow::struct_({field("d", dict),
                                     field("inner",
                                           arrow::struct_({field("d", dict, false),
                                                           field("n", arrow::int32(), false)}),
                                           false)})),
  });
  // [{"id":1,"outer":nil}, {"id":2}, [3], {"id":4,"outer":{"d":"x","inner":{"d":"y","n":5}}}]
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> p(buffer);
  p.pack_array(4);
  p.pack_map(2), p.pack(std::string("id")), p.pack(1), p.pack(std::string("outer")), p.pack_nil();
  p.pack_map(1), p.pack(std::string("id")), p.pack(2);
  p.pack_array(1), p.pack(3);
  p.pack_map(2), p.pack(std::string("id")), p.pack(4), p.pack(std::string("outer")), p.pack_map(2);
  p.pack(std::string("d")), p.pack(std::string("x")), p.pack(std::string("inner")), p.pack_map(2);
  p.pack(std::string("d")), p.pack(std::string("y")), p.pack(std::string("n")), p.pack(5);
  auto batch = DecodeMsgpackRecords(std::string_view(buffer.data(), buffer.size()), schema);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  const arrow::Status valid = (*batch)->ValidateFull();
  ASSERT_TRUE(valid.ok()) << valid.ToString();
  const auto& outer = static_cast<const arrow::StructArray&>(*(*batch)->column(1));
  EXPECT_EQ(outer.null_count(), 3);
  EXPECT_TRUE(outer.IsValid(3));
  EXPECT_EQ(outer.field(0)->null_count(), 3);  // the dictionary child: null under null parents
  const auto& inner = static_cast<const arrow::StructArray&>(*outer.field(1));
  EXPECT_EQ(inner.null_count(), 0);            // empty values, as Arrow gives non-dictionaries
  EXPECT_EQ(inner.field(0)->null_count(), 3);  // ... but a null index for the dictionary
  EXPECT_EQ((*batch)->ToString().find("out of bounds"), std::string::npos);
}

// envelope target, with a line longer than the fuzzer's inputs: a 64 KiB envelope whose
// payload nests 32,000 arrays. The parser is iterative, but ParseEnvelope copied the payload
// into the Envelope (and Serialize prints it) recursively, one stack frame per level: a stack
// overflow (under ASan at once; in a thread with a small stack without it), so one line from a
// peer could crash a control server. Lines nesting deeper than 128 levels are now refused.
TEST(FuzzRegressionTest, DeeplyNestedEnvelopeIsRefusedNotAStackOverflow) {
  const std::string prefix =
      R"({"protocol_v":"2.0.0","msg_id":"6f1c1f9e-3a52-4c59-9d0e-5b8f1f3e2a10",)"
      R"("type":"RES_OK","payload":{"a":)";
  auto nested = [&](int depth) {
    return prefix + std::string(depth, '[') + std::string(depth, ']') + "}}";
  };
  const std::string deep = nested(32000);
  ASSERT_LE(deep.size(), control::kMaxLineBytes);
  RunInput(FuzzEnvelope, deep);
  const control::ParseOutcome out = control::ParseEnvelope(deep);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error.code, control::kInvalidEnvelope);
  EXPECT_NE(out.error.message.find("nested deeper than 128"), std::string::npos)
      << out.error.message;
  EXPECT_EQ(out.error.msg_id, "");  // refused before anything was read
  // Objects count too; brackets inside strings do not; 126 levels of payload (128 with the
  // envelope and the payload object) are fine.
  EXPECT_FALSE(control::ParseEnvelope(prefix + std::string(200, '{') + "}}").ok());
  EXPECT_TRUE(control::ParseEnvelope(nested(126)).ok());
  EXPECT_FALSE(control::ParseEnvelope(nested(127)).ok());
  const std::string in_string = prefix + "\"" + std::string(1000, '[') + "\\\"{\"}}";
  const control::ParseOutcome quoted = control::ParseEnvelope(in_string);
  EXPECT_TRUE(quoted.ok()) << quoted.error.message;
  RunInput(FuzzEnvelope, nested(126));
}

// envelope target, with lines longer than the fuzzer's inputs: the error for a bad protocol_v
// or shm_handle.format quoted the value in full, and the RES_ERROR_V2 reply escapes it once
// more, so a bad line under the 64 KiB limit got a reply over it (70,213 bytes for a format of
// 10,000 "\u0001"), which the peer refuses as LINE_TOO_LONG instead of reading the error.
// Every quoted value is cut at 80 characters now (Quote() in envelope.cc).
TEST(FuzzRegressionTest, ErrorReplyToALongBadLineFitsTheLineLimit) {
  std::string escapes;
  for (int i = 0; i < 10000; ++i) escapes += "\\u0001";
  const std::string bad_format =
      R"({"protocol_v":"2.0.0","msg_id":"6f1c1f9e-3a52-4c59-9d0e-5b8f1f3e2a10",)"
      R"("type":"CMD_PROCESS","payload":{"shm_handle":{"segment_id":"x","offset":0,"size":1,)"
      R"("format":")" +
      escapes + R"("}}})";
  const std::string bad_version = R"({"protocol_v":"3.)" + std::string(65000, '0') +
                                  R"(.0","msg_id":"6f1c1f9e-3a52-4c59-9d0e-5b8f1f3e2a10",)"
                                  R"("type":"RES_OK","payload":{}})";
  const std::string bad_shape =
      R"({"protocol_v":")" + escapes + R"(","msg_id":null,"type":"RES_OK","payload":{}})";
  for (const std::string& line : {bad_format, bad_version, bad_shape}) {
    ASSERT_LE(line.size(), control::kMaxLineBytes);
    RunInput(FuzzEnvelope, line);  // the reply must parse: the target checks it
    const control::ParseOutcome out = control::ParseEnvelope(line);
    ASSERT_FALSE(out.ok());
    const std::string reply = control::Serialize(control::MakeError(out.error));
    EXPECT_LT(reply.size(), 1000u) << out.error.message.substr(0, 200);
    EXPECT_TRUE(control::ParseEnvelope(reply).ok());
  }
}

// sample_fuzzer, with the seeds arrow_v1_zstd / arrow_v2_lz4 (samples in the Quiver layout
// whose IPC messages carry compressed buffers, which ArrowPublisher never writes): Decode let
// Arrow decompress them onto the heap, allocating the uncompressed size each buffer declares.
// Declaring 16 GiB in a 2 KiB sample made the fuzzer's subscribers malloc(17179869184) (its
// out-of-memory report); any producer could make every subscriber allocate what it liked.
// Messages with a compressed body are refused now (SHM_CORRUPTION) before anything is read.
TEST(FuzzRegressionTest, CompressedArrowBodiesAreRefusedBeforeAnyAllocation) {
  std::string bomb = ReadSeed("sample_fuzzer", "arrow_v1_zstd");
  const size_t frame = bomb.find("\x28\xb5\x2f\xfd");  // the first zstd frame
  ASSERT_NE(frame, std::string::npos);
  ASSERT_GE(frame, 8u);
  const int64_t declared = int64_t{1} << 34;  // its uncompressed length prefix: 16 GiB
  std::memcpy(bomb.data() + frame - 8, &declared, sizeof(declared));
  RunInput(FuzzSample, bomb);

  auto channel = MakeSampleChannel(Backing::kMemfd);
  ASSERT_TRUE(channel.ok()) << channel.status().ToString();
  auto publisher = channel->CreatePublisher();
  ASSERT_TRUE(publisher.ok());
  ASSERT_TRUE(RegisterSampleSchemaV2(*publisher).ok());
  auto subscriber = ArrowSubscriber::Make(*channel, {.validation = BatchValidation::kFull});
  ASSERT_TRUE(subscriber.ok()) << subscriber.status().ToString();
  for (const std::string& sample : {bomb, ReadSeed("sample_fuzzer", "arrow_v1_zstd"),
                                    ReadSeed("sample_fuzzer", "arrow_v2_lz4")}) {
    ASSERT_TRUE(publisher->PublishCopy(std::as_bytes(std::span(sample))).ok());
    auto decoded = subscriber->Receive(std::chrono::seconds(1));
    ASSERT_FALSE(decoded.ok());
    EXPECT_EQ(decoded.status().code(), ErrorCode::kShmCorruption);
    EXPECT_NE(decoded.status().message().find("compressed body"), std::string::npos)
        << decoded.status().ToString();
  }
  // The same batches in Arrow's own (uncompressed, 8-byte aligned) layout are fine.
  const std::string plain = ReadSeed("sample_fuzzer", "arrow_v1_arrow_layout");
  ASSERT_TRUE(publisher->PublishCopy(std::as_bytes(std::span(plain))).ok());
  auto decoded = subscriber->Receive(std::chrono::seconds(1));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->batch->num_rows(), 3);
}

}  // namespace
}  // namespace quiver::fuzz
