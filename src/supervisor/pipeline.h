// A pipeline file: the channels a supervisor creates and the nodes (processes) it runs.
// Plain values; LoadPipeline validates everything, so a Pipeline it returns can be run as is.
#pragma once

#include <arrow/type_fwd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "quiver/arrow.h"
#include "quiver/channel.h"
#include "quiver/status.h"

namespace quiver::supervisor {

/// One [[channel]] table.
struct ChannelSpec {
  std::string name;
  size_t capacity = size_t{64} << 20;
  uint32_t max_samples = 256;
  uint32_t max_subscribers = 16;
  OverflowPolicy overflow = OverflowPolicy::kBlock;
  /// The slow-consumer policy (ChannelOptions::stall_timeout); none by default.
  std::optional<std::chrono::milliseconds> stall_timeout;
  /// The schema file as resolved (relative paths are relative to the pipeline file's
  /// directory); empty for an untyped channel.
  std::filesystem::path schema_path;
  /// The schema file's Arrow schema, already read and checked; null for an untyped channel.
  std::shared_ptr<arrow::Schema> schema;
  /// Whether the schema may grow after creation (key `evolution`; strict by default).
  SchemaEvolution evolution = SchemaEvolution::kStrict;
  /// Published from outside the pipeline (a Flight DoPut through `quiver serve`, a process
  /// of this user attaching through the supervisor's socket), so no node may publish it.
  bool external = false;
  /// The history kept for subscribers that join late with from_oldest (a Retainer run by
  /// the supervisor): the last `history` samples and/or those of the last `history_age`.
  uint32_t history = 0;
  std::chrono::milliseconds history_age{0};
  int line = 0;  ///< where the [[channel]] table starts, for messages
};

/// How a commanded node (a worker) holds its control connection.
enum class ControlMode {
  kPipes,  ///< two inherited pipes, their fds in QUIVER_CONTROL ("R:W")
  kStdio,  ///< its stdin and stdout (QUIVER_CONTROL=stdio); its stdout is not relayed
};

/// One [[node]] table.
struct NodeSpec {
  std::string name;
  /// The program: looked up in PATH unless it contains a '/' (then relative to `cwd`, as
  /// execvp does after the chdir).
  std::string command;
  std::vector<std::string> args;
  /// Added to (or replacing in) the supervisor's own environment, in file order.
  std::vector<std::pair<std::string, std::string>> env;
  /// Working directory; empty means the supervisor's.
  std::filesystem::path cwd;
  std::vector<std::string> publishes;
  std::vector<std::string> subscribes;
  /// The nodes this one commands (its workers), in file order: each gets a control
  /// connection to it.
  std::vector<std::string> controls;
  /// How this node, if another node controls it, holds that connection.
  ControlMode control = ControlMode::kPipes;
  int line = 0;             ///< where the [[node]] table starts, for messages
  int publishes_line = 0;   ///< where `publishes` is written (0: absent), for messages
  int subscribes_line = 0;  ///< where `subscribes` is written (0: absent), for messages
  int controls_line = 0;    ///< where `controls` is written (0: absent), for messages
  int control_line = 0;     ///< where `control` is written (0: absent), for messages
};

struct Pipeline {
  std::string source;  ///< the file name (or the name given to LoadPipelineFromString)
  std::vector<ChannelSpec> channels;
  std::vector<NodeSpec> nodes;

  /// Returns the channel named `name`, or nullptr.
  const ChannelSpec* FindChannel(std::string_view name) const;
  /// Returns the node named `name`, or nullptr.
  const NodeSpec* FindNode(std::string_view name) const;
  /// Returns the node whose `controls` names `worker`, or nullptr.
  const NodeSpec* CoreOf(std::string_view worker) const;
};

/// True for the variables the supervisor sets for its nodes (QUIVER_CHANNELS, QUIVER_NODE,
/// QUIVER_SUPERVISOR_SOCKET, QUIVER_SUBSCRIBERS, QUIVER_CONTROL, QUIVER_CONTROL_WORKERS): a
/// pipeline file may not set them, and a node never inherits them from the supervisor's own
/// environment.
bool IsSupervisorVariable(std::string_view name);

/// Reads and validates a pipeline file. kNotFound if it cannot be read; kInvalidArgument
/// listing every problem found, one per line, each as "FILE:LINE: what is wrong".
Result<Pipeline> LoadPipeline(const std::filesystem::path& path);

/// Same, from text. `source_name` names the text in messages; relative schema paths are
/// resolved against `base_dir`.
Result<Pipeline> LoadPipelineFromString(std::string_view text, std::string_view source_name,
                                        const std::filesystem::path& base_dir = ".");

}  // namespace quiver::supervisor
