// The supervisor's promises with real processes: a pipeline completes; one failing node stops
// all the others within the grace period and is named in the report; Ctrl-C stops everything;
// kill -9 of the supervisor leaves no node and no segment behind; late joiners get a working
// channel through the socket; output is prefixed; malformed files never start anything; a
// core and its workers talk over control connections that no other process holds.
//
// This binary is also a pipeline node: with QUIVER_SUPERVISOR_TEST_ROLE set, main() plays a
// publisher or a subscriber on a channel it attaches with Channel::Attach (see RunRole).
#include "supervisor/supervisor.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "quiver/arrow.h"
#include "quiver/channel.h"
#include "quiver/control.h"
#include "supervisor/client.h"
#include "supervisor/fd_passing.h"
#include "supervisor/pipeline.h"
#include "test_support.h"

namespace quiver::supervisor {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;
using testing::CheckPattern;
using testing::Child;
using testing::FillPattern;
using testing::PatternSize;

constexpr char kRoleEnv[] = "QUIVER_SUPERVISOR_TEST_ROLE";
constexpr size_t kMaxSampleBytes = 4096;

const std::filesystem::path kPipelineDir =
    std::filesystem::path(__FILE__).parent_path() / "pipelines";

std::string SelfExe() { return std::filesystem::read_symlink("/proc/self/exe").string(); }

// A scratch directory for pid files and the like, removed afterwards.
class TempDir {
 public:
  TempDir() {
    path_ =
        std::filesystem::temp_directory_path() /
        ("quiver-supervisor-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

// A shell node. `script` runs under /bin/sh -c.
NodeSpec Sh(const std::string& name, const std::string& script) {
  return NodeSpec{.name = name, .command = "/bin/sh", .args = {"-c", script}};
}

// A node played by this very binary (see RunRole).
NodeSpec Role(const std::string& name, const std::string& role, std::vector<std::string> args) {
  return NodeSpec{
      .name = name, .command = SelfExe(), .args = std::move(args), .env = {{kRoleEnv, role}}};
}

// Waits until `path` holds a pid; returns it, or -1 after `timeout`.
pid_t AwaitPidFile(const std::string& path, milliseconds timeout = milliseconds(5000)) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    std::ifstream in(path);
    pid_t pid = -1;
    if (in >> pid && pid > 0) return pid;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return -1;
}

// True once `pid` has exited (gone, or a zombie waiting for whoever inherited it).
bool Exited(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return true;
  const size_t paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] == 'Z' ||
         stat[paren + 2] == 'X';
}

bool ExitsWithin(pid_t pid, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!Exited(pid)) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

std::string ReadAll(int fd) {
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) text.append(buf, static_cast<size_t>(n));
  return text;
}

RunOptions Quiet() {
  RunOptions options;
  options.stdout_fd = -1;
  options.stderr_fd = -1;
  return options;
}

TEST(SupervisorTest, PipelineCompletesWhenEveryNodeExitsZero) {
  Pipeline p;
  p.source = "test";
  p.channels.push_back({.name = "data-" + std::to_string(::getpid()), .capacity = 1 << 20});
  p.channels.push_back({.name = "other-" + std::to_string(::getpid()), .capacity = 1 << 20});
  const std::string data = p.channels[0].name;
  const std::string other = p.channels[1].name;
  // The publisher is told how many of the pipeline's nodes read each of its channels.
  NodeSpec pub =
      Sh("pub", "test \"$QUIVER_SUBSCRIBERS\" = " + data + "=1," + other + "=0 || exit 9");
  pub.publishes = {data, other};
  // The subscriber sees exactly its own channel, and the fd is open in it.
  NodeSpec sub = Sh("sub", "case \"$QUIVER_CHANNELS\" in " + data +
                               "=*) ;; *) exit 3;; esac; "
                               "case \"$QUIVER_CHANNELS\" in *,*) exit 4;; esac; "
                               "test \"$QUIVER_NODE\" = sub || exit 5; "
                               "test -n \"$QUIVER_SUPERVISOR_SOCKET\" || exit 6; "
                               "test -e /proc/self/fd/${QUIVER_CHANNELS#" +
                               data +
                               "=} || exit 7; "
                               "test ! -e /proc/self/fd/0 -o -c /proc/self/fd/0 || exit 8");
  sub.subscribes = {data};
  p.nodes = {pub, sub, Sh("idle", "exit 0")};

  auto report = RunPipeline(p, Quiet());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->exit_code, 0) << report->ToString();
  EXPECT_EQ(report->summary, "pipeline completed");
  EXPECT_TRUE(report->failed_node.empty());
  ASSERT_EQ(report->nodes.size(), 3u);
  for (const NodeOutcome& node : report->nodes) {
    EXPECT_TRUE(node.started) << node.name;
    EXPECT_EQ(node.Describe(), "exit code 0") << node.name;
  }
}

TEST(SupervisorTest, PipelineFileFromDiskCompletes) {
  auto pipeline = LoadPipeline(kPipelineDir / "completes.toml");
  ASSERT_TRUE(pipeline.ok()) << pipeline.status().ToString();
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  UniqueFd r(fds[0]), w(fds[1]);
  RunOptions options = Quiet();
  options.stdout_fd = w.get();
  auto report = RunPipeline(*pipeline, options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->exit_code, 0) << report->ToString();
  w.Reset();
  EXPECT_NE(ReadAll(r.get()).find("[sink] sink has numbers="), std::string::npos);
}

TEST(SupervisorTest, NodesExchangeSamplesThroughTheChannelsTheyWereHanded) {
  const std::string channel = "samples-" + std::to_string(::getpid());
  Pipeline p;
  p.channels.push_back({.name = channel, .capacity = 1 << 20, .max_subscribers = 2});
  NodeSpec pub = Role("pub", "publish", {channel, "500", "2"});
  pub.publishes = {channel};
  NodeSpec sub1 = Role("sub1", "subscribe", {channel, "500"});
  sub1.subscribes = {channel};
  NodeSpec sub2 = Role("sub2", "subscribe", {channel, "500"});
  sub2.subscribes = {channel};
  p.nodes = {sub1, pub, sub2};
  auto report = RunPipeline(p, Quiet());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->exit_code, 0) << report->ToString();
  // Nothing named: the channel was a memfd.
  EXPECT_FALSE(testing::SegmentFileExists(channel));
}

// A node gets the stop as a terminal's Ctrl-C: its SIGINT handler runs and it exits cleanly,
// before any SIGTERM (a Python node: KeyboardInterrupt, `finally` blocks).
TEST(SupervisorTest, AStopReachesNodesAsCtrlCFirst) {
  TempDir dir;
  Pipeline p;
  p.source = "test";
  p.nodes = {Sh("polite", "trap 'echo got-int > " + (dir / "int") + "; exit 0' INT; echo up > " +
                              (dir / "up") + "; while :; do sleep 0.05; done"),
             Sh("failing", "while [ ! -e " + (dir / "up") + " ]; do sleep 0.01; done; exit 3")};
  RunOptions options = Quiet();
  options.grace_period = seconds(10);
  const auto start = Clock::now();
  auto report = RunPipeline(p, options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_LT(Clock::now() - start, seconds(4)) << "it waited for the SIGTERM";
  EXPECT_EQ(report->failed_node, "failing");
  EXPECT_EQ(report->nodes[0].Describe(), "exit code 0");
  std::ifstream marker(dir / "int");
  std::string seen;
  EXPECT_TRUE(std::getline(marker, seen));
  EXPECT_EQ(seen, "got-int");
}

// The supervisor's stdout is a pipe nobody reads (a stuck `| less`, a full log collector): a
// chatty node fills it, and the stop must still take the grace period, not forever; the
// report says how many lines were dropped.
TEST(SupervisorTest, AReaderThatNeverReadsDoesNotHoldUpTheStop) {
  TempDir dir;
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  const auto start = Clock::now();
  Child supervisor([&] {
    Pipeline p;
    p.source = "test";
    p.nodes = {Sh("chatty", "yes quiver-output-line | head -n 300000; exec sleep 60"),
               Sh("failing", "sleep 0.5; exit 1")};
    RunOptions options = Quiet();
    options.stdout_fd = out[1];
    options.grace_period = milliseconds(500);
    auto report = RunPipeline(p, options);
    if (!report.ok()) return 99;
    std::ofstream(dir / "summary") << report->summary;
    return report->exit_code;
  });
  ::close(out[1]);
  int status = 0;
  while (::waitpid(supervisor.pid(), &status, WNOHANG) == 0 && Clock::now() - start < seconds(15)) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  const auto took = Clock::now() - start;
  ::close(out[0]);
  ASSERT_LT(took, seconds(15)) << "the stop waited for a reader that never reads";
  EXPECT_LT(took, seconds(5));
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  std::ifstream summary(dir / "summary");
  std::string text;
  std::getline(summary, text);
  EXPECT_NE(text.find("node 'failing' failed"), std::string::npos) << text;
  EXPECT_NE(text.find("lines of the nodes' output were dropped"), std::string::npos) << text;
}

TEST(SupervisorTest, OneFailingNodeStopsAllOthersWithinTheGracePeriod) {
  Pipeline p;
  p.source = "test";
  p.nodes = {Sh("sleeper", "exec sleep 60"),
             // Ignores SIGINT and SIGTERM (so does its sleep: SIG_IGN survives exec): needs
             // the SIGKILL.
             Sh("stubborn", "trap '' INT TERM; sleep 60; exit 0"),
             // Ignores only SIGINT: the SIGTERM at half the grace period ends it.
             Sh("deaf", "trap '' INT; exec sleep 60"),
             Sh("failing",
                "sleep 0.3; echo 'first words' >&2; echo 'cannot open input' >&2; "
                "exit 1")};
  RunOptions options = Quiet();
  options.grace_period = milliseconds(500);
  const auto start = Clock::now();
  auto report = RunPipeline(p, options);
  const auto took = Clock::now() - start;
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_LT(took, seconds(5));
  EXPECT_GE(took, milliseconds(300 + 500));  // the stubborn node waited out the grace period
  EXPECT_NE(report->exit_code, 0);
  EXPECT_EQ(report->failed_node, "failing");
  EXPECT_EQ(report->summary, "node 'failing' failed: exit code 1");
  const std::string text = report->ToString();
  EXPECT_NE(text.find("  | cannot open input"), std::string::npos) << text;
  const NodeOutcome& sleeper = report->nodes[0];
  EXPECT_TRUE(sleeper.stopped);
  EXPECT_EQ(sleeper.Describe(), "killed by signal 2 (SIGINT)");  // as Ctrl-C in a terminal
  const NodeOutcome& stubborn = report->nodes[1];
  EXPECT_TRUE(stubborn.stopped);
  EXPECT_EQ(stubborn.Describe(), "killed by signal 9 (SIGKILL)");
  EXPECT_EQ(report->nodes[2].Describe(), "killed by signal 15 (SIGTERM)");
  ASSERT_EQ(report->nodes[3].last_stderr.size(), 2u);
  EXPECT_EQ(report->nodes[3].last_stderr.back(), "cannot open input");
}

TEST(SupervisorTest, PipelineFileWithFailingNodeStopsWithinTwoSeconds) {
  auto pipeline = LoadPipeline(kPipelineDir / "node_fails.toml");
  ASSERT_TRUE(pipeline.ok()) << pipeline.status().ToString();
  const auto start = Clock::now();
  auto report = RunPipeline(*pipeline, Quiet());  // default grace period: 2 s
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_LT(Clock::now() - start, seconds(5));
  EXPECT_EQ(report->exit_code, 1);
  EXPECT_NE(report->ToString().find("node 'failing' failed: exit code 1"), std::string::npos);
  EXPECT_NE(report->ToString().find("cannot open input"), std::string::npos);
}

TEST(SupervisorTest, NodeKilledBySignalIsAFailure) {
  Pipeline p;
  p.nodes = {Sh("victim", "kill -KILL $$"), Sh("bystander", "exec sleep 60")};
  auto report = RunPipeline(p, Quiet());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->exit_code, 1);
  EXPECT_EQ(report->summary, "node 'victim' failed: killed by signal 9 (SIGKILL)");
  EXPECT_TRUE(report->nodes[1].stopped);
}

TEST(SupervisorTest, NodeThatCannotStartStopsTheOthers) {
  TempDir dir;
  Pipeline p;
  p.nodes = {Sh("first", "exec sleep 60"), Sh("second", "exit 0")};
  p.nodes[1].cwd = dir / "does-not-exist";
  p.nodes[1].command = "/bin/sh";  // absolute: found, but the chdir fails in the child
  auto report = RunPipeline(p, Quiet());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->exit_code, 1);
  EXPECT_EQ(report->failed_node, "second");
  EXPECT_NE(report->summary.find("failed to start"), std::string::npos) << report->summary;
  EXPECT_NE(report->summary.find("chdir"), std::string::npos) << report->summary;
  EXPECT_TRUE(report->nodes[0].stopped);
}

TEST(SupervisorTest, MissingCommandStartsNothing) {
  TempDir dir;
  Pipeline p;
  p.source = "p.toml";
  p.nodes = {Sh("first", "echo $$ > " + (dir / "pid")),
             NodeSpec{.name = "second", .command = "no-such-program-quiver", .line = 7}};
  auto report = RunPipeline(p, Quiet());
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(report.status().ToString().find("p.toml:7: node 'second' cannot start"),
            std::string::npos)
      << report.status().ToString();
  EXPECT_FALSE(std::filesystem::exists(dir / "pid"));
}

TEST(SupervisorTest, OutputLinesArePrefixedWithTheNodeName) {
  int out[2], err[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(err, O_CLOEXEC), 0);
  UniqueFd out_r(out[0]), out_w(out[1]), err_r(err[0]), err_w(err[1]);
  Pipeline p;
  p.nodes = {Sh("talker", "echo hello; printf 'two\\nlines\\n'; echo oops >&2; printf tail"),
             Sh("other", "echo from other")};
  RunOptions options;
  options.stdout_fd = out_w.get();
  options.stderr_fd = err_w.get();
  auto report = RunPipeline(p, options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->exit_code, 0);
  out_w.Reset();
  err_w.Reset();
  const std::string stdout_text = ReadAll(out_r.get());
  const std::string stderr_text = ReadAll(err_r.get());
  EXPECT_NE(stdout_text.find("[talker] hello\n[talker] two\n[talker] lines\n"), std::string::npos)
      << stdout_text;
  EXPECT_NE(stdout_text.find("[talker] tail\n"), std::string::npos) << stdout_text;
  EXPECT_NE(stdout_text.find("[other] from other\n"), std::string::npos) << stdout_text;
  EXPECT_EQ(stderr_text, "[talker] oops\n");
}

TEST(SupervisorTest, SigintStopsEveryNodeAndExits130) {
  TempDir dir;
  Child supervisor([&] {
    Pipeline p;
    p.nodes = {Sh("a", "echo $$ > " + (dir / "a.pid") + "; exec sleep 60"),
               Sh("b", "echo $$ > " + (dir / "b.pid") + "; exec sleep 60")};
    auto report = RunPipeline(p, Quiet());
    if (!report.ok()) return 99;
    std::ofstream(dir / "summary") << report->summary;
    return report->exit_code;
  });
  const pid_t a = AwaitPidFile(dir / "a.pid");
  const pid_t b = AwaitPidFile(dir / "b.pid");
  ASSERT_GT(a, 0);
  ASSERT_GT(b, 0);
  supervisor.Kill(SIGINT);
  const auto start = Clock::now();
  EXPECT_EQ(supervisor.ExitCode(), 130);
  EXPECT_LT(Clock::now() - start, seconds(2));  // sleep obeys SIGINT: no grace period needed
  EXPECT_TRUE(Exited(a));
  EXPECT_TRUE(Exited(b));
  std::ifstream summary(dir / "summary");
  std::string text;
  std::getline(summary, text);
  EXPECT_EQ(text, "stopped by SIGINT");
}

TEST(SupervisorTest, SupervisorKilledWithSigkillLeavesNoNodeNoSegmentNoSocket) {
  TempDir dir;
  const std::string channel = "kill9-" + std::to_string(::getpid());
  const std::string socket = "@quiver-supervisor-test-" + std::to_string(::getpid());
  Child supervisor([&] {
    Pipeline p;
    p.channels.push_back({.name = channel, .capacity = 1 << 20});
    NodeSpec pub = Sh("pub", "echo $$ > " + (dir / "pub.pid") + "; exec sleep 60");
    pub.publishes = {channel};
    NodeSpec sub = Sh("sub", "echo $$ > " + (dir / "sub.pid") + "; exec sleep 60");
    sub.subscribes = {channel};
    p.nodes = {pub, sub};
    RunOptions options = Quiet();
    options.socket_address = socket;
    auto report = RunPipeline(p, options);
    return report.ok() ? report->exit_code : 99;
  });
  const pid_t pub = AwaitPidFile(dir / "pub.pid");
  const pid_t sub = AwaitPidFile(dir / "sub.pid");
  ASSERT_GT(pub, 0);
  ASSERT_GT(sub, 0);
  // The late-joiner socket works while the supervisor lives...
  auto fd = RequestChannelFd(socket, channel);
  ASSERT_TRUE(fd.ok()) << fd.status().ToString();
  fd->Reset();

  supervisor.Kill(SIGKILL);
  EXPECT_EQ(supervisor.ExitCode(), 128 + SIGKILL);
  EXPECT_TRUE(ExitsWithin(pub, milliseconds(1000)));
  EXPECT_TRUE(ExitsWithin(sub, milliseconds(1000)));
  // ... and nothing is left: no segment file (memfds die with their last holder), no socket.
  EXPECT_FALSE(testing::SegmentFileExists(channel));
  std::error_code no_directory;  // the last channel out removes it: then nothing is left
  for (const auto& entry :
       std::filesystem::directory_iterator(shm::Segment::Directory(), no_directory)) {
    EXPECT_EQ(entry.path().filename().string().find(channel), std::string::npos) << entry.path();
  }
  EXPECT_EQ(ConnectUnix(socket).status().code(), ErrorCode::kNotFound);
}

// What a node starts must end with the pipeline, in the shapes people write nodes in. Each
// shape leaves an "escapee" that writes its pid to ESCAPEE and ignores SIGINT and SIGTERM, so
// only the supervisor's ownership of the whole tree can end it.
struct TreeShape {
  const char* name;
  const char* script;  // ESCAPEE is replaced by the pid file's path
};
// Inside the shape's double quotes: \$\$ is the escapee's own pid, not the node's.
constexpr char kStubborn[] = "trap '' INT TERM; echo \\$\\$ > ESCAPEE; exec sleep 60";
const TreeShape kTreeShapes[] = {
    // sh -c "cd x && python y.py": the program runs as the wrapper shell's child.
    {"WrapperShell", "sh -c \"STUBBORN\"; true"},
    // A node that starts a helper in the background and goes on.
    {"BackgroundChild", "sh -c \"STUBBORN\" & exec sleep 60"},
    // A daemon: forks twice and calls setsid, so it is in no group of the node's and its
    // parent is gone at once.
    {"DoubleForkAndSetsid", "( setsid sh -c \"STUBBORN\" & ); exec sleep 60"},
};

std::string TreeScript(const TreeShape& shape, const std::string& pid_file) {
  std::string stubborn = kStubborn;
  stubborn.replace(stubborn.find("ESCAPEE"), 7, pid_file);
  std::string script = shape.script;
  script.replace(script.find("STUBBORN"), 8, stubborn);
  return script;
}

class NodeTreeTest : public ::testing::TestWithParam<TreeShape> {};

TEST_P(NodeTreeTest, EndsWithinOneSecondOfAStop) {
  TempDir dir;
  Child supervisor([&] {
    Pipeline p;
    p.nodes = {Sh("tree", TreeScript(GetParam(), dir / "escapee.pid"))};
    RunOptions options = Quiet();
    options.grace_period = seconds(1);
    auto report = RunPipeline(p, options);
    return report.ok() ? report->exit_code : 99;
  });
  const pid_t escapee = AwaitPidFile(dir / "escapee.pid");
  ASSERT_GT(escapee, 0);
  supervisor.Kill(SIGINT);
  EXPECT_EQ(supervisor.ExitCode(), 130);
  EXPECT_TRUE(ExitsWithin(escapee, milliseconds(1000)));
  if (!Exited(escapee)) ::kill(escapee, SIGKILL);
}

TEST_P(NodeTreeTest, EndsWithinOneSecondOfKill9OfTheSupervisor) {
  TempDir dir;
  Child supervisor([&] {
    Pipeline p;
    p.nodes = {Sh("tree", TreeScript(GetParam(), dir / "escapee.pid"))};
    auto report = RunPipeline(p, Quiet());
    return report.ok() ? report->exit_code : 99;
  });
  const pid_t escapee = AwaitPidFile(dir / "escapee.pid");
  ASSERT_GT(escapee, 0);
  supervisor.Kill(SIGKILL);
  EXPECT_EQ(supervisor.ExitCode(), 128 + SIGKILL);
  EXPECT_TRUE(ExitsWithin(escapee, milliseconds(1000)));
  if (!Exited(escapee)) ::kill(escapee, SIGKILL);
}

INSTANTIATE_TEST_SUITE_P(Shapes, NodeTreeTest, ::testing::ValuesIn(kTreeShapes),
                         [](const auto& info) { return std::string(info.param.name); });

// A node that exits on its own takes what it started with it, and the pipeline reports the
// node's own status, not its keeper's.
TEST(SupervisorTest, ANodeThatExitsTakesItsDaemonWithIt) {
  TempDir dir;
  Pipeline p;
  p.nodes = {Sh("starter", "( setsid sh -c \"trap '' INT TERM HUP; echo \\$\\$ > " +
                               (dir / "daemon.pid") + "; exec sleep 60\" & ); while [ ! -s " +
                               (dir / "daemon.pid") + " ]; do sleep 0.01; done; exit 4")};
  auto report = RunPipeline(p, Quiet());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->nodes[0].Describe(), "exit code 4");
  const pid_t daemon = AwaitPidFile(dir / "daemon.pid");
  ASSERT_GT(daemon, 0);
  EXPECT_TRUE(Exited(daemon)) << "the daemon outlived its node";
  if (!Exited(daemon)) ::kill(daemon, SIGKILL);
}

// A relative PATH entry is relative to the node's relative cwd, as for execvp in the node;
// it was checked there and then exec'ed from inside cwd (ENOENT).
TEST(SupervisorTest, ARelativePathEntryUnderARelativeCwdStarts) {
  TempDir dir;
  std::filesystem::create_directories(dir / "node/bin");
  {
    std::ofstream script(dir / "node/bin/answer");
    script << "#!/bin/sh\nexit 7\n";
  }
  std::filesystem::permissions(dir / "node/bin/answer", std::filesystem::perms::owner_all);
  Pipeline p;
  p.nodes = {NodeSpec{.name = "answer",
                      .command = "answer",
                      .env = {{"PATH", "bin:/usr/bin:/bin"}},
                      .cwd = std::filesystem::relative(dir / "node")}};
  ASSERT_TRUE(p.nodes[0].cwd.is_relative());
  auto report = RunPipeline(p, Quiet());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->nodes[0].Describe(), "exit code 7") << report->summary;
}

// The keeper mirrors how the node ended, signal included.
TEST(SupervisorTest, ANodeKilledByASignalIsReportedWithThatSignal) {
  Pipeline p;
  p.nodes = {Sh("segv", "kill -SEGV $$")};
  auto report = RunPipeline(p, Quiet());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->nodes[0].Describe(), "killed by signal 11 (SIGSEGV)");
}

TEST(SupervisorTest, LateJoinerGetsAWorkingChannelThroughTheSocket) {
  const std::string channel = "late-" + std::to_string(::getpid());
  const std::string socket = "@quiver-supervisor-late-" + std::to_string(::getpid());
  constexpr int kSamples = 50;
  Child supervisor([&] {
    Pipeline p;
    p.channels.push_back({.name = channel, .capacity = 1 << 20});
    // Publishes once one subscriber (the test, joining late) is there.
    NodeSpec pub = Role("pub", "publish", {channel, std::to_string(kSamples), "1"});
    pub.publishes = {channel};
    p.nodes = {pub};
    RunOptions options = Quiet();
    options.socket_address = socket;
    auto report = RunPipeline(p, options);
    return report.ok() ? report->exit_code : 99;
  });
  // The socket exists before any node starts; wait for the supervisor process to get there.
  Result<Channel> attached = Status::NotFound("not tried");
  const auto deadline = Clock::now() + seconds(10);
  while (Clock::now() < deadline) {
    attached = AttachFromSupervisor(socket, channel);
    if (attached.ok() || attached.status().code() != ErrorCode::kNotFound) break;
    std::this_thread::sleep_for(milliseconds(5));
  }
  ASSERT_TRUE(attached.ok()) << attached.status().ToString();
  EXPECT_EQ(attached->name(), channel);
  EXPECT_EQ(RequestChannelFd(socket, "no-such-channel").status().code(), ErrorCode::kNotFound);

  auto subscriber = attached->CreateSubscriber();
  ASSERT_TRUE(subscriber.ok()) << subscriber.status().ToString();
  for (uint64_t seq = 0; seq < kSamples; ++seq) {
    auto sample = subscriber->Receive(seconds(20));
    ASSERT_TRUE(sample.ok()) << sample.status().ToString();
    ASSERT_EQ(sample->size(), PatternSize(seq, kMaxSampleBytes));
    ASSERT_TRUE(CheckPattern(sample->data(), seq));
  }
  EXPECT_EQ(supervisor.ExitCode(), 0);
}

// A `list` reply longer than 1 KiB once made `quiver ls` drop every channel of the pipeline,
// and 64 idle connections locked every late joiner out.
TEST(SupervisorTest, ManyChannelsAndIdleClientsHideNothingAndLockNobodyOut) {
  const std::string socket = "@quiver-supervisor-many-" + std::to_string(::getpid());
  std::vector<std::string> names;
  for (int i = 0; i < 40; ++i) {
    names.push_back("many-" + std::to_string(::getpid()) + "-" + std::string(40, 'c') + "-" +
                    std::to_string(i));
  }
  Child supervisor([&] {
    Pipeline p;
    NodeSpec node{.name = "sleeper", .command = "sleep", .args = {"30"}};
    for (const std::string& name : names) {
      p.channels.push_back({.name = name, .capacity = 64 << 10});
      node.publishes.push_back(name);
    }
    p.nodes = {node};
    RunOptions options = Quiet();
    options.socket_address = socket;
    auto report = RunPipeline(p, options);
    return report.ok() ? report->exit_code : 99;
  });
  Result<std::vector<std::string>> listed = Status::NotFound("not tried");
  for (const auto deadline = Clock::now() + seconds(10); Clock::now() < deadline;) {
    listed = ListSupervisedChannels(socket);
    if (listed.ok() || listed.status().code() != ErrorCode::kNotFound) break;
    std::this_thread::sleep_for(milliseconds(5));
  }
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  EXPECT_EQ(*listed, names) << "a reply of about 2 KiB";

  std::vector<UniqueFd> idle;  // connected, never saying a word
  for (int i = 0; i < 80; ++i) {
    auto fd = ConnectUnix(socket);
    if (fd.ok()) idle.push_back(std::move(*fd));
  }
  auto attached = AttachFromSupervisor(socket, names.back());
  EXPECT_TRUE(attached.ok()) << attached.status().ToString();
  EXPECT_TRUE(ListSupervisedChannels(socket).ok());
  supervisor.Kill(SIGTERM);
  EXPECT_EQ(supervisor.ExitCode(), 128 + SIGTERM);
}

TEST(SupervisorTest, ChannelWithSchemaIsMadeAsAnArrowChannel) {
  TempDir dir;
  std::ofstream(dir / "schema.json")
      << R"([{"name": "id", "type": "int64", "nullable": false}, {"name": "code", "type": "utf8"}])";
  const std::string channel = "typed-" + std::to_string(::getpid());
  std::ofstream(dir / "p.toml") << "[[channel]]\nname = \"" << channel
                                << "\"\ncapacity = \"1MiB\"\nschema = \"schema.json\"\n"
                                   "[[node]]\nname = \"n\"\ncommand = \"true\"\npublishes = [\""
                                << channel << "\"]\n";
  auto pipeline = LoadPipeline(dir / "p.toml");
  ASSERT_TRUE(pipeline.ok()) << pipeline.status().ToString();

  RunOptions options = Quiet();
  std::string schema_seen;
  options.create_channel = [&](const ChannelSpec& spec, ChannelOptions o) -> Result<Channel> {
    EXPECT_EQ(o.backing, Backing::kMemfd);
    auto made = CreateChannel(spec, o);
    if (made.ok()) {
      auto schema = ChannelSchema(*made);
      if (schema.ok()) schema_seen = (*schema)->ToString();
    }
    return made;
  };
  auto report = RunPipeline(*pipeline, options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->exit_code, 0);
  EXPECT_EQ(schema_seen, "id: int64 not null\ncode: string");
}

// ---- Control connections (tests/control_pair_peer_main.cc plays the nodes) -----------------

const std::string kControlPeer = std::string(QUIVER_TEST_PEER_DIR) + "/control_pair_peer_main";

NodeSpec Peer(const std::string& name, std::vector<std::string> args) {
  return NodeSpec{.name = name, .command = kControlPeer, .args = std::move(args)};
}

// Sets an environment variable of this process for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// The supervisor's stdout and stderr relays, captured.
struct CapturedOutput {
  CapturedOutput() {
    int out[2], err[2];
    EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
    EXPECT_EQ(::pipe2(err, O_CLOEXEC), 0);
    out_r.Reset(out[0]);
    out_w.Reset(out[1]);
    err_r.Reset(err[0]);
    err_w.Reset(err[1]);
  }
  RunOptions Options() const {
    RunOptions options;
    options.stdout_fd = out_w.get();
    options.stderr_fd = err_w.get();
    return options;
  }
  // Call after the run: returns {stdout, stderr}.
  std::pair<std::string, std::string> Read() {
    out_w.Reset();
    err_w.Reset();
    return {ReadAll(out_r.get()), ReadAll(err_r.get())};
  }
  UniqueFd out_r, out_w, err_r, err_w;
};

// Each node checks that it holds exactly 0-2 and the fds its environment names (exit 10
// otherwise): a worker its one end, the core one end per worker, the bystander its channel
// only. The order of QUIVER_CONTROL_WORKERS is that of `controls`, not of the file. After the
// exchange, w2 exits on "bye" and the core must read EOF (the supervisor kept no copy of w2's
// end); then the core exits and w1 must read EOF, or it would wait and fail.
TEST(SupervisorTest, CoreExchangesALineWithEachWorkerAndNoOtherNodeHoldsAConnection) {
  // A supervisor that is itself somebody's worker does not hand its own connection down.
  ScopedEnv outer_control(control::kControlEnv, "0");
  ScopedEnv outer_workers(control::kControlWorkersEnv, "x=1");
  const std::string channel = "ctl-" + std::to_string(::getpid());
  Pipeline p;
  p.source = "test";
  p.channels.push_back({.name = channel, .capacity = 1 << 20});
  NodeSpec core = Peer("core", {"core", "w2", "w1", "--bye-first"});
  core.controls = {"w2", "w1"};
  core.publishes = {channel};
  NodeSpec bystander = Peer("bystander", {"bystander"});
  bystander.subscribes = {channel};
  p.nodes = {Peer("w1", {"worker"}), core, bystander, Peer("w2", {"worker"})};

  CapturedOutput output;
  auto report = RunPipeline(p, output.Options());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->exit_code, 0) << report->ToString();
  for (const NodeOutcome& node : report->nodes) {
    EXPECT_EQ(node.Describe(), "exit code 0")
        << node.name << ": " << ::testing::PrintToString(node.last_stderr);
  }
  const auto [out, err] = output.Read();
  // A socket worker's stdout is its own, relayed as usual.
  EXPECT_NE(out.find("[w1] w1 ready\n"), std::string::npos) << out;
  EXPECT_NE(err.find("[w2] w2 ready on "), std::string::npos) << err;
}

// control = "stdio": the worker's stdin and stdout are one socket, the core's other end; what
// it writes to stdout goes to the core, not to the relay, and its stderr is relayed.
TEST(SupervisorTest, StdioWorkerTalksOnStdinAndStdoutAndOnlyItsStderrIsRelayed) {
  NodeSpec core = Peer("core", {"core", "legacy", "--bye-first"});
  core.controls = {"legacy"};
  NodeSpec legacy = Peer("legacy", {"worker"});
  legacy.control = ControlMode::kStdio;
  Pipeline p;
  p.nodes = {core, legacy, Peer("bystander", {"bystander"})};

  CapturedOutput output;
  auto report = RunPipeline(p, output.Options());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->exit_code, 0) << report->ToString();
  for (const NodeOutcome& node : report->nodes) {
    EXPECT_EQ(node.Describe(), "exit code 0")
        << node.name << ": " << ::testing::PrintToString(node.last_stderr);
  }
  const auto [out, err] = output.Read();
  EXPECT_EQ(out.find("[legacy]"), std::string::npos) << out;
  EXPECT_NE(err.find("[legacy] legacy ready on stdio\n"), std::string::npos) << err;
}

// A worker killed by a signal closes its end with everything else: its core reads EOF at
// once. The worker's failure is its core's to handle: the pipeline goes on while the core runs
// and completes when it does, its report naming the worker.
TEST(SupervisorTest, WorkerThatDiesIsSeenByItsCoreAsEndOfFile) {
  TempDir dir;
  NodeSpec core = Peer("core", {"core", "w", "--await-eof", dir / "eof"});
  core.controls = {"w"};
  Pipeline p;
  p.nodes = {core, Peer("w", {"worker", "--die-after-reply"})};
  RunOptions options = Quiet();
  options.grace_period = seconds(20);  // the core ends by itself, well before
  auto report = RunPipeline(p, options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->failed_node, "");
  EXPECT_EQ(report->exit_code, 0);
  EXPECT_EQ(report->summary,
            "pipeline completed; worker 'w' killed by signal 9 (SIGKILL), left to its core 'core'");
  EXPECT_EQ(report->nodes[1].left_to_core, "core");
  EXPECT_FALSE(report->nodes[0].stopped);
  EXPECT_EQ(report->nodes[1].Describe(), "killed by signal 9 (SIGKILL)");
  EXPECT_EQ(report->nodes[0].Describe(), "exit code 0")
      << ::testing::PrintToString(report->nodes[0].last_stderr);
  std::ifstream marker(dir / "eof");
  std::string seen;
  EXPECT_TRUE(std::getline(marker, seen));
  EXPECT_EQ(seen, "eof");
}

TEST(SupervisorTest, ControlsNamingNoNodeStartsNothing) {
  Pipeline p;
  NodeSpec core = Sh("core", "exit 0");
  core.controls = {"ghost"};
  p.nodes = {core};
  auto report = RunPipeline(p, Quiet());
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(report.status().ToString().find("node 'core' controls unknown node 'ghost'"),
            std::string::npos)
      << report.status().ToString();
}

// Every tests/pipelines/bad_*.toml says on its first line "# expect: <part of the error>".
TEST(SupervisorTest, MalformedPipelineFilesAreRefusedWithTheirLine) {
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kPipelineDir)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with("bad_")) continue;
    ++files;
    std::ifstream in(entry.path());
    std::string first;
    std::getline(in, first);
    ASSERT_TRUE(first.starts_with("# expect: ")) << name;
    const std::string expected = first.substr(std::string("# expect: ").size());
    auto pipeline = LoadPipeline(entry.path());
    ASSERT_FALSE(pipeline.ok()) << name;
    EXPECT_EQ(pipeline.status().code(), ErrorCode::kInvalidArgument) << name;
    EXPECT_NE(pipeline.status().message().find(expected), std::string::npos)
        << name << ": expected '" << expected << "', got\n"
        << pipeline.status().message();
  }
  EXPECT_GE(files, 8);
}

// ---- The node roles this binary plays -------------------------------------------------------

// publish CHANNEL COUNT SUBSCRIBERS: waits for SUBSCRIBERS, then publishes COUNT pattern samples.
int Publish(const std::string& name, uint64_t count, uint32_t subscribers) {
  auto channel = Channel::Attach(name);
  if (!channel.ok()) {
    std::fprintf(stderr, "attach: %s\n", channel.status().ToString().c_str());
    return 2;
  }
  auto publisher = channel->CreatePublisher();
  if (!publisher.ok()) return 3;
  const auto deadline = Clock::now() + seconds(20);
  while (publisher->subscriber_count() < subscribers) {
    if (Clock::now() > deadline) return 4;
    std::this_thread::sleep_for(milliseconds(1));
  }
  for (uint64_t seq = 0; seq < count; ++seq) {
    auto sample = publisher->Loan(PatternSize(seq, kMaxSampleBytes));
    if (!sample.ok()) return 5;
    FillPattern(sample->data(), seq);
    if (!publisher->Publish(std::move(*sample)).ok()) return 6;
  }
  // Exiting now is fine: subscribers drain what was published before they see the publisher
  // gone.
  return 0;
}

// subscribe CHANNEL COUNT: receives COUNT samples and checks every byte.
int Subscribe(const std::string& name, uint64_t count) {
  auto channel = Channel::Attach(name);
  if (!channel.ok()) {
    std::fprintf(stderr, "attach: %s\n", channel.status().ToString().c_str());
    return 2;
  }
  auto subscriber = channel->CreateSubscriber();
  if (!subscriber.ok()) return 3;
  for (uint64_t seq = 0; seq < count; ++seq) {
    auto sample = subscriber->Receive(seconds(20));
    if (!sample.ok()) {
      std::fprintf(stderr, "receive %llu: %s\n", static_cast<unsigned long long>(seq),
                   sample.status().ToString().c_str());
      return 4;
    }
    if (sample->size() != PatternSize(seq, kMaxSampleBytes) || !CheckPattern(sample->data(), seq)) {
      return 5;
    }
  }
  return 0;
}

int RunRole(std::string_view role, int argc, char** argv) {
  if (role == "publish" && argc == 4) {
    return Publish(argv[1], std::stoull(argv[2]), static_cast<uint32_t>(std::stoul(argv[3])));
  }
  if (role == "subscribe" && argc == 3) return Subscribe(argv[1], std::stoull(argv[2]));
  std::fprintf(stderr, "unknown role '%s' or wrong arguments\n", std::string(role).c_str());
  return 64;
}

}  // namespace
}  // namespace quiver::supervisor

int main(int argc, char** argv) {
  if (const char* role = std::getenv(quiver::supervisor::kRoleEnv)) {
    return quiver::supervisor::RunRole(role, argc, argv);
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
