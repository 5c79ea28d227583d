#include "supervisor/pipeline.h"

#include <arrow/type.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace quiver::supervisor {
namespace {

constexpr std::string_view kGood = R"(# two nodes, one channel
[[channel]]
name = "frames"
capacity = "256MiB"
overflow = "drop-oldest"
max_subscribers = 4
stall_timeout = 1.5

[[node]]
name = "camera"
command = "python3"
args = ["camera.py", "--fps", "30"]
env = { FOO = "bar" }
cwd = "/tmp"
publishes = ["frames"]

[[node]]
name = "viewer"
command = "./viewer"
subscribes = ["frames"]
)";

TEST(PipelineTest, ParsesEveryKey) {
  auto pipeline = LoadPipelineFromString(kGood, "good.toml");
  ASSERT_TRUE(pipeline.ok()) << pipeline.status().ToString();
  ASSERT_EQ(pipeline->channels.size(), 1u);
  const ChannelSpec& c = pipeline->channels[0];
  EXPECT_EQ(c.name, "frames");
  EXPECT_EQ(c.capacity, size_t{256} << 20);
  EXPECT_EQ(c.overflow, OverflowPolicy::kDropOldest);
  EXPECT_EQ(c.max_subscribers, 4u);
  EXPECT_EQ(c.stall_timeout, std::chrono::milliseconds(1500));
  EXPECT_EQ(c.line, 2);
  ASSERT_EQ(pipeline->nodes.size(), 2u);
  const NodeSpec& n = pipeline->nodes[0];
  EXPECT_EQ(n.name, "camera");
  EXPECT_EQ(n.command, "python3");
  EXPECT_EQ(n.args, (std::vector<std::string>{"camera.py", "--fps", "30"}));
  ASSERT_EQ(n.env.size(), 1u);
  EXPECT_EQ(n.env[0], (std::pair<std::string, std::string>{"FOO", "bar"}));
  EXPECT_EQ(n.cwd, "/tmp");
  EXPECT_EQ(n.publishes, std::vector<std::string>{"frames"});
  EXPECT_EQ(pipeline->nodes[1].subscribes, std::vector<std::string>{"frames"});
  EXPECT_EQ(pipeline->FindChannel("frames"), &pipeline->channels[0]);
  EXPECT_EQ(pipeline->FindChannel("nope"), nullptr);
}

// A channel fed from outside (a Flight DoPut through quiver serve) has no publisher node.
TEST(PipelineTest, AnExternalChannelNeedsNoPublisherNode) {
  auto pipeline = LoadPipelineFromString(R"([[channel]]
name = "orders"
external = true

[[node]]
name = "reader"
command = "true"
subscribes = ["orders"]
)",
                                         "external.toml");
  ASSERT_TRUE(pipeline.ok()) << pipeline.status().ToString();
  EXPECT_TRUE(pipeline->channels[0].external);
}

TEST(PipelineTest, AChannelMayKeepAHistory) {
  auto pipeline = LoadPipelineFromString(R"([[channel]]
name = "prices"
history = 10
history_seconds = 2.5

[[node]]
name = "feed"
command = "true"
publishes = ["prices"]
)",
                                         "history.toml");
  ASSERT_TRUE(pipeline.ok()) << pipeline.status().ToString();
  EXPECT_EQ(pipeline->channels[0].history, 10u);
  EXPECT_EQ(pipeline->channels[0].history_age, std::chrono::milliseconds(2500));
}

TEST(PipelineTest, AChannelsSchemaMayBeLetGrow) {
  auto pipeline = LoadPipelineFromString(R"([[channel]]
name = "grows"
evolution = "add-nullable"

[[channel]]
name = "fixed"

[[node]]
name = "feed"
command = "true"
publishes = ["grows", "fixed"]
)",
                                         "evolution.toml");
  ASSERT_TRUE(pipeline.ok()) << pipeline.status().ToString();
  EXPECT_EQ(pipeline->channels[0].evolution, SchemaEvolution::kAddNullable);
  EXPECT_EQ(pipeline->channels[1].evolution, SchemaEvolution::kStrict);
}

TEST(PipelineTest, DefaultsAreSafe) {
  auto pipeline = LoadPipelineFromString(R"([[node]]
name = "only"
command = "true"
)",
                                         "min.toml");
  ASSERT_TRUE(pipeline.ok()) << pipeline.status().ToString();
  EXPECT_TRUE(pipeline->channels.empty());
  EXPECT_TRUE(pipeline->nodes[0].args.empty());
  EXPECT_TRUE(pipeline->nodes[0].cwd.empty());
}

struct Malformed {
  const char* what;
  const char* text;
  const char* expected;  // a substring of the error, which starts with "bad.toml:LINE:"
};

constexpr char kNodeA[] = "[[node]]\nname = \"a\"\ncommand = \"true\"\n";

class MalformedPipelineTest : public ::testing::TestWithParam<Malformed> {};

TEST_P(MalformedPipelineTest, IsRefusedWithFileLineAndKey) {
  const Malformed& m = GetParam();
  auto pipeline = LoadPipelineFromString(m.text, "bad.toml");
  ASSERT_FALSE(pipeline.ok()) << m.what;
  EXPECT_EQ(pipeline.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(pipeline.status().message().find(m.expected), std::string::npos)
      << m.what << ": got\n"
      << pipeline.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Table, MalformedPipelineTest,
    ::testing::Values(
        Malformed{"toml syntax", "[[node]]\nname = \"a\ncommand = \"x\"\n", "bad.toml:2:"},
        Malformed{"no nodes", "[[channel]]\nname = \"c\"\n", "bad.toml:1: the pipeline has no"},
        Malformed{"unknown top-level key",
                  "pipeline_name = \"x\"\n[[node]]\nname=\"a\"\ncommand=\"x\"\n",
                  "bad.toml:1: unknown top-level key 'pipeline_name'"},
        Malformed{"node as a table", "[node]\nname = \"a\"\ncommand = \"x\"\n",
                  "'node' must be written as [[node]]"},
        Malformed{"unknown node key", "[[node]]\nname = \"a\"\ncommand = \"true\"\nargv = []\n",
                  "bad.toml:4: node 'a': unknown key 'argv'"},
        Malformed{"unknown channel key",
                  "[[channel]]\nname = \"c\"\nsize = 5\n[[node]]\nname=\"a\"\ncommand=\"x\"\n"
                  "publishes=[\"c\"]\n",
                  "bad.toml:3: channel 'c': unknown key 'size'"},
        Malformed{"command of the wrong type", "[[node]]\nname = \"a\"\ncommand = 5\n",
                  "bad.toml:3: node 'a': command: expected a string, got an integer"},
        Malformed{"empty command", "[[node]]\nname = \"a\"\ncommand = \"\"\n",
                  "bad.toml:3: node 'a': command: must not be empty"},
        Malformed{"missing command", "[[node]]\nname = \"a\"\n",
                  "bad.toml:1: node 'a': missing key 'command'"},
        Malformed{"missing name", "[[node]]\ncommand = \"true\"\n",
                  "bad.toml:1: [[node]]: missing key 'name'"},
        Malformed{"args not strings", "[[node]]\nname = \"a\"\ncommand = \"x\"\nargs = [1]\n",
                  "bad.toml:4: node 'a': args element: expected a string"},
        Malformed{"env not a table", "[[node]]\nname = \"a\"\ncommand = \"x\"\nenv = \"A=1\"\n",
                  "bad.toml:4: node 'a': env: expected a table"},
        Malformed{"env reserved",
                  "[[node]]\nname = \"a\"\ncommand = \"x\"\n"
                  "env = { QUIVER_CHANNELS = \"c=3\" }\n",
                  "bad.toml:4: node 'a': env: QUIVER_CHANNELS is set by the supervisor"},
        Malformed{"bad node name", "[[node]]\nname = \"a,b\"\ncommand = \"x\"\n",
                  "bad.toml:2: node 'a,b': name: name 'a,b' has a character outside"},
        Malformed{
            "duplicate node",
            "[[node]]\nname = \"a\"\ncommand = \"x\"\n[[node]]\nname = \"a\"\ncommand = \"y\"\n",
            "bad.toml:4: node 'a' is defined twice (first at line 1)"},
        Malformed{"duplicate channel",
                  "[[channel]]\nname = \"c\"\n[[channel]]\nname = \"c\"\n[[node]]\nname=\"a\"\n"
                  "command=\"x\"\npublishes=[\"c\"]\n",
                  "bad.toml:3: channel 'c' is defined twice (first at line 1)"},
        Malformed{"unknown channel",
                  "[[node]]\nname = \"a\"\ncommand = \"x\"\nsubscribes = [\"z\"]\n",
                  "bad.toml:4: node 'a': subscribes: unknown channel 'z'"},
        Malformed{
            "two publishers",
            "[[channel]]\nname = \"c\"\n[[node]]\nname = \"a\"\ncommand = \"x\"\n"
            "publishes = [\"c\"]\n[[node]]\nname = \"b\"\ncommand = \"x\"\npublishes = [\"c\"]\n",
            "bad.toml:10: node 'b': channel 'c' already has a publisher, node 'a' (line 6)"},
        Malformed{"nobody publishes",
                  "[[channel]]\nname = \"c\"\n[[node]]\nname = \"a\"\ncommand = \"x\"\n"
                  "subscribes = [\"c\"]\n",
                  "bad.toml:1: channel 'c': no node publishes it"},
        Malformed{"external but published",
                  "[[channel]]\nname = \"c\"\nexternal = true\n[[node]]\nname = \"a\"\n"
                  "command = \"x\"\npublishes = [\"c\"]\n",
                  "bad.toml:1: channel 'c': external, yet node 'a' publishes it (line 7)"},
        Malformed{"history zero", "[[channel]]\nname = \"c\"\nhistory = 0\n",
                  "bad.toml:3: channel 'c': history: must be 1 to "},
        Malformed{"evolution unknown", "[[channel]]\nname = \"c\"\nevolution = \"loose\"\n",
                  "bad.toml:3: channel 'c': evolution: schema evolution must be 'strict' or "
                  "'add-nullable', not 'loose'"},
        Malformed{"history seconds negative", "[[channel]]\nname = \"c\"\nhistory_seconds = -1\n",
                  "bad.toml:3: channel 'c': history_seconds: expected seconds"},
        Malformed{"external not a boolean", "[[channel]]\nname = \"c\"\nexternal = \"yes\"\n",
                  "bad.toml:3: channel 'c': external: expected true or false, got a string"},
        Malformed{"publishes and subscribes the same",
                  "[[channel]]\nname = \"c\"\n[[node]]\nname = \"a\"\ncommand = \"x\"\n"
                  "publishes = [\"c\"]\nsubscribes = [\"c\"]\n",
                  "bad.toml:7: node 'a': channel 'c' is listed twice"},
        Malformed{"bad size unit", "[[channel]]\nname = \"c\"\ncapacity = \"12 parsecs\"\n",
                  "bad.toml:3: channel 'c': capacity: '12 parsecs' has an unknown unit"},
        Malformed{"zero size", "[[channel]]\nname = \"c\"\ncapacity = 0\n",
                  "bad.toml:3: channel 'c': capacity: must be positive"},
        Malformed{"huge size", "[[channel]]\nname = \"c\"\ncapacity = \"2TiB\"\n",
                  "bad.toml:3: channel 'c': capacity: must be 1 byte to 1TiB"},
        Malformed{"capacity float", "[[channel]]\nname = \"c\"\ncapacity = 1.5\n",
                  "bad.toml:3: channel 'c': capacity: expected a size"},
        Malformed{"bad overflow", "[[channel]]\nname = \"c\"\noverflow = \"drop-newest\"\n",
                  "bad.toml:3: channel 'c': overflow: overflow policy must be \"block\" or "
                  "\"drop-oldest\", got \"drop-newest\""},
        Malformed{"stall timeout not a number",
                  "[[channel]]\nname = \"c\"\nstall_timeout = \"2s\"\n",
                  "bad.toml:3: channel 'c': stall_timeout: expected seconds (a number)"},
        Malformed{"stall timeout zero", "[[channel]]\nname = \"c\"\nstall_timeout = 0\n",
                  "bad.toml:3: channel 'c': stall_timeout must be more than 0 and at most 86400 s"},
        Malformed{"too many subscribers allowed",
                  "[[channel]]\nname = \"c\"\nmax_subscribers = 65\n",
                  "bad.toml:3: channel 'c': max_subscribers: must be 1 to 64, got 65"},
        Malformed{"more subscribers than slots",
                  "[[channel]]\nname = \"c\"\nmax_subscribers = 1\n[[node]]\nname = \"p\"\n"
                  "command = \"x\"\npublishes = [\"c\"]\n[[node]]\nname = \"a\"\ncommand = \"x\"\n"
                  "subscribes = [\"c\"]\n[[node]]\nname = \"b\"\ncommand = \"x\"\n"
                  "subscribes = [\"c\"]\n",
                  "bad.toml:1: channel 'c': 2 nodes subscribe but max_subscribers is 1"},
        Malformed{"missing schema file",
                  "[[channel]]\nname = \"c\"\nschema = \"/nonexistent/schema.json\"\n",
                  "bad.toml:3: channel 'c': schema: cannot read schema file"},
        Malformed{"env sets the control fd",
                  "[[node]]\nname = \"a\"\ncommand = \"x\"\nenv = { QUIVER_CONTROL = \"3\" }\n",
                  "bad.toml:4: node 'a': env: QUIVER_CONTROL is set by the supervisor"},
        Malformed{"env sets the workers",
                  "[[node]]\nname = \"a\"\ncommand = \"x\"\n"
                  "env = { QUIVER_CONTROL_WORKERS = \"b=3\" }\n",
                  "bad.toml:4: node 'a': env: QUIVER_CONTROL_WORKERS is set by the supervisor"},
        Malformed{"controls not an array",
                  "[[node]]\nname = \"a\"\ncommand = \"x\"\ncontrols = \"b\"\n",
                  "bad.toml:4: node 'a': controls: expected an array of strings, got a string"},
        Malformed{"controls element not a string",
                  "[[node]]\nname = \"a\"\ncommand = \"x\"\ncontrols = [1]\n",
                  "bad.toml:4: node 'a': controls element: expected a string, got an integer"},
        Malformed{"controls an unknown node",
                  "[[node]]\nname = \"a\"\ncommand = \"x\"\ncontrols = [\"z\"]\n",
                  "bad.toml:4: node 'a': controls: unknown node 'z'"},
        Malformed{"controls itself",
                  "[[node]]\nname = \"a\"\ncommand = \"x\"\ncontrols = [\"a\"]\n",
                  "bad.toml:4: node 'a': controls: a node cannot control itself"},
        Malformed{"controls a node twice",
                  "[[node]]\nname = \"a\"\ncommand = \"x\"\ncontrols = [\"b\", \"b\"]\n"
                  "[[node]]\nname = \"b\"\ncommand = \"x\"\n",
                  "bad.toml:4: node 'a': node 'b' is listed twice in controls"},
        Malformed{"two cores for one worker",
                  "[[node]]\nname = \"a\"\ncommand = \"x\"\ncontrols = [\"w\"]\n"
                  "[[node]]\nname = \"b\"\ncommand = \"x\"\ncontrols = [\"w\"]\n"
                  "[[node]]\nname = \"w\"\ncommand = \"x\"\n",
                  "bad.toml:8: node 'b': controls: node 'w' is already controlled by node 'a' "
                  "(line 4); a node has at most one core"},
        Malformed{"control cycle",
                  "[[node]]\nname = \"a\"\ncommand = \"x\"\ncontrols = [\"b\"]\n"
                  "[[node]]\nname = \"b\"\ncommand = \"x\"\ncontrols = [\"a\"]\n",
                  "bad.toml:4: node 'a': controls: control cycle a -> b -> a (each controls the "
                  "next)"},
        Malformed{"control of the wrong type",
                  "[[node]]\nname = \"a\"\ncommand = \"x\"\ncontrol = true\n",
                  "bad.toml:4: node 'a': control: expected a string, got a boolean"},
        Malformed{"unknown control mode",
                  "[[node]]\nname = \"a\"\ncommand = \"x\"\ncontrols = [\"b\"]\n"
                  "[[node]]\nname = \"b\"\ncommand = \"x\"\ncontrol = \"pipe\"\n",
                  "bad.toml:8: node 'b': control: must be \"pipes\" or \"stdio\", got \"pipe\""},
        Malformed{"stdio on a node nobody controls",
                  "[[node]]\nname = \"a\"\ncommand = \"x\"\ncontrol = \"stdio\"\n",
                  "bad.toml:4: node 'a': control = \"stdio\" but no node controls it"}));

TEST(PipelineTest, ParsesControls) {
  auto pipeline = LoadPipelineFromString(R"([[node]]
name = "core"
command = "core"
controls = ["legacy", "extractor"]

[[node]]
name = "extractor"
command = "extractor"
control = "pipes"
controls = ["helper"]

[[node]]
name = "legacy"
command = "legacy"
control = "stdio"

[[node]]
name = "helper"
command = "helper"
)",
                                         "controls.toml");
  ASSERT_TRUE(pipeline.ok()) << pipeline.status().ToString();
  const NodeSpec* core = pipeline->FindNode("core");
  ASSERT_NE(core, nullptr);
  EXPECT_EQ(core->controls, (std::vector<std::string>{"legacy", "extractor"}));
  EXPECT_EQ(core->controls_line, 4);
  EXPECT_EQ(core->control, ControlMode::kPipes);  // the default
  EXPECT_EQ(core->control_line, 0);
  const NodeSpec* legacy = pipeline->FindNode("legacy");
  ASSERT_NE(legacy, nullptr);
  EXPECT_EQ(legacy->control, ControlMode::kStdio);
  EXPECT_EQ(legacy->control_line, 15);
  // A worker may command workers of its own.
  EXPECT_EQ(pipeline->CoreOf("legacy"), core);
  EXPECT_EQ(pipeline->CoreOf("extractor"), core);
  EXPECT_EQ(pipeline->CoreOf("helper"), pipeline->FindNode("extractor"));
  EXPECT_EQ(pipeline->CoreOf("core"), nullptr);
  EXPECT_EQ(pipeline->FindNode("nope"), nullptr);
}

TEST(PipelineTest, EveryControlProblemIsReportedAndACycleOnce) {
  auto pipeline = LoadPipelineFromString(
      "[[node]]\nname = \"a\"\ncommand = \"x\"\ncontrols = [\"b\", \"ghost\"]\n"
      "[[node]]\nname = \"b\"\ncommand = \"x\"\ncontrols = [\"c\"]\n"
      "[[node]]\nname = \"c\"\ncommand = \"x\"\ncontrols = [\"a\", \"c\"]\n"
      "[[node]]\nname = \"d\"\ncommand = \"x\"\ncontrol = \"stdio\"\n",
      "bad.toml");
  ASSERT_FALSE(pipeline.ok());
  const std::string& m = pipeline.status().message();
  EXPECT_NE(m.find("bad.toml:4: node 'a': controls: unknown node 'ghost'"), std::string::npos) << m;
  EXPECT_NE(m.find("bad.toml:12: node 'c': controls: a node cannot control itself"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("bad.toml:16: node 'd': control = \"stdio\" but no node controls it"),
            std::string::npos)
      << m;
  const std::string cycle = "bad.toml:4: node 'a': controls: control cycle a -> b -> c -> a";
  ASSERT_NE(m.find(cycle), std::string::npos) << m;
  EXPECT_EQ(m.find("control cycle", m.find(cycle) + cycle.size()), std::string::npos) << m;
}

// The pipeline files in the docs (docs/*.md and the README, every ```toml block) load as
// written, so their syntax cannot drift from the parser's. Relative schema paths in them are
// those of examples/, where the docs' pipeline files live.
TEST(PipelineTest, EveryPipelineSnippetInTheDocsLoads) {
  const std::filesystem::path root =
      std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
  std::vector<std::filesystem::path> files = {root / "README.md"};
  for (const auto& entry : std::filesystem::directory_iterator(root / "docs")) {
    if (entry.path().extension() == ".md") files.push_back(entry.path());
  }
  int snippets = 0;
  for (const std::filesystem::path& file : files) {
    std::ifstream in(file);
    ASSERT_TRUE(in) << file;
    std::string line, snippet;
    int number = 0, start = 0;
    bool inside = false;
    while (std::getline(in, line)) {
      ++number;
      // A snippet may sit indented in a list item; TOML does not mind the indentation.
      const std::string trimmed = line.substr(std::min(line.find_first_not_of(' '), line.size()));
      if (!inside && trimmed == "```toml") {
        inside = true;
        start = number;
        snippet.clear();
      } else if (inside && trimmed == "```") {
        inside = false;
        ++snippets;
        const std::string name = file.filename().string() + ":" + std::to_string(start);
        auto pipeline = LoadPipelineFromString(snippet, name, root / "examples");
        EXPECT_TRUE(pipeline.ok()) << "the snippet at " << name << " does not load:\n"
                                   << pipeline.status().message();
      } else if (inside) {
        snippet += line + "\n";
      }
    }
  }
  EXPECT_GE(snippets, 2);  // docs/ARCHITECTURE.md: every key, and control connections
}

TEST(PipelineTest, ReportsEveryProblemNotJustTheFirst) {
  auto pipeline = LoadPipelineFromString(
      "[[node]]\nname = \"a\"\ncommand = \"\"\nfoo = 1\n[[node]]\nname = \"b\"\n", "bad.toml");
  ASSERT_FALSE(pipeline.ok());
  const std::string& m = pipeline.status().message();
  EXPECT_NE(m.find("bad.toml:3: node 'a': command: must not be empty"), std::string::npos) << m;
  EXPECT_NE(m.find("bad.toml:4: node 'a': unknown key 'foo'"), std::string::npos) << m;
  EXPECT_NE(m.find("bad.toml:5: node 'b': missing key 'command'"), std::string::npos) << m;
}

class SchemaFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("quiver-pipeline-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
  }
  std::string Pipeline(const std::string& schema) {
    return "[[channel]]\nname = \"c\"\nschema = \"" + schema +
           "\"\n[[node]]\nname = \"a\"\ncommand = \"x\"\npublishes = [\"c\"]\n";
  }
  std::filesystem::path dir_;
};

TEST_F(SchemaFileTest, RelativeSchemaIsFoundBesideThePipelineFile) {
  Write(
      "ledger.json",
      R"([{"name": "id", "type": "int64", "nullable": false}, {"name": "code", "type": "utf8"}])");
  Write("p.toml", Pipeline("ledger.json"));
  auto pipeline = LoadPipeline(dir_ / "p.toml");
  ASSERT_TRUE(pipeline.ok()) << pipeline.status().ToString();
  const ChannelSpec& c = pipeline->channels[0];
  EXPECT_EQ(c.schema_path, dir_ / "ledger.json");
  ASSERT_NE(c.schema, nullptr);
  EXPECT_EQ(c.schema->ToString(), "id: int64 not null\ncode: string");
}

TEST_F(SchemaFileTest, BadSchemaFilesAreRefusedAtLoad) {
  const std::pair<const char*, const char*> cases[] = {
      {"[{\"name\": \"x\", \"type\": \"int65\"}]", "unknown type 'int65'"},
      {"[{\"name\": \"x\", \"type\": \"utf8\"}, {\"name\": \"x\", \"type\": \"utf8\"}]",
       "field 'x' appears twice"},
      {"[{\"type\": \"utf8\"}]", "field 0 has no name"},
      {"[{\"name\": \"x\", \"type\": \"utf8\", \"default\": 1}]", "unknown key 'default'"},
      {"[{\"name\": \"x\", \"type\": \"utf8\", \"nullable\": \"yes\"}]", "wrong type"},
      {"{\"fields\": []}", "non-empty JSON list"},
      {"[", "not valid JSON"},
  };
  for (const auto& [json, expected] : cases) {
    Write("s.json", json);
    Write("p.toml", Pipeline("s.json"));
    auto pipeline = LoadPipeline(dir_ / "p.toml");
    ASSERT_FALSE(pipeline.ok()) << json;
    const std::string& m = pipeline.status().message();
    EXPECT_NE(m.find(":3: channel 'c': schema:"), std::string::npos) << m;
    EXPECT_NE(m.find(expected), std::string::npos) << m;
  }
}

TEST(PipelineTest, MissingFileIsNotFound) {
  auto pipeline = LoadPipeline("/nonexistent/pipeline.toml");
  ASSERT_FALSE(pipeline.ok());
  EXPECT_EQ(pipeline.status().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace quiver::supervisor
