// The pipeline target (src/supervisor/pipeline.cc, src/payload/schema_file.cc,
// src/common/byte_size.cc): the input as pipeline TOML (from a string, and from a file: the same
// outcome), as a schema file, and as a byte size. A pipeline LoadPipeline accepts must be runnable
// as is (valid names, channels that can be laid out, one publisher each); refusals are
// kInvalidArgument with a message. Run by pipeline_fuzzer.cc; replayed by
// tests/fuzz_regression_test.cc.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "channel/layout.h"
#include "common/byte_size.h"
#include "fuzz_support.h"
#include "payload/schema_evolution.h"
#include "quiver/schema_file.h"
#include "quiver/status.h"
#include "shm/segment.h"
#include "supervisor/pipeline.h"

namespace quiver::fuzz {

struct PipelineFixture {
  std::filesystem::path dir;   // base directory, with schema files in it
  std::filesystem::path file;  // where the input is written for LoadPipeline
};

inline PipelineFixture& GetPipelineFixture() {
  static PipelineFixture* fixture = [] {
    char templ[] = "/tmp/quiver-fuzz-pipeline-XXXXXX";
    const char* dir = mkdtemp(templ);
    QUIVER_FUZZ_SETUP(dir != nullptr, std::strerror(errno));
    auto* f = new PipelineFixture{dir, std::filesystem::path(dir) / "pipeline.toml"};
    std::filesystem::create_directories(f->dir / "ledger");
    const char* ledger = R"([
  {"name": "stt", "type": "int32", "nullable": false},
  {"name": "code", "type": "utf8", "nullable": false},
  {"name": "amount", "type": "float64"}
])";
    std::ofstream(f->dir / "ledger" / "schema.json") << ledger;
    std::ofstream(f->dir / "schema.json") << R"([{"name": "id", "type": "int64"}])";
    std::ofstream(f->dir / "bad.json") << R"([{"name": "id", "type": "decimal"}])";
    // The directory goes when the process exits normally (a crash leaves a few small files
    // in /tmp, named for what they are).
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(GetPipelineFixture().dir, ec);
    });
    return f;
  }();
  return *fixture;
}

inline void CheckPipeline(const Result<supervisor::Pipeline>& loaded, const std::string& what) {
  if (!loaded.ok()) {
    QUIVER_FUZZ_CHECK(loaded.status().code() == ErrorCode::kInvalidArgument,
                      what + ": " + StatusText(loaded.status()));
    QUIVER_FUZZ_CHECK(!loaded.status().message().empty(), what + ": error without a message");
    return;
  }
  // A pipeline LoadPipeline returns "can be run as is": check what the supervisor relies on.
  const supervisor::Pipeline& p = loaded.value();
  QUIVER_FUZZ_CHECK(!p.nodes.empty(), what + ": no nodes");
  std::set<std::string> channels;
  for (const supervisor::ChannelSpec& c : p.channels) {
    QUIVER_FUZZ_CHECK(shm::Segment::ValidateName(c.name).ok(), what + ": channel name " + c.name);
    QUIVER_FUZZ_CHECK(channels.insert(c.name).second, what + ": channel twice: " + c.name);
    QUIVER_FUZZ_CHECK(c.capacity >= 1 && c.capacity <= (size_t{1} << 40), what + ": capacity");
    QUIVER_FUZZ_CHECK(
        channel::ComputeLayout(c.capacity, c.max_samples, c.max_subscribers, size_t{64} << 10).ok(),
        what + ": channel '" + c.name + "' cannot be laid out");
    QUIVER_FUZZ_CHECK(c.schema_path.empty() == (c.schema == nullptr), what + ": schema");
    if (c.schema != nullptr) {
      const Status evolution = payload::CheckEvolution({}, *c.schema);
      QUIVER_FUZZ_CHECK(evolution.ok(), what + ": " + StatusText(evolution));
    }
  }
  std::set<std::string> nodes;
  std::map<std::string, int> publishers, subscribers;
  for (const supervisor::NodeSpec& n : p.nodes) {
    QUIVER_FUZZ_CHECK(shm::Segment::ValidateName(n.name).ok(), what + ": node name " + n.name);
    QUIVER_FUZZ_CHECK(nodes.insert(n.name).second, what + ": node twice: " + n.name);
    QUIVER_FUZZ_CHECK(!n.command.empty(), what + ": empty command");
    for (const auto& [k, v] : n.env) {
      QUIVER_FUZZ_CHECK(!k.empty() && k.find('=') == std::string::npos, what + ": env " + k);
    }
    for (const std::string& c : n.publishes) {
      QUIVER_FUZZ_CHECK(channels.contains(c), what + ": publishes unknown " + c);
      ++publishers[c];
    }
    for (const std::string& c : n.subscribes) {
      QUIVER_FUZZ_CHECK(channels.contains(c), what + ": subscribes unknown " + c);
      ++subscribers[c];
    }
  }
  for (const supervisor::ChannelSpec& c : p.channels) {
    QUIVER_FUZZ_CHECK(publishers[c.name] == 1, what + ": channel '" + c.name + "' has " +
                                                   std::to_string(publishers[c.name]) +
                                                   " publishers");
    QUIVER_FUZZ_CHECK(subscribers[c.name] <= static_cast<int>(c.max_subscribers),
                      what + ": too many subscribers");
    QUIVER_FUZZ_CHECK(p.FindChannel(c.name) != nullptr, what + ": FindChannel");
  }
}

inline void FuzzPipeline(const uint8_t* data, size_t size) {
  UseSystemMemoryPool();
  PipelineFixture& f = GetPipelineFixture();
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const Result<supervisor::Pipeline> from_string =
      supervisor::LoadPipelineFromString(text, f.file.string(), f.dir);
  CheckPipeline(from_string, "LoadPipelineFromString");
  {  // The same text from a file: the same outcome.
    std::ofstream(f.file, std::ios::binary | std::ios::trunc)
        .write(text.data(), static_cast<std::streamsize>(size));
    const Result<supervisor::Pipeline> from_file = supervisor::LoadPipeline(f.file);
    QUIVER_FUZZ_CHECK(
        from_file.ok() == from_string.ok() &&
            from_file.status().ToString() == from_string.status().ToString(),
        "LoadPipeline and LoadPipelineFromString disagree: " + StatusText(from_file.status()) +
            " vs " + StatusText(from_string.status()));
  }

  const Result<std::shared_ptr<arrow::Schema>> schema = ParseSchemaJson(text, "fuzz.json");
  if (schema.ok()) {
    QUIVER_FUZZ_CHECK(schema.value()->num_fields() > 0, "an empty schema accepted");
    QUIVER_FUZZ_CHECK(payload::CheckEvolution({}, *schema.value()).ok(), "schema not creatable");
  } else {
    QUIVER_FUZZ_CHECK(schema.status().code() == ErrorCode::kInvalidArgument,
                      StatusText(schema.status()));
  }

  if (size <= 64) {
    const Result<uint64_t> bytes = ParseByteSize(text);
    if (!bytes.ok()) {
      QUIVER_FUZZ_CHECK(bytes.status().code() == ErrorCode::kInvalidArgument,
                        StatusText(bytes.status()));
    }
  }
}

}  // namespace quiver::fuzz
