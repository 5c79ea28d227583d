// Channel discovery (src/discovery/): named channels and a running pipeline's channels in one
// list, opened by name either way, stale ones removed and live ones spared. Real processes:
// a supervisor in a child process, a channel whose only owner was SIGKILLed.
#include "discovery/discovery.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "supervisor/supervisor.h"
#include "test_support.h"

namespace quiver::discovery {
namespace {

using std::chrono::milliseconds;
using testing::Child;
using testing::UniqueName;

const ChannelEntry* Find(const std::vector<ChannelEntry>& entries, const std::string& name) {
  auto it = std::find_if(entries.begin(), entries.end(),
                         [&](const ChannelEntry& e) { return e.name == name; });
  return it == entries.end() ? nullptr : &*it;
}

// A pipeline of one idle node in a child process (its supervisor dies with the child).
std::unique_ptr<Child> RunIdlePipeline(const std::string& channel) {
  return std::make_unique<Child>([channel] {
    supervisor::Pipeline p;
    p.channels.push_back({.name = channel, .capacity = 1 << 20});
    p.nodes.push_back({.name = "idle", .command = "/bin/sh", .args = {"-c", "sleep 30"}});
    supervisor::RunOptions options;
    options.stdout_fd = -1;
    options.stderr_fd = -1;
    auto report = supervisor::RunPipeline(p, options);
    return report.ok() ? report->exit_code : 99;
  });
}

TEST(DiscoveryTest, NamedAndPipelineChannelsAreListedAndOpenedByName) {
  const std::string named = UniqueName("disc-named");
  const std::string piped = UniqueName("disc-pipe");
  auto channel = Channel::Create(named, {.capacity = 4096});
  ASSERT_TRUE(channel.ok()) << channel.status().ToString();
  auto pipeline = RunIdlePipeline(piped);

  const ChannelEntry* in_pipeline = nullptr;
  std::vector<ChannelEntry> entries;
  for (int attempt = 0; attempt < 500 && in_pipeline == nullptr; ++attempt) {
    entries = ListChannels();
    in_pipeline = Find(entries, piped);
    if (in_pipeline == nullptr) std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_NE(in_pipeline, nullptr) << "the pipeline's channel never showed up";
  EXPECT_TRUE(in_pipeline->pipeline.starts_with("@quiver-" + std::to_string(::geteuid()) + "-"))
      << in_pipeline->pipeline;
  EXPECT_EQ(in_pipeline->stats.capacity, size_t{1} << 20);
  const ChannelEntry* in_directory = Find(entries, named);
  ASSERT_NE(in_directory, nullptr);
  EXPECT_TRUE(in_directory->pipeline.empty());
  EXPECT_FALSE(in_directory->stale);

  const nlohmann::json j = nlohmann::json::parse(in_pipeline->ToJson());
  EXPECT_EQ(j["name"], piped);
  EXPECT_EQ(j["state"], "live");
  EXPECT_EQ(j["pipeline"], in_pipeline->pipeline);
  EXPECT_EQ(j["capacity"], 1 << 20);

  auto opened = OpenChannel(piped);  // a memfd, reached through the supervisor
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_FALSE(opened->named());
  EXPECT_EQ(opened->name(), piped);
  auto by_name = OpenChannel(named);
  ASSERT_TRUE(by_name.ok());
  EXPECT_TRUE(by_name->named());
  EXPECT_EQ(OpenChannel(UniqueName("disc-none")).status().code(), ErrorCode::kNotFound);

  pipeline->Kill(SIGTERM);
  EXPECT_EQ(pipeline->ExitCode(), 128 + SIGTERM);
}

TEST(DiscoveryTest, RemoveStaleRemovesOnlyChannelsWhoseOwnersAllDied) {
  const std::string stale = UniqueName("disc-stale");
  const std::string live = UniqueName("disc-live");
  Child owner([&] {
    auto channel = Channel::Create(stale, {.capacity = 4096});
    kill(getpid(), SIGKILL);  // dies holding it: nobody removes the file
    return 1;
  });
  owner.Wait();
  auto kept = Channel::Create(live, {.capacity = 4096});
  ASSERT_TRUE(kept.ok());

  const ChannelEntry* entry = nullptr;
  const std::vector<ChannelEntry> entries = ListChannels();
  entry = Find(entries, stale);
  ASSERT_NE(entry, nullptr);
  EXPECT_TRUE(entry->stale);
  EXPECT_EQ(nlohmann::json::parse(entry->ToJson())["state"], "stale");

  int live_count = 0;
  auto dry = RemoveStale(/*dry_run=*/true, &live_count);
  ASSERT_TRUE(dry.ok()) << dry.status().ToString();
  auto said = std::find_if(dry->begin(), dry->end(),
                           [&](const Removal& r) { return r.path == Channel::NamedPath(stale); });
  ASSERT_NE(said, dry->end());
  EXPECT_FALSE(said->removed);
  EXPECT_GE(live_count, 1);
  EXPECT_TRUE(Channel::IsStale(stale).ValueOr(false)) << "a dry run removes nothing";

  auto removed = RemoveStale(/*dry_run=*/false);
  ASSERT_TRUE(removed.ok());
  said = std::find_if(removed->begin(), removed->end(),
                      [&](const Removal& r) { return r.path == Channel::NamedPath(stale); });
  ASSERT_NE(said, removed->end());
  EXPECT_TRUE(said->removed) << said->error;
  EXPECT_EQ(Find(ListChannels(), stale), nullptr);
  EXPECT_NE(Find(ListChannels(), live), nullptr) << "a live channel is never removed";
}

}  // namespace
}  // namespace quiver::discovery
