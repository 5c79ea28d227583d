// The `quiver` command as a user runs it: real binary, real channels, real output.
#include <gtest/gtest.h>

#include <thread>
#include <signal.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "quiver/channel.h"
#include "test_support.h"

namespace quiver {
namespace {

using testing::SegmentFileExists;
using testing::UniqueName;

struct Output {
  int exit_code;
  std::string text;  // stdout and stderr
};

Output Quiver(const std::string& args, const std::string& env = "") {
  const std::string command =
      env + " " + std::string(QUIVER_TEST_PEER_DIR) + "/quiver " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  Output out{-1, ""};
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.text.append(buf.data(), n);
  const int status = pclose(pipe);
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

TEST(CliTest, VersionAndHelpForEverySubcommand) {
  Output version = Quiver("--version");
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_NE(version.text.find("quiver 0.1.0"), std::string::npos) << version.text;
  for (const char* sub : {"run", "ls", "top", "echo", "info", "clean", "bench"}) {
    Output help = Quiver(std::string(sub) + " --help");
    EXPECT_EQ(help.exit_code, 0) << sub;
    EXPECT_NE(help.text.find("Usage"), std::string::npos) << sub << ": " << help.text;
  }
  Output unknown = Quiver("frobnicate");
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.text.find("frobnicate"), std::string::npos) << unknown.text;
}

TEST(CliTest, BenchRejectsUnknownWorkloadsAndSaysWhereTheSuiteIs) {
  Output bad = Quiver("bench --workload w1,w9");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.text.find("unknown workload 'w9'"), std::string::npos) << bad.text;
  Output lost = Quiver("bench --list", "QUIVER_BENCH_SUITE=/nonexistent/suite.py");
  EXPECT_EQ(lost.exit_code, 2);
  EXPECT_NE(lost.text.find("QUIVER_BENCH_SUITE"), std::string::npos) << lost.text;
}

TEST(CliTest, BenchListsTheSuitesWorkloads) {
  Output list = Quiver("bench --list");
  ASSERT_EQ(list.exit_code, 0) << list.text;
  for (const char* name : {"w1_ledger", "w2_image", "w3_frames", "w4_ingest"}) {
    EXPECT_NE(list.text.find(name), std::string::npos) << list.text;
  }
}

// A publisher held up by a stopped subscriber says so in ls (PUB "wait 1.2s"), and the stall
// policy's evictions are counted.
TEST(CliTest, LsShowsAStalledPublisherAndEvictions) {
  const std::string name = UniqueName("cli-stall");
  auto channel = Channel::Create(
      name, {.capacity = 8 << 10, .max_samples = 8, .stall_timeout = std::chrono::seconds(1)});
  ASSERT_TRUE(channel.ok());
  auto held = channel->CreateSubscriber();  // never receives
  std::thread publisher([&] {
    auto p = channel->CreatePublisher();
    for (int i = 0; i < 4; ++i) {
      auto loan = p->Loan(4 << 10);  // the third waits: held keeps the channel full
      if (loan.ok()) (void)p->Publish(std::move(*loan));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  Output waiting = Quiver("ls");
  EXPECT_NE(waiting.text.find("wait 0."), std::string::npos) << waiting.text;
  publisher.join();  // after the stall timeout: `held` was evicted
  Output ls = Quiver("ls --json");
  nlohmann::json mine;
  for (const auto& c : nlohmann::json::parse(ls.text)) {
    if (c["name"] == name) mine = c;
  }
  ASSERT_FALSE(mine.is_null()) << ls.text;
  EXPECT_EQ(mine["evicted_subscribers"], 1);
  EXPECT_EQ(mine["stall_timeout_s"], 1.0);
  ASSERT_EQ(mine["subscribers"].size(), 1u);
  EXPECT_GE(mine["subscribers"][0]["evicted_after_s"].get<double>(), 1.0);
  EXPECT_EQ(held->Receive(std::chrono::milliseconds(10)).status().code(), ErrorCode::kEvicted);
}

TEST(CliTest, LsShowsChannelsWithTheirCountersAsJson) {
  const std::string name = UniqueName("cli-ls");
  auto channel = Channel::Create(name, {.capacity = 1 << 20});
  ASSERT_TRUE(channel.ok());
  auto publisher = channel->CreatePublisher();
  auto subscriber = channel->CreateSubscriber();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(publisher->PublishCopy(std::as_bytes(std::span("hello", 5))).ok());
  }
  ASSERT_TRUE(subscriber->Receive(std::chrono::seconds(1)).ok());

  Output ls = Quiver("ls --json");
  ASSERT_EQ(ls.exit_code, 0) << ls.text;
  auto all = nlohmann::json::parse(ls.text);
  nlohmann::json mine;
  for (const auto& c : all) {
    if (c["name"] == name) mine = c;
  }
  ASSERT_FALSE(mine.is_null()) << ls.text;
  EXPECT_EQ(mine["state"], "live");
  EXPECT_EQ(mine["published"], 3);
  EXPECT_EQ(mine["published_bytes"], 15);
  EXPECT_EQ(mine["publisher_alive"], true);
  ASSERT_EQ(mine["subscribers"].size(), 1u);
  EXPECT_EQ(mine["subscribers"][0]["received"], 1);
  EXPECT_EQ(mine["subscribers"][0]["queued"], 2);
  EXPECT_EQ(mine["subscribers"][0]["alive"], true);

  Output table = Quiver("ls");
  EXPECT_NE(table.text.find(name), std::string::npos) << table.text;
  EXPECT_NE(table.text.find("EVICTED"), std::string::npos) << table.text;
  Output top = Quiver("top --iterations 1 --interval 0.05");
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_NE(top.text.find(name), std::string::npos) << top.text;
  EXPECT_NE(top.text.find("MSG/S"), std::string::npos);
}

TEST(CliTest, CleanRemovesStaleSegmentsAndSparesLiveOnes) {
  const std::string stale = UniqueName("cli-stale");
  const std::string live = UniqueName("cli-live");
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto channel = Channel::Create(stale, {.capacity = 4096});
    kill(getpid(), SIGKILL);
  }
  int status = 0;
  waitpid(child, &status, 0);
  auto kept = Channel::Create(live, {.capacity = 4096});
  ASSERT_TRUE(kept.ok());

  Output ls = Quiver("ls");
  const size_t at = ls.text.find(stale);
  ASSERT_NE(at, std::string::npos) << ls.text;
  const std::string line = ls.text.substr(at, ls.text.find('\n', at) - at);
  EXPECT_NE(line.find("stale: every owner died"), std::string::npos) << line;
  EXPECT_TRUE(SegmentFileExists(stale)) << "ls only looks";

  Output dry = Quiver("clean --dry-run");
  EXPECT_NE(dry.text.find("would remove"), std::string::npos);
  EXPECT_TRUE(SegmentFileExists(stale));

  Output clean = Quiver("clean");
  EXPECT_EQ(clean.exit_code, 0);
  EXPECT_NE(clean.text.find("removed " + shm::Segment::PathOf(stale)), std::string::npos)
      << clean.text;
  EXPECT_FALSE(SegmentFileExists(stale));
  EXPECT_TRUE(SegmentFileExists(live));
}

}  // namespace
}  // namespace quiver
