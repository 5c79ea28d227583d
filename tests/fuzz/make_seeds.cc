// Writes the fuzzers' seed corpora from real encoders: envelopes as the control layer writes
// them, samples encoded by ArrowPublisher / LoanTensor / LoanAudioFrame / LoanImageFrame into
// the same channel layout the sample fuzzer uses, msgpack records as msgspec would write them,
// and the repository's pipeline files. Plus a few malformed inputs of each kind.
//
//   build-fuzz/quiver_fuzz_make_seeds tests/fuzz/corpus .    (corpus dir, repository root)
//
// Seeds are named by what they are; re-running overwrites them with the same bytes (msg_ids
// and channel nonces are fixed or not in the seeds).
#include <arrow/io/memory.h>
#include <arrow/ipc/dictionary.h>
#include <arrow/json/from_string.h>
#include <arrow/util/compression.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <msgpack.hpp>
#include <sstream>
#include <string>

#include "channel/layout.h"
#include "quiver/arrow.h"
#include "quiver/frame.h"
#include "quiver/sample_header.h"
#include "quiver/tensor.h"
#include "sample_target.h"
#include "quiver/schema_file.h"

namespace fs = std::filesystem;
using namespace quiver;  // NOLINT(google-build-using-namespace): a small tool

namespace {

fs::path g_corpus;

void Write(const std::string& fuzzer, const std::string& name, std::string_view bytes) {
  const fs::path dir = g_corpus / fuzzer;
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void Write(const std::string& fuzzer, const std::string& name, std::span<const std::byte> bytes) {
  Write(fuzzer, name, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

[[noreturn]] void Die(const std::string& what) {
  std::cerr << "make_seeds: " << what << "\n";
  std::exit(1);
}

template <typename T>
T Check(Result<T> r, const std::string& what) {
  if (!r.ok()) Die(what + ": " + r.status().ToString());
  return std::move(r).value();
}

template <typename T>
T Check(arrow::Result<T> r, const std::string& what) {
  if (!r.ok()) Die(what + ": " + r.status().ToString());
  return std::move(r).ValueOrDie();
}

// ---- envelopes ------------------------------------------------------------------------------

void EnvelopeSeeds() {
  const std::string id = "6f1c1f9e-3a52-4c59-9d0e-5b8f1f3e2a10";
  const std::string v = R"({"protocol_v":"2.0.0","msg_id":")" + id + R"(",)";
  const std::pair<const char*, std::string> seeds[] = {
      // What a node reads from QUIVER_CONTROL / QUIVER_CONTROL_WORKERS (the same target).
      {"control_fds", "5:8"},
      {"control_socket_fd", "7"},
      {"control_workers", "ocr-1=5:6,ocr_2=17"},
      {"control_workers_bad", "a=3:-4,a=3:4,=1"},
      {"stream_start",
       v + R"("type":"CMD_STREAM_START","payload":{"channel":"frames","segment_size":1048576}})"},
      {"process_raw",
       v + R"("type":"CMD_PROCESS","payload":{"shm_handle":{"segment_id":"frames","offset":0,"size":4096,"format":"raw"}}})"},
      {"process_tensor",
       v + R"("type":"CMD_PROCESS","payload":{"shm_handle":{"segment_id":"t","offset":128,"size":64,"format":"tensor"},"note":"x"}})"},
      {"data_ready",
       v + R"("type":"RES_DATA_READY","payload":{"shm_handle":{"segment_id":"ledger","offset":18446744073709551614,"size":1,"format":"arrow_stream"}}})"},
      {"shutdown", v + R"("type":"CMD_SHUTDOWN","payload":{}})"},
      {"auth", v + R"("type":"CMD_AUTH","payload":{"token":"s3cret"}})"},
      {"ok", v + R"("type":"RES_OK","payload":{"extra":[1,2.5,null,true,{"k":"é"}]}})"},
      {"error_chain",
       R"({"protocol_v":"2.0.0","msg_id":null,"type":"RES_ERROR_V2","payload":{"code":"HANDLE_OUT_OF_RANGE","message":"outside","cause":{"code":"SHM_CORRUPTION","message":"bad","cause":null}}})"},
      {"error_unknown_code",
       v + R"("type":"RES_ERROR_V2","payload":{"code":"WHATEVER","message":"m"}})"},
      {"crlf", v + "\"type\":\"RES_OK\",\"payload\":{}}\r"},
      {"two_lines", v + "\"type\":\"RES_OK\",\"payload\":{}}\n" + v +
                        "\"type\":\"CMD_SHUTDOWN\",\"payload\":{}}\n"},
      {"bad_version",
       R"({"protocol_v":"3.0.0","msg_id":")" + id + R"(","type":"RES_OK","payload":{}})"},
      {"bad_version_shape",
       R"({"protocol_v":"2.0","msg_id":")" + id + R"(","type":"RES_OK","payload":{}})"},
      {"bad_negative_offset",
       v + R"("type":"CMD_PROCESS","payload":{"shm_handle":{"segment_id":"f","offset":-1,"size":1,"format":"raw"}}})"},
      {"bad_float_size",
       v + R"("type":"CMD_PROCESS","payload":{"shm_handle":{"segment_id":"f","offset":0,"size":1.5e300,"format":"raw"}}})"},
      {"bad_overflow",
       v + R"("type":"CMD_PROCESS","payload":{"shm_handle":{"segment_id":"f","offset":18446744073709551615,"size":2,"format":"raw"}}})"},
      {"bad_format",
       v + R"("type":"CMD_PROCESS","payload":{"shm_handle":{"segment_id":"f","offset":0,"size":2,"format":"jpeg"}}})"},
      {"bad_type", v + R"("type":"CMD_FLY","payload":{}})"},
      {"bad_payload", v + R"("type":"RES_OK","payload":[]})"},
      {"bad_msg_id", R"({"protocol_v":"2.0.0","msg_id":"nope","type":"RES_OK","payload":{}})"},
      {"bad_deep_cause",
       [] {
         std::string s = R"({"protocol_v":"2.0.0","msg_id":null,"type":"RES_ERROR_V2","payload":)";
         for (int i = 0; i < 40; ++i) s += R"({"code":"X","message":"m","cause":)";
         s += "null";
         for (int i = 0; i < 40; ++i) s += "}";
         return s + "}";
       }()},
      {"bad_nesting", std::string(2000, '[') + std::string(2000, ']')},
      {"bad_json", R"({"protocol_v":"2.0.0",)"},
      {"bad_empty", " \t "},
  };
  for (const auto& [name, text] : seeds) Write("envelope_fuzzer", name, text);
}

// ---- shm handles ----------------------------------------------------------------------------

std::string Le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}

void HandleSeeds() {
  auto direct = [](uint8_t okind, uint64_t offset, uint8_t skind, uint64_t size, uint8_t format,
                   uint8_t name_kind, std::string_view name = {}) {
    return std::string(1, '\0') + char(okind) + Le64(offset) + char(skind) + Le64(size) +
           char(format) + char(name_kind) + std::string(name);
  };
  Write("shm_handle_fuzzer", "direct_first_byte", direct(0, 0, 0, 1, 0, 1));
  Write("shm_handle_fuzzer", "direct_whole", direct(0, 0, 2, 0, 0, 1));
  Write("shm_handle_fuzzer", "direct_last_page", direct(0, 8192, 0, 10048 - 8192, 1, 1));
  Write("shm_handle_fuzzer", "direct_past_end", direct(3, 0, 0, 1, 2, 1));
  Write("shm_handle_fuzzer", "direct_wrap", direct(4, 0, 4, 0, 0, 1));
  Write("shm_handle_fuzzer", "direct_other_name", direct(0, 0, 0, 64, 0, 0, "../etc/passwd"));
  Write("shm_handle_fuzzer", "direct_absent", direct(0, 0, 0, 64, 0, 0, "-absent"));
  auto json = [](std::string_view handle) { return std::string(1, '\1') + std::string(handle); };
  Write("shm_handle_fuzzer", "json_ok",
        json(R"({"segment_id":"fzhandle","offset":64,"size":100,"format":"raw"})"));
  Write("shm_handle_fuzzer", "json_out_of_range",
        json(R"({"segment_id":"fzhandle","offset":10000,"size":100,"format":"tensor"})"));
  Write("shm_handle_fuzzer", "json_other",
        json(R"({"segment_id":"ledger","offset":0,"size":1,"format":"arrow_stream"})"));
  Write("shm_handle_fuzzer", "json_bad", json(R"({"segment_id":7,"offset":"0"})"));
  auto corrupt = [](uint8_t start, std::string_view mask, uint64_t offset, uint64_t size) {
    return std::string(1, '\2') + char(start) + char(mask.size()) + std::string(mask) +
           Le64(offset) + Le64(size);
  };
  Write("shm_handle_fuzzer", "header_pristine", corrupt(0, "", 0, 64));
  Write("shm_handle_fuzzer", "header_capacity",
        corrupt(offsetof(channel::ChannelConfig, data_capacity), std::string("\0\x40", 2), 9000,
                2000));
  Write("shm_handle_fuzzer", "header_max_samples",
        corrupt(offsetof(channel::ChannelConfig, max_samples), std::string("\x0c", 1), 0, 1));
  Write("shm_handle_fuzzer", "header_name",
        corrupt(offsetof(channel::ChannelConfig, name), "x", 0, 1));
  Write("shm_handle_fuzzer", "validate_pristine", std::string(1, '\3') + Le64(0));
  Write("shm_handle_fuzzer", "validate_smaller", std::string(1, '\3') + Le64(8192));
  Write("shm_handle_fuzzer", "validate_segment_bytes",
        std::string(1, '\3') + Le64(0) +
            std::string(offsetof(channel::ChannelConfig, segment_bytes), '\0') + "\x00\x10");
}

// ---- samples --------------------------------------------------------------------------------

std::shared_ptr<arrow::Array> FromJson(const std::shared_ptr<arrow::DataType>& type,
                                       std::string_view json) {
  return Check(arrow::json::ArrayFromJSONString(type, json), "array of " + type->ToString());
}

std::shared_ptr<arrow::RecordBatch> BatchV1(int rows) {
  auto schema = fuzz::SampleSchemaV1();
  std::vector<std::shared_ptr<arrow::Array>> columns;
  auto pick = [rows](std::string_view three) {
    // `three` is a JSON array of 3 values; repeat it to `rows` values.
    std::string body(three.substr(1, three.size() - 2));
    std::string out = "[";
    for (int i = 0; i < rows; ++i) {
      out += (i ? "," : "");
      // Take value i % 3 of the three, split at top-level commas.
      int depth = 0, n = 0;
      size_t start = 0;
      for (size_t k = 0; k <= body.size(); ++k) {
        const char c = k < body.size() ? body[k] : ',';
        if (c == '[' || c == '{') ++depth;
        if (c == ']' || c == '}') --depth;
        if (c == ',' && depth == 0) {
          if (n++ == i % 3) out += body.substr(start, k - start);
          start = k + 1;
        }
      }
    }
    return out + "]";
  };
  columns.push_back(FromJson(arrow::int64(), pick("[1,2,3]")));
  columns.push_back(Check(arrow::json::DictArrayFromJSONString(
                              schema->field(1)->type(), pick("[0,1,null]"), R"(["ab","cde"])"),
                          "dictionary"));
  columns.push_back(FromJson(arrow::float64(), pick("[1.5,null,-2.25]")));
  columns.push_back(FromJson(schema->field(3)->type(), pick("[0,1700000000000000,null]")));
  columns.push_back(FromJson(arrow::boolean(), pick("[true,false,null]")));
  columns.push_back(FromJson(schema->field(5)->type(), pick(R"([["a","bc"],[],null])")));
  columns.push_back(FromJson(arrow::binary(), pick(R"(["\u0001\u0002","",null])")));
  columns.push_back(
      FromJson(schema->field(7)->type(), pick(R"([{"x":1,"y":2.5},null,{"x":-3,"y":null}])")));
  columns.push_back(FromJson(arrow::large_utf8(), pick(R"(["héllo",null,""])")));
  columns.push_back(FromJson(arrow::date32(), pick("[0,19000,null]")));
  return arrow::RecordBatch::Make(schema, rows, columns);
}

std::shared_ptr<arrow::RecordBatch> BatchV2() {
  auto v1 = BatchV1(3);
  auto schema = fuzz::SampleSchemaV2();
  std::vector<std::shared_ptr<arrow::Array>> columns = v1->columns();
  auto type = [&](const char* name) { return schema->GetFieldByName(name)->type(); };
  {  // list<dictionary<int16, utf8>>
    auto dict =
        Check(arrow::json::DictArrayFromJSONString(arrow::dictionary(arrow::int16(), arrow::utf8()),
                                                   "[0,1,1,null]", R"(["red","green"])"),
              "labels dictionary");
    auto offsets = FromJson(arrow::int32(), "[0,2,2,4]");
    columns.push_back(
        Check(arrow::ListArray::FromArrays(type("labels"), *offsets, *dict), "labels"));
  }
  columns.push_back(FromJson(type("attrs"), R"([[["a",1],["b",2]],null,[]])"));
  columns.push_back(FromJson(type("vec"), "[[1,2,3],null,[4,5,6]]"));
  columns.push_back(FromJson(type("price"), R"(["12.34",null,"-0.01"])"));
  columns.push_back(FromJson(type("du"), R"([[0,5],[1,"x"],[0,null]])"));
  columns.push_back(FromJson(type("su"), R"([[0,true],[1,2.5],[1,null]])"));
  columns.push_back(FromJson(type("big"), "[[1,2],null,[3]]"));
  columns.push_back(FromJson(type("fsb"), R"(["abcd",null,"wxyz"])"));
  columns.push_back(FromJson(type("half"), "[1,null,2]"));
  columns.push_back(FromJson(type("dur"), "[1,null,-5]"));
  columns.push_back(FromJson(type("mdn"), "[[1,2,3],null,[0,0,-1]]"));
  {  // run_end_encoded<int32, utf8>: 3 logical values in 2 runs
    auto run_ends = FromJson(arrow::int32(), "[2,3]");
    auto values = FromJson(arrow::utf8(), R"(["run",null])");
    columns.push_back(Check(arrow::RunEndEncodedArray::Make(3, run_ends, values), "ree"));
  }
  columns.push_back(FromJson(type("sv"), R"(["short","a string longer than twelve bytes",null])"));
  columns.push_back(FromJson(type("bv"), R"(["x",null,"another long binary view value"])"));
  columns.push_back(FromJson(type("lv"), "[[1,2],null,[3]]"));
  columns.push_back(FromJson(type("nothing"), "[null,null,null]"));
  columns.push_back(FromJson(type("t32"), "[1000,null,86399999]"));
  columns.push_back(FromJson(type("u8"), "[0,255,null]"));
  return arrow::RecordBatch::Make(schema, 3, columns);
}

// A sample in the layout of docs/ARCHITECTURE.md ("Arrow batches"), but with Arrow's own body
// layout and write `options`, e.g. a compression codec, which ArrowPublisher never uses.
std::string EncodeWithOptions(const arrow::RecordBatch& batch, uint32_t type_version,
                              const arrow::ipc::IpcWriteOptions& options) {
  struct Message {
    int64_t id;
    std::string metadata, body;
  };
  auto encode = [&](int64_t id, const arrow::RecordBatch& b) {
    arrow::ipc::IpcPayload payload;
    if (!arrow::ipc::GetRecordBatchPayload(b, options, &payload).ok()) Die("payload");
    auto out = Check(arrow::io::BufferOutputStream::Create(), "stream");
    int32_t metadata_length = 0;
    if (!arrow::ipc::WriteIpcPayload(payload, options, out.get(), &metadata_length).ok()) {
      Die("write payload");
    }
    const std::string whole = Check(out->Finish(), "finish")->ToString();
    return Message{id, payload.metadata->ToString(),
                   whole.substr(whole.size() - static_cast<size_t>(payload.body_length))};
  };
  std::vector<Message> messages;
  arrow::ipc::DictionaryFieldMapper mapper(*batch.schema());
  for (const auto& [id, dictionary] :
       Check(arrow::ipc::CollectDictionaries(batch, mapper), "dictionaries")) {
    auto one =
        arrow::RecordBatch::Make(arrow::schema({arrow::field("dictionary", dictionary->type())}),
                                 dictionary->length(), {dictionary});
    messages.push_back(encode(id, *one));
  }
  messages.push_back(encode(-1, batch));
  auto align = [](uint64_t v, uint64_t a) { return (v + a - 1) / a * a; };
  uint64_t at = kSampleHeaderBytes + 8 + 40 * messages.size();
  std::vector<uint64_t> meta_at, body_at;
  for (const Message& m : messages) {
    at = align(at, 8);
    meta_at.push_back(at);
    at += m.metadata.size();
  }
  const uint64_t meta_end = at;
  const uint64_t body_offset = align(meta_end, kBodyAlignment);
  at = body_offset;
  for (const Message& m : messages) {
    body_at.push_back(at);
    at = align(at + m.body.size(), kBodyAlignment);
  }
  std::string sample(at, '\0');
  SampleHeader h = MakeSampleHeader(PayloadKind::kArrowBatch);
  h.type_version = type_version;
  h.meta_offset = kSampleHeaderBytes;
  h.meta_length = meta_end - kSampleHeaderBytes;
  h.body_offset = body_offset;
  h.body_length = at - body_offset;
  h.count = static_cast<uint64_t>(batch.num_rows());
  std::memcpy(sample.data(), &h, sizeof(h));
  const uint32_t table[2] = {static_cast<uint32_t>(messages.size()), 0};
  std::memcpy(sample.data() + kSampleHeaderBytes, table, sizeof(table));
  for (size_t i = 0; i < messages.size(); ++i) {
    const uint64_t entry[5] = {static_cast<uint64_t>(messages[i].id), meta_at[i],
                               messages[i].metadata.size(), body_at[i], messages[i].body.size()};
    std::memcpy(sample.data() + kSampleHeaderBytes + 8 + 40 * i, entry, sizeof(entry));
    std::memcpy(sample.data() + meta_at[i], messages[i].metadata.data(),
                messages[i].metadata.size());
    std::memcpy(sample.data() + body_at[i], messages[i].body.data(), messages[i].body.size());
  }
  return sample;
}

void SampleSeeds() {
  Channel channel = Check(fuzz::MakeSampleChannel(Backing::kMemfd), "channel");
  ArrowPublisher publisher = Check(ArrowPublisher::Make(channel), "publisher");
  auto save = [](const std::string& name, LoanedSample loan) {
    Write("sample_fuzzer", name, std::span<const std::byte>(loan.data()));
  };
  // Version 1 batches first (encoding a version 2 batch registers version 2).
  std::string v1_rows3;
  for (int rows : {0, 1, 3, 7}) {
    auto batch = BatchV1(rows);
    if (auto st = batch->ValidateFull(); !st.ok()) Die("v1 batch: " + st.ToString());
    LoanedSample loan = Check(publisher.Encode(*batch), "encode v1");
    if (rows == 3) v1_rows3.assign(reinterpret_cast<const char*>(loan.data().data()), loan.size());
    save("arrow_v1_rows" + std::to_string(rows), std::move(loan));
  }
  auto v2 = BatchV2();
  if (auto st = v2->ValidateFull(); !st.ok()) Die("v2 batch: " + st.ToString());
  save("arrow_v2", Check(publisher.Encode(*v2), "encode v2"));
  if (channel.type_versions() != 2) Die("the v2 batch did not register type version 2");
  // Offsets into buffers: a slice of the v2 batch.
  save("arrow_v2_sliced", Check(publisher.Encode(*v2->Slice(1, 2)), "encode sliced"));
  // Arrow's own body layout (8-byte aligned buffers), and compressed bodies.
  auto options = arrow::ipc::IpcWriteOptions::Defaults();
  Write("sample_fuzzer", "arrow_v1_arrow_layout", EncodeWithOptions(*BatchV1(3), 1, options));
  options.codec = Check(arrow::util::Codec::Create(arrow::Compression::ZSTD), "zstd");
  Write("sample_fuzzer", "arrow_v1_zstd", EncodeWithOptions(*BatchV1(7), 1, options));
  options.codec = Check(arrow::util::Codec::Create(arrow::Compression::LZ4_FRAME), "lz4");
  Write("sample_fuzzer", "arrow_v2_lz4", EncodeWithOptions(*v2, 2, options));
  // Malformed: a v1 batch cut short, and a bare header.
  Write("sample_fuzzer", "arrow_truncated",
        std::string_view(v1_rows3).substr(0, v1_rows3.size() / 2));
  const SampleHeader header = MakeSampleHeader(PayloadKind::kArrowBatch);
  Write("sample_fuzzer", "header_only",
        std::string_view(reinterpret_cast<const char*>(&header), sizeof(header)));
  Publisher& raw = publisher.publisher();
  auto tensor = [&](const std::string& name, std::shared_ptr<arrow::DataType> type,
                    std::vector<int64_t> shape) {
    LoanedTensor t = Check(LoanTensor(raw, std::move(type), std::move(shape)), name);
    for (size_t i = 0; i < t.data().size(); ++i) t.data()[i] = std::byte(i * 13 + 5);
    Write("sample_fuzzer", name, std::span<const std::byte>(t.sample().data()));
  };
  tensor("tensor_f32_2x3", arrow::float32(), {2, 3});
  tensor("tensor_u8_scalar", arrow::uint8(), {});
  tensor("tensor_i64_empty", arrow::int64(), {0, 4});
  tensor("tensor_f16_3d", arrow::float16(), {2, 2, 2});
  {
    LoanedAudioFrame a = Check(
        LoanAudioFrame(
            raw,
            {.sample_rate = 48000, .channels = 2, .format = SampleFormat::kS16, .frame_count = 8}),
        "audio");
    Write("sample_fuzzer", "audio_s16_stereo", std::span<const std::byte>(a.sample().data()));
    LoanedAudioFrame empty = Check(
        LoanAudioFrame(
            raw,
            {.sample_rate = 8000, .channels = 1, .format = SampleFormat::kF64, .frame_count = 0}),
        "audio");
    Write("sample_fuzzer", "audio_f64_empty", std::span<const std::byte>(empty.sample().data()));
  }
  {
    LoanedImageFrame i = Check(
        LoanImageFrame(raw, {.width = 3, .height = 2, .format = PixelFormat::kRgb8, .stride = 12}),
        "image");
    Write("sample_fuzzer", "image_rgb8_padded", std::span<const std::byte>(i.sample().data()));
    LoanedImageFrame g = Check(
        LoanImageFrame(raw, {.width = 4, .height = 1, .format = PixelFormat::kGray16}), "image");
    Write("sample_fuzzer", "image_gray16", std::span<const std::byte>(g.sample().data()));
  }
}

// ---- msgpack records ------------------------------------------------------------------------

using Packer = msgpack::packer<msgpack::sbuffer>;

void PackTimestamp(Packer& p, uint32_t seconds) {
  char body[4] = {char(seconds >> 24), char(seconds >> 16), char(seconds >> 8), char(seconds)};
  p.pack_ext(4, -1);
  p.pack_ext_body(body, 4);
}

// One full record of MsgpackSchema as a map, `row` varying the values.
void PackMapRecord(Packer& p, int row) {
  p.pack_map(24);
  auto key = [&](const char* k) { p.pack(std::string(k)); };
  key("id"), p.pack(int64_t{1000} + row);
  key("ok"), p.pack(row % 2 == 0);
  key("i8"), p.pack(int8_t(-row));
  key("i16"), p.pack(int16_t(300 * row));
  key("i32"), p.pack(int32_t(-70000 * row));
  key("u8"), p.pack(uint8_t(200));
  key("u16"), p.pack(uint16_t(60000));
  key("u32"), p.pack(uint32_t(4000000000u));
  key("u64"), p.pack(uint64_t(18000000000000000000ull));
  key("f32"), p.pack(1.5f);
  key("f64"), p.pack(-2.25 * row);
  key("name"), p.pack(std::string("row ") + std::to_string(row));
  key("text"), p.pack(std::string("ünïcödé"));
  key("blob"), p.pack_bin(3), p.pack_bin_body("\x00\x01\x02", 3);
  key("big_blob"), p.pack(std::string("as str"));
  key("nothing"), p.pack_nil();
  key("ts");
  PackTimestamp(p, 1700000000u + row);
  key("ts_ns"), p.pack(int64_t{1700000000000000000});
  key("day"), p.pack(19000 + row);
  key("tags"), p.pack_array(2), p.pack(std::string("a")), p.pack(std::string("b"));
  key("matrix"), p.pack_array(2);
  p.pack_array(2), p.pack(1.0), p.pack(2);
  p.pack_array(0);
  key("point"), p.pack_map(3);
  key("x"), p.pack(row);
  key("y"), p.pack_nil();
  key("label"), p.pack(std::string(row % 2 ? "left" : "right"));
  key("items"), p.pack_array(2);
  p.pack_array(2), p.pack(std::string("sku-1")), p.pack(3);
  p.pack_map(1), key("sku"), p.pack(std::string("sku-2"));
  key("code"), p.pack(std::string(row % 3 ? "EUR" : "USD"));
}

void MsgpackSeeds() {
  auto write = [](const std::string& name, const msgpack::sbuffer& b) {
    Write("msgpack_records_fuzzer", name, std::string_view(b.data(), b.size()));
  };
  {
    msgpack::sbuffer b;
    Packer p(b);
    p.pack_array(3);
    for (int row = 0; row < 3; ++row) PackMapRecord(p, row);
    write("map_records", b);
  }
  {  // array_like records: values in schema order, short (trailing nulls)
    msgpack::sbuffer b;
    Packer p(b);
    p.pack_array(2);
    p.pack_array(4), p.pack(1), p.pack(true), p.pack_nil(), p.pack(int16_t(-5));
    p.pack_array(1), p.pack(2);
    write("array_records", b);
  }
  {
    msgpack::sbuffer b;
    Packer p(b);
    p.pack_array(0);
    write("empty", b);
  }
  {  // mixed map and array records, unknown keys, nil for nullable fields
    msgpack::sbuffer b;
    Packer p(b);
    p.pack_array(2);
    p.pack_map(3), p.pack(std::string("id")), p.pack(7), p.pack(std::string("zzz")), p.pack(1.0),
        p.pack(std::string("tags")), p.pack_nil();
    p.pack_array(3), p.pack(8), p.pack_nil(), p.pack(int8_t(1));
    write("mixed", b);
  }
  {  // errors: missing non-nullable id, wrong type, out of range
    msgpack::sbuffer b;
    Packer p(b);
    p.pack_array(3);
    p.pack_map(1), p.pack(std::string("ok")), p.pack(true);
    p.pack_map(2), p.pack(std::string("id")), p.pack(1), p.pack(std::string("i8")), p.pack(1000);
    p.pack_map(2), p.pack(std::string("id")), p.pack(std::string("x")), p.pack(std::string("u8")),
        p.pack(-1);
    write("bad_values", b);
  }
  write("bad_truncated", [] {
    msgpack::sbuffer b;
    Packer p(b);
    p.pack_array(1);
    PackMapRecord(p, 5);
    msgpack::sbuffer cut;
    cut.write(b.data(), b.size() / 2);
    return cut;
  }());
  Write("msgpack_records_fuzzer", "bad_huge_array_header",
        std::string("\xdd\xff\xff\xff\xff\x80", 6));
  Write("msgpack_records_fuzzer", "bad_deep", std::string(100, '\x91') + std::string(1, '\xc0'));
  Write("msgpack_records_fuzzer", "bad_trailing", std::string("\x90\x90", 2));
}

// ---- pipeline files -------------------------------------------------------------------------

void PipelineSeeds(const fs::path& repo) {
  auto copy = [&](const fs::path& from, const std::string& name) {
    std::ifstream in(from, std::ios::binary);
    if (!in) Die("cannot read " + from.string());
    std::ostringstream text;
    text << in.rdbuf();
    Write("pipeline_fuzzer", name, text.str());
  };
  copy(repo / "examples" / "ledger.toml", "ledger.toml");
  copy(repo / "examples" / "ledger" / "schema.json", "ledger_schema.json");
  for (const auto& entry : fs::directory_iterator(repo / "tests" / "pipelines")) {
    if (entry.path().extension() == ".toml") copy(entry.path(), entry.path().filename().string());
  }
  Write("pipeline_fuzzer", "all_keys.toml", R"(# every key of both tables
[[channel]]
name = "frames"
capacity = 1048576
overflow = "drop-oldest"
max_subscribers = 2
max_samples = 16
stall_timeout = 1.5
schema = "schema.json"

[[channel]]
name = "evidence"
capacity = "2 GB"

[[node]]
name = "camera"
command = "./camera"
args = ["--fps", "30"]
env = { CAMERA = "0", "QUOTED KEY" = "v" }
cwd = "/tmp"
publishes = ["frames", "evidence"]

[[node]]
name = "detector"
command = "detector"
subscribes = ["frames", "evidence"]

[[node]]
name = "recorder"
command = "recorder"
subscribes = ["frames"]
)");
  Write("pipeline_fuzzer", "bad_schema.toml",
        "[[channel]]\nname = \"c\"\nschema = \"bad.json\"\n[[node]]\nname = \"n\"\n"
        "command = \"x\"\npublishes = [\"c\"]\n");
  Write("pipeline_fuzzer", "bad_reserved_env.toml",
        "[[node]]\nname = \"n\"\ncommand = \"x\"\nenv = { QUIVER_CHANNELS = \"a=1\" }\n");
  Write("pipeline_fuzzer", "bad_max_subscribers.toml",
        "[[channel]]\nname = \"c\"\nmax_subscribers = 1\n[[node]]\nname = \"p\"\ncommand = \"x\"\n"
        "publishes = [\"c\"]\n[[node]]\nname = \"a\"\ncommand = \"x\"\nsubscribes = [\"c\"]\n"
        "[[node]]\nname = \"b\"\ncommand = \"x\"\nsubscribes = [\"c\"]\n");
  Write("pipeline_fuzzer", "bad_toml_types.toml",
        "channel = 5\n[[node]]\nname = 1979-05-27T07:32:00Z\ncommand = [1, 2.5, true]\n"
        "args = [\"a\", 1]\n");
  Write("pipeline_fuzzer", "schema_all_types.json", [] {
    std::string s = "[";
    int i = 0;
    for (std::string_view t : SchemaTypeNames()) {
      s += (i ? "," : "") + std::string(R"({"name":"f)") + std::to_string(i) + R"(","type":")" +
           std::string(t) + R"(","nullable":)" + (i % 2 ? "true" : "false") + "}";
      ++i;
    }
    return s + "]";
  }());
  Write("pipeline_fuzzer", "size_mib", "256MiB");
  Write("pipeline_fuzzer", "size_overflow", "18446744073709551615 TB");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: " << argv[0] << " CORPUS_DIR REPO_ROOT\n";
    return 2;
  }
  fuzz::UseSystemMemoryPool();
  g_corpus = argv[1];
  EnvelopeSeeds();
  HandleSeeds();
  SampleSeeds();
  MsgpackSeeds();
  PipelineSeeds(argv[2]);
  for (const auto& dir : fs::directory_iterator(g_corpus)) {
    size_t n = 0;
    for ([[maybe_unused]] const auto& f : fs::directory_iterator(dir)) ++n;
    std::cout << dir.path().filename().string() << ": " << n << " seeds\n";
  }
  return 0;
}
