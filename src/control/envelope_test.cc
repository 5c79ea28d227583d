#include "quiver/envelope.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

namespace quiver::control {
namespace {

using nlohmann::json;

constexpr char kId[] = "0b6f3c52-7f0e-4c8e-9d2a-1f3e5a7b9c0d";

std::string Line(const json& doc) { return doc.dump(); }

json Valid(std::string type = "CMD_PROCESS") {
  return {{"protocol_v", "2.0.0"},
          {"msg_id", kId},
          {"type", type},
          {"payload",
           {{"shm_handle",
             {{"segment_id", "frames"}, {"offset", 128}, {"size", 4096}, {"format", "raw"}}}}}};
}

json WithHandleField(const char* field, json value) {
  json doc = Valid();
  doc["payload"]["shm_handle"][field] = std::move(value);
  return doc;
}

TEST(EnvelopeTest, EveryTypeRoundTrips) {
  const std::vector<Envelope> cases = [] {
    std::vector<Envelope> v;
    v.push_back(MakeEnvelope(kCmdStreamStart, {{"segment_id", "frames"}, {"capacity", 1 << 20}}));
    Envelope process = MakeEnvelope(kCmdProcess, {{"note", "extra is kept"}});
    process.shm_handle = ShmHandle{"frames", 64, 100, ShmFormat::kArrowStream};
    v.push_back(process);
    Envelope ready = MakeEnvelope(kResDataReady);
    ready.shm_handle = ShmHandle{"out", 0, 1, ShmFormat::kTensor};
    v.push_back(ready);
    v.push_back(MakeEnvelope(kResOk));
    v.push_back(MakeEnvelope(kCmdShutdown));
    v.push_back(
        MakeError(NewMsgId(),
                  Status::ShmCorruption("bad magic").Wrap(ErrorCode::kPeerGone, "publisher died")));
    return v;
  }();
  for (const Envelope& e : cases) {
    SCOPED_TRACE(e.type);
    const std::string line = Serialize(e);
    EXPECT_EQ(line.find('\n'), std::string::npos);
    ParseOutcome parsed = ParseEnvelope(line);
    ASSERT_TRUE(parsed.ok()) << parsed.error.code << ": " << parsed.error.message;
    EXPECT_EQ(parsed.envelope->type, e.type);
    EXPECT_EQ(parsed.envelope->msg_id, e.msg_id);
    EXPECT_EQ(parsed.envelope->protocol_v, "2.0.0");
    EXPECT_EQ(parsed.envelope->shm_handle, e.shm_handle);
    EXPECT_EQ(Serialize(*parsed.envelope), line);
  }
}

TEST(EnvelopeTest, ErrorCarriesTheStatusCauseChain) {
  const Status status = Status::IoError("read: EIO")
                            .Wrap(ErrorCode::kShmCorruption, "header unreadable")
                            .Wrap(ErrorCode::kHandleOutOfRange, "handle does not fit");
  const Envelope e = MakeError(kId, status);
  const json& p = e.payload;
  EXPECT_EQ(p["code"], "HANDLE_OUT_OF_RANGE");
  EXPECT_EQ(p["message"], "handle does not fit");
  EXPECT_EQ(p["cause"]["code"], "SHM_CORRUPTION");
  EXPECT_EQ(p["cause"]["cause"]["code"], "IO_ERROR");
  EXPECT_TRUE(p["cause"]["cause"]["cause"].is_null());

  const Status back = StatusFromError(*ParseEnvelope(Serialize(e)).envelope);
  EXPECT_EQ(back.ToString(), status.ToString());
  EXPECT_EQ(MakeError("", Status::PeerGone("gone")).payload["code"], "PEER_DIED");
}

TEST(EnvelopeTest, ErrorToUnreadableRequestHasNullMsgId) {
  const json doc = json::parse(Serialize(MakeError(ParseEnvelope("{").error)));
  EXPECT_TRUE(doc["msg_id"].is_null());
  EXPECT_EQ(doc["type"], "RES_ERROR_V2");
  EXPECT_EQ(doc["payload"]["code"], "INVALID_ENVELOPE");
}

TEST(EnvelopeTest, UnknownFieldsAreIgnoredAndPayloadExtrasKept) {
  json doc = Valid();
  doc["trace"] = {{"span", 7}};
  doc["payload"]["priority"] = "high";
  doc["payload"]["shm_handle"]["checksum"] = 12;
  ParseOutcome parsed = ParseEnvelope(Line(doc));
  ASSERT_TRUE(parsed.ok()) << parsed.error.message;
  EXPECT_EQ(parsed.envelope->payload["priority"], "high");
  EXPECT_EQ(Serialize(*parsed.envelope).find("trace"), std::string::npos);
}

TEST(EnvelopeTest, AcceptsOtherMinorVersionsAndCrLf) {
  json doc = Valid();
  doc["protocol_v"] = "2.7.13";
  EXPECT_TRUE(ParseEnvelope(Line(doc)).ok());
  EXPECT_TRUE(ParseEnvelope(Line(Valid()) + "\r").ok());
}

struct BadLine {
  std::string name;
  std::string line;
  std::string code;
  bool echoes_id;  // the error answers with the request's msg_id
};

std::vector<BadLine> BadLines() {
  const std::string oor(ErrorCodeName(ErrorCode::kHandleOutOfRange));
  std::vector<BadLine> v = {
      {"empty", "", "INVALID_ENVELOPE", false},
      {"whitespace", " \t ", "INVALID_ENVELOPE", false},
      {"not_json", "hello", "INVALID_ENVELOPE", false},
      {"nan", "NaN", "INVALID_ENVELOPE", false},
      {"trailing_garbage", Line(Valid()) + "x", "INVALID_ENVELOPE", false},
      {"two_objects", Line(Valid()) + Line(Valid()), "INVALID_ENVELOPE", false},
      {"array", "[1,2]", "INVALID_ENVELOPE", false},
      {"string", "\"CMD_PROCESS\"", "INVALID_ENVELOPE", false},
      {"number", "42", "INVALID_ENVELOPE", false},
      {"null", "null", "INVALID_ENVELOPE", false},
      {"invalid_utf8", "{\"protocol_v\":\"2.0.0\",\"msg_id\":\"\xff\xfe\"}", "INVALID_ENVELOPE",
       false},
      {"deep_nesting", std::string(30000, '[') + std::string(30000, ']'), "INVALID_ENVELOPE",
       false},
      {"huge", Line(Valid()).insert(1, "\"pad\":\"" + std::string(kMaxLineBytes, 'x') + "\","),
       "LINE_TOO_LONG", false},
  };
  auto add = [&](std::string name, json doc, std::string code, bool echoes_id = true) {
    v.push_back({std::move(name), Line(doc), std::move(code), echoes_id});
  };
  auto without = [](const char* field) {
    json doc = Valid();
    doc.erase(field);
    return doc;
  };
  auto with = [](const char* field, json value) {
    json doc = Valid();
    doc[field] = std::move(value);
    return doc;
  };
  // protocol_v
  add("version_missing", without("protocol_v"), "INVALID_ENVELOPE");
  add("version_number", with("protocol_v", 2), "INVALID_ENVELOPE");
  add("version_null", with("protocol_v", nullptr), "INVALID_ENVELOPE");
  add("version_1", with("protocol_v", "1.0.0"), "UNSUPPORTED_VERSION");
  add("version_1_1", with("protocol_v", "1.1.0"), "UNSUPPORTED_VERSION");
  add("version_3", with("protocol_v", "3.0.0"), "UNSUPPORTED_VERSION");
  add("version_garbage", with("protocol_v", "two"), "UNSUPPORTED_VERSION");
  add("version_short", with("protocol_v", "2.0"), "UNSUPPORTED_VERSION");
  add("version_suffix", with("protocol_v", "2.0.0-beta"), "UNSUPPORTED_VERSION");
  add("version_empty", with("protocol_v", ""), "UNSUPPORTED_VERSION");
  add("version_overflow", with("protocol_v", "99999999999999999999.0.0"), "UNSUPPORTED_VERSION");
  // msg_id
  add("id_missing", without("msg_id"), "INVALID_ENVELOPE", false);
  add("id_number", with("msg_id", 7), "INVALID_ENVELOPE", false);
  add("id_null_in_a_request", with("msg_id", nullptr), "INVALID_ENVELOPE", false);
  {
    json doc = with("type", "RES_OK");
    doc["msg_id"] = nullptr;
    add("id_null_in_res_ok", doc, "INVALID_ENVELOPE", false);
  }
  add("id_not_uuid", with("msg_id", "abc"), "INVALID_ENVELOPE", false);
  add("id_bad_hex", with("msg_id", "0b6f3c52-7f0e-4c8e-9d2a-1f3e5a7b9c0z"), "INVALID_ENVELOPE",
      false);
  add("id_no_dashes", with("msg_id", "0b6f3c527f0e4c8e9d2a1f3e5a7b9c0d"), "INVALID_ENVELOPE",
      false);
  // type
  add("type_missing", without("type"), "INVALID_ENVELOPE");
  add("type_number", with("type", 3), "INVALID_ENVELOPE");
  add("type_not_a_name", with("type", "EXTRACT_EVIDENCE"), "UNKNOWN_TYPE");
  add("type_lower_case", with("type", "cmd_process"), "UNKNOWN_TYPE");
  add("type_empty", with("type", ""), "UNKNOWN_TYPE");
  // payload
  add("payload_missing", without("payload"), "INVALID_ENVELOPE");
  add("payload_null", with("payload", nullptr), "INVALID_ENVELOPE");
  add("payload_array", with("payload", json::array()), "INVALID_ENVELOPE");
  add("payload_string", with("payload", "{}"), "INVALID_ENVELOPE");
  {
    json doc = Valid();
    doc["payload"].erase("shm_handle");
    add("process_without_handle", doc, "INVALID_ENVELOPE");
    doc["type"] = "RES_DATA_READY";
    add("data_ready_without_handle", doc, "INVALID_ENVELOPE");
  }
  add("error_payload_without_code", with("type", "RES_ERROR_V2"), "INVALID_ENVELOPE");
  {
    json doc = Valid("RES_ERROR_V2");
    doc["payload"] = {{"code", "X"}, {"message", "m"}, {"cause", 5}};
    add("error_cause_not_object", doc, "INVALID_ENVELOPE");
    json deep = nullptr;
    for (int i = 0; i < 40; ++i) deep = {{"code", "X"}, {"message", "m"}, {"cause", deep}};
    doc["payload"] = deep;
    add("error_cause_too_deep", doc, "INVALID_ENVELOPE");
  }
  // shm_handle
  {
    json doc = Valid();
    doc["payload"]["shm_handle"] = "frames:0:10";
    add("handle_string", doc, "INVALID_ENVELOPE");
    doc["payload"]["shm_handle"] = nullptr;
    add("handle_null", doc, "INVALID_ENVELOPE");
    for (const char* field : {"segment_id", "offset", "size", "format"}) {
      doc = Valid();
      doc["payload"]["shm_handle"].erase(field);
      add(std::string("handle_missing_") + field, doc, "INVALID_ENVELOPE");
    }
  }
  add("segment_number", WithHandleField("segment_id", 5), "INVALID_ENVELOPE");
  add("segment_empty", WithHandleField("segment_id", ""), "INVALID_ENVELOPE");
  add("offset_string", WithHandleField("offset", "0"), "INVALID_ENVELOPE");
  add("offset_bool", WithHandleField("offset", true), "INVALID_ENVELOPE");
  add("offset_fraction", WithHandleField("offset", 1.5), "INVALID_ENVELOPE");
  add("offset_negative", WithHandleField("offset", -1), oor);
  add("offset_min_int64", WithHandleField("offset", std::numeric_limits<int64_t>::min()), oor);
  add("size_negative", WithHandleField("size", -4096), oor);
  add("size_zero", WithHandleField("size", 0), "INVALID_ENVELOPE");
  add("size_null", WithHandleField("size", nullptr), "INVALID_ENVELOPE");
  add("size_beyond_u64", WithHandleField("size", 1e20), oor);
  add("offset_plus_size_overflows", WithHandleField("offset", std::numeric_limits<uint64_t>::max()),
      oor);
  {
    json doc = Valid();
    doc["payload"]["shm_handle"]["offset"] = uint64_t{1} << 63;
    doc["payload"]["shm_handle"]["size"] = uint64_t{1} << 63;
    add("offset_plus_size_is_2_pow_64", doc, oor);
  }
  add("format_unknown", WithHandleField("format", "parquet"), "INVALID_ENVELOPE");
  add("format_upper_case", WithHandleField("format", "RAW"), "INVALID_ENVELOPE");
  add("format_number", WithHandleField("format", 1), "INVALID_ENVELOPE");
  // Literal text the JSON library would never produce.
  const std::string big_literal =
      Line(Valid()).replace(Line(Valid()).find("128"), 3, "99999999999999999999999");
  v.push_back({"offset_huge_literal", big_literal, oor, true});
  return v;
}

TEST(EnvelopeTest, EveryBadLineIsAnsweredWithItsCode) {
  for (const BadLine& bad : BadLines()) {
    SCOPED_TRACE(bad.name);
    ParseOutcome parsed = ParseEnvelope(bad.line);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.error.code, bad.code) << parsed.error.message;
    EXPECT_FALSE(parsed.error.message.empty());
    EXPECT_EQ(parsed.error.msg_id, bad.echoes_id ? kId : "");
    // The answer itself is a valid envelope.
    ParseOutcome answer = ParseEnvelope(Serialize(MakeError(parsed.error)));
    ASSERT_TRUE(answer.ok()) << answer.error.message;
    EXPECT_EQ(answer.envelope->payload["code"], bad.code);
  }
}

TEST(EnvelopeTest, EveryTruncationOfAValidLineIsRejected) {
  const std::string line = Line(Valid());
  for (size_t n = 0; n < line.size(); ++n) {
    ParseOutcome parsed = ParseEnvelope(std::string_view(line).substr(0, n));
    ASSERT_FALSE(parsed.ok()) << "prefix of " << n << " bytes";
    EXPECT_EQ(parsed.error.code, "INVALID_ENVELOPE");
  }
  EXPECT_TRUE(ParseEnvelope(line).ok());
}

TEST(EnvelopeTest, EverySingleByteMutationIsHandled) {
  // Fuzz-style: each byte replaced by a few hostile values; any outcome but a crash is fine,
  // and an error always names a code.
  const std::string line = Line(Valid());
  for (size_t i = 0; i < line.size(); ++i) {
    for (char c : {'\0', '"', '{', '\\', '9', '-', '\xff'}) {
      std::string mutated = line;
      mutated[i] = c;
      ParseOutcome parsed = ParseEnvelope(mutated);
      if (!parsed.ok()) {
        EXPECT_FALSE(parsed.error.code.empty());
      }
    }
  }
}

TEST(EnvelopeTest, LineAtTheLimitIsAccepted) {
  json doc = Valid();
  doc["pad"] = "";
  const size_t base = Line(doc).size();
  doc["pad"] = std::string(kMaxLineBytes - base, 'x');
  ASSERT_EQ(Line(doc).size(), kMaxLineBytes);
  EXPECT_TRUE(ParseEnvelope(Line(doc)).ok());
  doc["pad"] = std::string(kMaxLineBytes - base + 1, 'x');
  EXPECT_EQ(ParseEnvelope(Line(doc)).error.code, "LINE_TOO_LONG");
}

TEST(EnvelopeTest, NewMsgIdIsAVersion4Uuid) {
  const std::string a = NewMsgId();
  EXPECT_TRUE(IsUuid(a));
  EXPECT_EQ(a[14], '4');
  EXPECT_NE(a, NewMsgId());
}

TEST(EnvelopeTest, SerializeReplacesInvalidUtf8InMessages) {
  const Envelope e = MakeError(kId, Status::NotFound("channel '\xff\xfe'"));
  ParseOutcome parsed = ParseEnvelope(Serialize(e));
  ASSERT_TRUE(parsed.ok()) << parsed.error.message;
}

// envelope_cases.jsonl, beside this file: lines and what ParseEnvelope makes of each, shared
// with python/tests/test_control_cases.py, which runs the same lines through the Python
// package. Its own format is described at its top.
std::vector<json> SharedCases() {
  std::ifstream in(std::filesystem::path(__FILE__).parent_path() / "envelope_cases.jsonl");
  std::vector<json> cases;
  for (std::string text; std::getline(in, text);) {
    if (text.empty() || text[0] == '#') continue;
    cases.push_back(json::parse(text));
  }
  return cases;
}

// A case's line: "line" as is, "hex" bytes (for invalid UTF-8), or "parts" [[text, times], ...].
std::string CaseLine(const json& c) {
  if (c.contains("line")) return c["line"].get<std::string>();
  std::string line;
  if (c.contains("hex")) {
    const std::string hex = c["hex"].get<std::string>();
    for (size_t i = 0; i + 1 < hex.size(); i += 2) {
      line.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    }
    return line;
  }
  for (const json& part : c["parts"]) {
    for (int i = 0; i < part[1].get<int>(); ++i) line += part[0].get<std::string>();
  }
  return line;
}

TEST(EnvelopeTest, EveryLineOfTheSharedTableIsAcceptedOrRefusedAsItSays) {
  const std::vector<json> cases = SharedCases();
  ASSERT_GE(cases.size(), 50u) << "envelope_cases.jsonl is missing or thin";
  for (const json& c : cases) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const ParseOutcome parsed = ParseEnvelope(CaseLine(c));
    const std::string msg_id = c["msg_id"].is_null() ? "" : c["msg_id"].get<std::string>();
    if (c.contains("code")) {
      ASSERT_FALSE(parsed.ok());
      EXPECT_EQ(parsed.error.code, c["code"].get<std::string>());
      EXPECT_EQ(parsed.error.message, c["message"].get<std::string>());
      EXPECT_EQ(parsed.error.msg_id, msg_id);
    } else {
      ASSERT_TRUE(parsed.ok()) << parsed.error.code << ": " << parsed.error.message;
      EXPECT_EQ(parsed.envelope->type, c["type"].get<std::string>());
      EXPECT_EQ(parsed.envelope->msg_id, msg_id);
      EXPECT_EQ(Serialize(*parsed.envelope), c["serialized"].get<std::string>());
    }
  }
}

TEST(EnvelopeTest, ParseShmHandleAppliesTheRulesOfParseEnvelope) {
  // As json::parse makes them: a non-negative integer is unsigned.
  ShmHandle h;
  EXPECT_FALSE(ParseShmHandle(json::parse(Line(Valid()))["payload"]["shm_handle"], &h));
  EXPECT_EQ(h, (ShmHandle{"frames", 128, 4096, ShmFormat::kRaw}));
  const json bad = WithHandleField("offset", -1);
  const std::optional<EnvelopeError> e =
      ParseShmHandle(json::parse(Line(bad))["payload"]["shm_handle"], &h);
  ASSERT_TRUE(e.has_value());
  const ParseOutcome parsed = ParseEnvelope(Line(bad));
  EXPECT_EQ(e->code, parsed.error.code);
  EXPECT_EQ(e->message, parsed.error.message);
}

TEST(EnvelopeTest, BuiltinTypesAreReservedNamesAndApplicationsNameTheirOwn) {
  const std::vector<std::string_view> types = BuiltinTypeNames();
  ASSERT_EQ(types.size(), 7u);
  for (std::string_view name : types) {
    EXPECT_TRUE(IsBuiltinType(name)) << name;
    EXPECT_TRUE(ValidateTypeName(name).ok()) << name;
  }
  EXPECT_FALSE(IsBuiltinType("CMD_EXTRACT_EVIDENCE"));
  for (std::string_view good : {"CMD_EXTRACT_EVIDENCE", "RES_PAGE_2", "CMD_X"}) {
    EXPECT_TRUE(ValidateTypeName(good).ok()) << good;
  }
  for (std::string_view bad :
       {"", "CMD_", "cmd_process", "CMD_lower", "EVT_X", "CMD-X", "CMD_\u00e9"}) {
    EXPECT_EQ(ValidateTypeName(bad).code(), ErrorCode::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(ValidateTypeName("CMD_" + std::string(60, 'A')).ok());
  EXPECT_FALSE(ValidateTypeName("CMD_" + std::string(61, 'A')).ok());
  EXPECT_TRUE(IsResponse("RES_PAGE") && !IsResponse("CMD_PAGE"));
  EXPECT_EQ(ShmFormatNames(), (std::vector<std::string_view>{"arrow_stream", "tensor", "raw"}));
}

}  // namespace
}  // namespace quiver::control
