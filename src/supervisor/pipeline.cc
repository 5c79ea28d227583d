#include "supervisor/pipeline.h"

#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "common/byte_size.h"
#include "quiver/control.h"
#include "quiver/schema_file.h"
#include "supervisor/supervisor.h"

namespace quiver::supervisor {
namespace {

// More than this many problems in one file is noise: the first ones are what to fix.
constexpr size_t kMaxReportedErrors = 20;

int LineOf(const toml::node& node) { return static_cast<int>(node.source().begin.line); }

std::string_view TypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    default:
      return "a date/time";
  }
}

// Collects every problem of one file with its line, so a user fixes them all in one go.
class Checker {
 public:
  Checker(std::string_view source, std::filesystem::path base_dir)
      : source_(source), base_dir_(std::move(base_dir)) {}

  void Error(int line, const std::string& what) {
    errors_.push_back(source_ + ":" + std::to_string(line) + ": " + what);
  }
  bool ok() const { return errors_.empty(); }
  Status ToStatus() const {
    std::string message;
    for (size_t i = 0; i < errors_.size() && i < kMaxReportedErrors; ++i) {
      message += (i == 0 ? "" : "\n") + errors_[i];
    }
    if (errors_.size() > kMaxReportedErrors) {
      message += "\n... and " + std::to_string(errors_.size() - kMaxReportedErrors) + " more";
    }
    return Status::InvalidArgument(message);
  }

  // Each Get* checks the value's type; on a mismatch it records "<what>: expected ..., got ...".
  bool GetString(const toml::node& value, const std::string& what, std::string* out) {
    if (const auto* s = value.as_string()) {
      *out = s->get();
      return true;
    }
    Error(LineOf(value), what + ": expected a string, got " + std::string(TypeName(value)));
    return false;
  }

  bool GetStringArray(const toml::node& value, const std::string& what,
                      std::vector<std::string>* out) {
    const auto* array = value.as_array();
    if (array == nullptr) {
      Error(LineOf(value),
            what + ": expected an array of strings, got " + std::string(TypeName(value)));
      return false;
    }
    bool good = true;
    for (const toml::node& item : *array) {
      std::string s;
      if (GetString(item, what + " element", &s)) {
        out->push_back(std::move(s));
      } else {
        good = false;
      }
    }
    return good;
  }

  bool GetCount(const toml::node& value, const std::string& what, int64_t lo, int64_t hi,
                uint32_t* out) {
    const auto* i = value.as_integer();
    if (i == nullptr) {
      Error(LineOf(value), what + ": expected an integer, got " + std::string(TypeName(value)));
      return false;
    }
    if (i->get() < lo || i->get() > hi) {
      Error(LineOf(value), what + ": must be " + std::to_string(lo) + " to " + std::to_string(hi) +
                               ", got " + std::to_string(i->get()));
      return false;
    }
    *out = static_cast<uint32_t>(i->get());
    return true;
  }

  void CheckName(const toml::node& value, const std::string& what, const std::string& name) {
    // Names travel in QUIVER_CHANNELS ("name=fd,...") and in output prefixes, so they keep to
    // the channel layer's character set, which has no ',' or '='.
    if (Status st = Channel::ValidateName(name); !st.ok()) {
      std::string message = st.message();
      if (message.rfind("channel name", 0) == 0) message.erase(0, std::string("channel ").size());
      Error(LineOf(value), what + ": " + message);
    }
  }

  void ParseChannel(const toml::table& table, Pipeline* pipeline) {
    ChannelSpec spec;
    spec.line = LineOf(table);
    if (const auto* n = table.get("name"); n != nullptr && n->is_string()) {
      spec.name = n->as_string()->get();
    }
    const std::string where = spec.name.empty() ? "[[channel]]" : "channel '" + spec.name + "'";
    for (auto&& [key, value] : table) {
      const std::string k(key.str());
      const std::string what = where + ": " + k;
      if (k == "name") {
        if (GetString(value, what, &spec.name)) CheckName(value, what, spec.name);
      } else if (k == "capacity") {
        ParseCapacity(value, what, &spec.capacity);
      } else if (k == "overflow") {
        std::string policy;
        if (!GetString(value, what, &policy)) continue;
        Result<OverflowPolicy> parsed = ParseOverflowPolicy(policy);
        if (parsed.ok()) {
          spec.overflow = *parsed;
        } else {
          Error(LineOf(value), what + ": " + parsed.status().message());
        }
      } else if (k == "max_subscribers") {
        GetCount(value, what, 1, kMaxSubscribers, &spec.max_subscribers);
      } else if (k == "max_samples") {
        GetCount(value, what, 2, kMaxSamples, &spec.max_samples);
      } else if (k == "stall_timeout") {
        // Seconds, an integer or a float: the channel's slow-consumer policy.
        const std::optional<double> seconds = value.value<double>();
        if (!seconds || !value.is_number()) {
          Error(LineOf(value),
                what + ": expected seconds (a number), got " + std::string(TypeName(value)));
        } else if (Result<std::chrono::milliseconds> timeout = StallTimeoutFromSeconds(*seconds);
                   !timeout.ok()) {
          Error(LineOf(value), where + ": " + timeout.status().message());
        } else {
          spec.stall_timeout = *timeout;
        }
      } else if (k == "schema") {
        std::string path;
        if (!GetString(value, what, &path)) continue;
        if (path.empty()) {
          Error(LineOf(value), what + ": must not be empty");
          continue;
        }
        spec.schema_path = std::filesystem::path(path).is_absolute() ? std::filesystem::path(path)
                                                                     : base_dir_ / path;
        auto schema = LoadSchemaFile(spec.schema_path);
        if (schema.ok()) {
          spec.schema = std::move(schema).value();
        } else {
          Error(LineOf(value), what + ": " + schema.status().message());
        }
      } else if (k == "evolution") {
        std::string name;
        if (!GetString(value, what, &name)) continue;
        if (Result<SchemaEvolution> parsed = ParseSchemaEvolution(name); parsed.ok()) {
          spec.evolution = *parsed;
        } else {
          Error(LineOf(value), what + ": " + parsed.status().message());
        }
      } else if (k == "history") {
        GetCount(value, what, 1, kMaxSamples, &spec.history);
      } else if (k == "history_seconds") {
        const std::optional<double> seconds = value.value<double>();
        if (!seconds || !value.is_number() || *seconds <= 0 || *seconds > 86400) {
          Error(LineOf(value), what + ": expected seconds, more than 0 and at most 86400");
        } else {
          spec.history_age =
              std::chrono::milliseconds(static_cast<int64_t>(std::ceil(*seconds * 1000)));
        }
      } else if (k == "external") {
        if (const std::optional<bool> external = value.value<bool>();
            external && value.is_boolean()) {
          spec.external = *external;
        } else {
          Error(LineOf(value),
                what + ": expected true or false, got " + std::string(TypeName(value)));
        }
      } else {
        Error(LineOf(value),
              where + ": unknown key '" + k +
                  "' (expected name, capacity, overflow, max_subscribers, "
                  "max_samples, stall_timeout, schema, evolution, external, history, "
                  "history_seconds)");
      }
    }
    if (!table.contains("name")) Error(spec.line, where + ": missing key 'name'");
    pipeline->channels.push_back(std::move(spec));
  }

  void ParseCapacity(const toml::node& value, const std::string& what, size_t* out) {
    uint64_t bytes = 0;
    if (const auto* i = value.as_integer()) {
      if (i->get() <= 0) {
        Error(LineOf(value), what + ": must be positive, got " + std::to_string(i->get()));
        return;
      }
      bytes = static_cast<uint64_t>(i->get());
    } else if (const auto* s = value.as_string()) {
      auto parsed = ParseByteSize(s->get());
      if (!parsed.ok()) {
        Error(LineOf(value), what + ": " + parsed.status().message());
        return;
      }
      bytes = *parsed;
    } else {
      Error(LineOf(value), what +
                               ": expected a size such as \"256MiB\" or a number of bytes, got " +
                               std::string(TypeName(value)));
      return;
    }
    if (bytes == 0 || bytes > kMaxCapacity) {
      Error(LineOf(value), what + ": must be 1 byte to 1TiB, got " + std::to_string(bytes));
      return;
    }
    *out = bytes;
  }

  void ParseNode(const toml::table& table, Pipeline* pipeline) {
    NodeSpec spec;
    spec.line = LineOf(table);
    if (const auto* n = table.get("name"); n != nullptr && n->is_string()) {
      spec.name = n->as_string()->get();
    }
    const std::string where = spec.name.empty() ? "[[node]]" : "node '" + spec.name + "'";
    for (auto&& [key, value] : table) {
      const std::string k(key.str());
      const std::string what = where + ": " + k;
      if (k == "name") {
        if (GetString(value, what, &spec.name)) CheckName(value, what, spec.name);
      } else if (k == "command") {
        if (GetString(value, what, &spec.command) && spec.command.empty()) {
          Error(LineOf(value), what + ": must not be empty");
        }
      } else if (k == "args") {
        GetStringArray(value, what, &spec.args);
      } else if (k == "env") {
        ParseEnv(value, what, &spec.env);
      } else if (k == "cwd") {
        std::string cwd;
        if (GetString(value, what, &cwd)) {
          if (cwd.empty()) Error(LineOf(value), what + ": must not be empty");
          spec.cwd = cwd;
        }
      } else if (k == "publishes") {
        spec.publishes_line = LineOf(value);
        GetStringArray(value, what, &spec.publishes);
      } else if (k == "subscribes") {
        spec.subscribes_line = LineOf(value);
        GetStringArray(value, what, &spec.subscribes);
      } else if (k == "controls") {
        spec.controls_line = LineOf(value);
        GetStringArray(value, what, &spec.controls);
      } else if (k == "control") {
        spec.control_line = LineOf(value);
        std::string mode;
        if (!GetString(value, what, &mode)) continue;
        if (mode == "pipes") {
          spec.control = ControlMode::kPipes;
        } else if (mode == "stdio") {
          spec.control = ControlMode::kStdio;
        } else {
          Error(LineOf(value), what + ": must be \"pipes\" or \"stdio\", got \"" + mode + "\"");
        }
      } else {
        Error(LineOf(value), where + ": unknown key '" + k +
                                 "' (expected name, command, args, env, cwd, publishes, "
                                 "subscribes, controls, control)");
      }
    }
    if (!table.contains("name")) Error(spec.line, where + ": missing key 'name'");
    if (!table.contains("command")) Error(spec.line, where + ": missing key 'command'");
    pipeline->nodes.push_back(std::move(spec));
  }

  void ParseEnv(const toml::node& value, const std::string& what,
                std::vector<std::pair<std::string, std::string>>* out) {
    const auto* table = value.as_table();
    if (table == nullptr) {
      Error(LineOf(value), what + ": expected a table, got " + std::string(TypeName(value)));
      return;
    }
    for (auto&& [key, item] : *table) {
      const std::string k(key.str());
      if (k.empty() || k.find('=') != std::string::npos) {
        Error(LineOf(item), what + ": '" + k + "' is not a valid variable name");
        continue;
      }
      if (IsSupervisorVariable(k)) {
        Error(LineOf(item), what + ": " + k + " is set by the supervisor");
        continue;
      }
      std::string s;
      if (GetString(item, what + "." + k, &s)) out->emplace_back(k, std::move(s));
    }
  }

  // Checks what no single table can: names, references, one publisher per channel.
  void CrossCheck(const Pipeline& pipeline) {
    std::map<std::string, const ChannelSpec*> channels;
    for (const ChannelSpec& c : pipeline.channels) {
      if (c.name.empty()) continue;
      auto [it, fresh] = channels.emplace(c.name, &c);
      if (!fresh) {
        Error(c.line, "channel '" + c.name + "' is defined twice (first at line " +
                          std::to_string(it->second->line) + ")");
      }
    }
    std::map<std::string, const NodeSpec*> nodes;
    std::map<std::string, const NodeSpec*> publisher_of;
    std::map<std::string, uint32_t> subscriber_count;
    for (const NodeSpec& n : pipeline.nodes) {
      const std::string where = n.name.empty() ? "[[node]]" : "node '" + n.name + "'";
      if (!n.name.empty()) {
        auto [it, fresh] = nodes.emplace(n.name, &n);
        if (!fresh) {
          Error(n.line, "node '" + n.name + "' is defined twice (first at line " +
                            std::to_string(it->second->line) + ")");
        }
      }
      std::set<std::string> mine;
      auto check_refs = [&](const std::vector<std::string>& refs, std::string_view key, int line) {
        for (const std::string& ref : refs) {
          if (!channels.contains(ref)) {
            Error(line, where + ": " + std::string(key) + ": unknown channel '" + ref + "'");
          } else if (!mine.insert(ref).second) {
            Error(line, where + ": channel '" + ref + "' is listed twice");
          }
        }
      };
      check_refs(n.publishes, "publishes", n.publishes_line);
      check_refs(n.subscribes, "subscribes", n.subscribes_line);
      for (const std::string& ref : n.publishes) {
        if (!channels.contains(ref)) continue;
        auto [it, fresh] = publisher_of.emplace(ref, &n);
        if (!fresh && it->second != &n) {
          Error(n.publishes_line, where + ": channel '" + ref +
                                      "' already has a publisher, node '" + it->second->name +
                                      "' (line " + std::to_string(it->second->publishes_line) +
                                      "); a channel has exactly one");
        }
      }
      for (const std::string& ref : n.subscribes) ++subscriber_count[ref];
    }
    CheckControls(pipeline, nodes);
    for (const ChannelSpec& c : pipeline.channels) {
      if (c.name.empty()) continue;
      const auto publisher = publisher_of.find(c.name);
      if (publisher == publisher_of.end() && !c.external) {
        Error(c.line, "channel '" + c.name +
                          "': no node publishes it (one fed from outside the pipeline, by a "
                          "Flight DoPut through quiver serve say, is marked external = true)");
      } else if (publisher != publisher_of.end() && c.external) {
        Error(c.line, "channel '" + c.name + "': external, yet node '" + publisher->second->name +
                          "' publishes it (line " +
                          std::to_string(publisher->second->publishes_line) +
                          "); an external channel is published from outside the pipeline");
      }
      if (subscriber_count[c.name] > c.max_subscribers) {
        Error(c.line, "channel '" + c.name + "': " + std::to_string(subscriber_count[c.name]) +
                          " nodes subscribe but max_subscribers is " +
                          std::to_string(c.max_subscribers));
      }
    }
  }

  // Control connections: every name in `controls` is another node, a worker has at most one
  // core, and commanding runs one way (no cycle), so each connection has one commanding end.
  void CheckControls(const Pipeline& pipeline,
                     const std::map<std::string, const NodeSpec*>& nodes) {
    std::map<std::string, const NodeSpec*> core_of;
    for (const NodeSpec& n : pipeline.nodes) {
      const std::string where = "node '" + n.name + "'";
      std::set<std::string> listed;
      for (const std::string& ref : n.controls) {
        if (ref == n.name) {
          Error(n.controls_line, where + ": controls: a node cannot control itself");
        } else if (!nodes.contains(ref)) {
          Error(n.controls_line, where + ": controls: unknown node '" + ref + "'");
        } else if (!listed.insert(ref).second) {
          Error(n.controls_line, where + ": node '" + ref + "' is listed twice in controls");
        } else if (auto [it, fresh] = core_of.emplace(ref, &n); !fresh) {
          Error(n.controls_line, where + ": controls: node '" + ref +
                                     "' is already controlled by node '" + it->second->name +
                                     "' (line " + std::to_string(it->second->controls_line) +
                                     "); a node has at most one core");
        }
      }
    }
    for (const NodeSpec& n : pipeline.nodes) {
      if (n.control == ControlMode::kStdio && !core_of.contains(n.name)) {
        Error(n.control_line, "node '" + n.name +
                                  "': control = \"stdio\" but no node controls it (name it in "
                                  "another node's controls)");
      }
    }
    // Each node has at most one core, so following cores upwards either ends or comes back.
    // A cycle is reported once, at the member that comes first in the file.
    for (size_t i = 0; i < pipeline.nodes.size(); ++i) {
      const NodeSpec& n = pipeline.nodes[i];
      std::vector<const NodeSpec*> chain = {&n};
      while (chain.size() <= pipeline.nodes.size()) {
        auto up = core_of.find(chain.back()->name);
        if (up == core_of.end() || up->second == &n) break;
        chain.push_back(up->second);
      }
      auto up = core_of.find(chain.back()->name);
      if (up == core_of.end() || up->second != &n) continue;
      const bool first_in_file = std::all_of(chain.begin(), chain.end(), [&](const NodeSpec* m) {
        return m - pipeline.nodes.data() >= static_cast<ptrdiff_t>(i);
      });
      if (!first_in_file) continue;
      // chain runs from n up through its cores; written downwards, each controls the next.
      std::string cycle = n.name;
      for (auto it = chain.rbegin(); it != chain.rend(); ++it) cycle += " -> " + (*it)->name;
      Error(n.controls_line, "node '" + n.name + "': controls: control cycle " + cycle +
                                 " (each controls the next); commanding must run one way");
    }
  }

  void ParseDocument(const toml::table& doc, Pipeline* pipeline) {
    for (auto&& [key, value] : doc) {
      const std::string k(key.str());
      if (k != "channel" && k != "node") {
        Error(LineOf(value), "unknown top-level key '" + k + "' (expected [[channel]], [[node]])");
        continue;
      }
      const auto* array = value.as_array();
      if (array == nullptr || !array->is_array_of_tables()) {
        Error(LineOf(value), "'" + k + "' must be written as [[" + k + "]] tables");
        continue;
      }
      for (const toml::node& item : *array) {
        if (k == "channel") {
          ParseChannel(*item.as_table(), pipeline);
        } else {
          ParseNode(*item.as_table(), pipeline);
        }
      }
    }
    if (!doc.contains("node")) Error(1, "the pipeline has no [[node]]");
    if (ok()) CrossCheck(*pipeline);
  }

 private:
  std::string source_;
  std::filesystem::path base_dir_;
  std::vector<std::string> errors_;
};

}  // namespace

const ChannelSpec* Pipeline::FindChannel(std::string_view name) const {
  for (const ChannelSpec& c : channels) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

const NodeSpec* Pipeline::FindNode(std::string_view name) const {
  for (const NodeSpec& n : nodes) {
    if (n.name == name) return &n;
  }
  return nullptr;
}

const NodeSpec* Pipeline::CoreOf(std::string_view worker) const {
  for (const NodeSpec& n : nodes) {
    if (std::find(n.controls.begin(), n.controls.end(), worker) != n.controls.end()) return &n;
  }
  return nullptr;
}

bool IsSupervisorVariable(std::string_view name) {
  for (std::string_view reserved : {kChannelsEnv, kNodeEnv, kSocketEnv, kPipelineSubscribersEnv,
                                    control::kControlEnv, control::kControlWorkersEnv}) {
    if (name == reserved) return true;
  }
  return false;
}

Result<Pipeline> LoadPipelineFromString(std::string_view text, std::string_view source_name,
                                        const std::filesystem::path& base_dir) {
  Pipeline pipeline;
  pipeline.source = std::string(source_name);
  Checker checker(source_name, base_dir);
  toml::table doc;
  try {
    doc = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    checker.Error(static_cast<int>(e.source().begin.line), std::string(e.description()));
    return checker.ToStatus();
  }
  checker.ParseDocument(doc, &pipeline);
  if (!checker.ok()) return checker.ToStatus();
  return pipeline;
}

Result<Pipeline> LoadPipeline(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot read pipeline file " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return LoadPipelineFromString(
      text.str(), path.string(),
      path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path());
}

}  // namespace quiver::supervisor
