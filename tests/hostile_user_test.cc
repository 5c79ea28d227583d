// Every door, tried by a hostile second local user (made with useradd, run with setpriv by
// tests/hostile_peer_main.cc): the Flight gateway, the control server, channel discovery and
// the channel directory. Each test skips with a message when not root.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>

#include "common/unique_fd.h"
#include "control/server.h"
#include "other_user.h"
#include "quiver/channel.h"
#include "test_support.h"

namespace quiver {
namespace {

using testing::OtherUser;
using testing::UniqueName;
using Clock = std::chrono::steady_clock;

constexpr int kGotIn = 0;
constexpr int kRefused = 10;

const std::string kPeer = std::string(QUIVER_TEST_PEER_DIR) + "/hostile_peer_main";
const std::string kQuiver = std::string(QUIVER_TEST_PEER_DIR) + "/quiver";

#define SKIP_WITHOUT_OTHER_USER()                      \
  do {                                                 \
    const std::string why = testing::WhyNoOtherUser(); \
    if (!why.empty()) GTEST_SKIP() << why;             \
  } while (false)

// A command run in the background through the shell (as whoever the command says), its
// stdout readable line by line; SIGKILLed with its process group at the end.
class Background {
 public:
  explicit Background(const std::string& command) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);
      ::dup2(fds[1], STDOUT_FILENO);
      ::execl("/bin/sh", "sh", "-c", command.c_str(), nullptr);
      ::_exit(127);
    }
    ::close(fds[1]);
    out_ = UniqueFd(fds[0]);
  }
  ~Background() {
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  /// Stops it with SIGTERM and returns its exit code (or 128 + signal).
  int Terminate() {
    ::kill(-pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  /// The next line of its stdout, or "" after `timeout`.
  std::string ReadLine(std::chrono::seconds timeout = std::chrono::seconds(30)) {
    std::string line;
    const auto deadline = Clock::now() + timeout;
    char c = 0;
    while (Clock::now() < deadline) {
      pollfd readable{out_.get(), POLLIN, 0};
      if (::poll(&readable, 1, 100) <= 0) continue;
      if (::read(out_.get(), &c, 1) != 1 || c == '\n') return line;
      line.push_back(c);
    }
    return line;
  }

 private:
  pid_t pid_ = -1;
  UniqueFd out_;
};

// A fresh directory (mode 0700 unless said otherwise), removed with its contents.
class TempDir {
 public:
  explicit TempDir(mode_t mode = 0700) {
    char pattern[] = "/tmp/qv-hostile-XXXXXX";
    path_ = ::mkdtemp(pattern) != nullptr ? pattern : "";
    ::chmod(path_.c_str(), mode);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A value of an environment variable for as long as this lives.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
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

// `quiver serve ARGS` with XDG_RUNTIME_DIR=`runtime`; returns its "listening on" line.
std::string StartServe(Background& serve) {
  const std::string line = serve.ReadLine();
  EXPECT_NE(line.find("listening on "), std::string::npos) << line;
  return line;
}

std::string LocationOf(const std::string& listening_line) {
  const size_t at = listening_line.find("listening on ");
  if (at == std::string::npos) return "";
  const std::string rest = listening_line.substr(at + 13);
  return rest.substr(0, rest.find(' '));
}

TEST(HostileUserTest, CannotReachQuiverServesDefaultSocket) {
  SKIP_WITHOUT_OTHER_USER();
  OtherUser other;
  ASSERT_TRUE(other.created()) << other.output();
  TempDir runtime;  // stands in for /run/user/UID: 0700
  const std::string name = UniqueName("hostile-serve");
  auto channel = Channel::Create(name, {.capacity = 1 << 20});
  ASSERT_TRUE(channel.ok());
  Background serve("XDG_RUNTIME_DIR=" + runtime.path() + " exec " + kQuiver + " serve");
  const std::string location = LocationOf(StartServe(serve));
  ASSERT_EQ(location, "grpc+unix://" + runtime.path() + "/quiver/flight.sock");
  std::string out;
  const std::string socket = location.substr(std::string("grpc+unix://").size());
  EXPECT_EQ(other.ExitCode(kPeer + " connect-unix " + socket, &out), kRefused) << out;
  EXPECT_EQ(other.ExitCode(kPeer + " flight-list " + location, &out), kRefused) << out;
  EXPECT_EQ(serve.Terminate(), 0);
}

TEST(HostileUserTest, CannotUseATcpListenerWithoutTheTokenLoopbackIncluded) {
  SKIP_WITHOUT_OTHER_USER();
  OtherUser other;
  ASSERT_TRUE(other.created()) << other.output();
  TempDir runtime;
  Background serve("XDG_RUNTIME_DIR=" + runtime.path() + " exec " + kQuiver +
                   " serve --listen grpc://127.0.0.1:0");
  const std::string line = StartServe(serve);
  EXPECT_NE(line.find("--token-file " + runtime.path() + "/quiver/flight-"), std::string::npos)
      << line;
  std::string out;
  EXPECT_EQ(other.ExitCode(kPeer + " flight-list " + LocationOf(line), &out), kRefused) << out;
  EXPECT_NE(out.find("bearer token"), std::string::npos) << out;
  // The token file is out of the other user's reach.
  const std::string token_file = line.substr(line.find("--token-file ") + 13);
  EXPECT_EQ(other.ExitCode("cat " + token_file.substr(0, token_file.find(')')), &out), 1) << out;
  EXPECT_EQ(serve.Terminate(), 0);
}

TEST(HostileUserTest, CannotListTheChannelDirectoryNorPlantANameInIt) {
  SKIP_WITHOUT_OTHER_USER();
  OtherUser other;
  ASSERT_TRUE(other.created()) << other.output();
  const std::string name = UniqueName("hostile-dir");
  auto channel = Channel::Create(name, {.capacity = 1 << 20});
  ASSERT_TRUE(channel.ok());
  const std::string dir = Channel::NamedDirectory();
  std::string out;
  EXPECT_EQ(other.ExitCode(kPeer + " list-dir " + dir, &out), kRefused) << out;
  EXPECT_EQ(other.ExitCode(kPeer + " plant-fifo " + dir + " " + name + "-planted", &out), kRefused)
      << out;
  // A FIFO where the old layout looked (/dev/shm/quiver-UID-NAME) is planted, and ignored:
  // ls and clean neither open it (which would hang) nor show it.
  const std::string old_style = "quiver-" + std::to_string(::geteuid()) + "-" + name + "-fifo";
  const std::string base = std::filesystem::path(dir).parent_path();
  other.ExitCode(kPeer + " plant-fifo " + base + " " + old_style, &out);
  for (const std::string command : {"ls", "ls --json", "clean --dry-run"}) {
    const auto start = Clock::now();
    int status = 0;
    const std::string listing = testing::Shell("timeout 20 " + kQuiver + " " + command, &status);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << command << ": " << listing;
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(10)) << command;
    EXPECT_EQ(listing.find(name + "-fifo"), std::string::npos) << listing;
  }
  ::unlink((base + "/" + old_style).c_str());
}

TEST(HostileUserTest, ASquattedChannelDirectoryIsRefusedAndSaidPlainly) {
  SKIP_WITHOUT_OTHER_USER();
  OtherUser other;
  ASSERT_TRUE(other.created()) << other.output();
  TempDir base(01777);  // a /dev/shm of its own, so no other test's channels are touched
  ScopedEnv shm_dir("QUIVER_SHM_DIR", base.path());
  std::string out;
  ASSERT_EQ(other.ExitCode(kPeer + " make-dir " + Channel::NamedDirectory(), &out), kGotIn) << out;
  auto created = Channel::Create("victim", {.capacity = 1 << 20});
  ASSERT_EQ(created.status().code(), ErrorCode::kPermissionDenied) << created.status().ToString();
  EXPECT_NE(created.status().message().find("belongs to uid " + std::to_string(other.uid())),
            std::string::npos)
      << created.status().message();
  EXPECT_NE(created.status().message().find("QUIVER_SHM_DIR"), std::string::npos);
  EXPECT_EQ(Channel::Open("victim").status().code(), ErrorCode::kPermissionDenied);
  int status = 0;
  const std::string ls =
      testing::Shell("QUIVER_SHM_DIR=" + base.path() + " " + kQuiver + " ls", &status);
  EXPECT_NE(ls.find("belongs to uid"), std::string::npos) << "ls says so: " << ls;
}

TEST(HostileUserTest, AFakeSupervisorIsNeitherWaitedForNorBelieved) {
  SKIP_WITHOUT_OTHER_USER();
  OtherUser other;
  ASSERT_TRUE(other.created()) << other.output();
  const std::string uid = std::to_string(::geteuid());
  const std::string as_other =
      "exec setpriv --reuid=" + other.name() + " --regid=" + other.name() + " --clear-groups ";
  Background silent(as_other + kPeer + " fake-supervisor " + uid + " silent");
  Background rows(as_other + kPeer + " fake-supervisor " + uid + " rows");
  ASSERT_NE(silent.ReadLine().find("listening on @quiver-" + uid), std::string::npos);
  ASSERT_NE(rows.ReadLine().find("listening on @quiver-" + uid), std::string::npos);
  for (const std::string command : {"ls", "ls --json", "top --iterations 1 --interval 0.1"}) {
    const auto start = Clock::now();
    int status = 0;
    const std::string listing = testing::Shell("timeout 20 " + kQuiver + " " + command, &status);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << command << ": " << listing;
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(5)) << command << " waited on it";
    EXPECT_EQ(listing.find("EVIL"), std::string::npos) << listing;
    EXPECT_EQ(listing.find("pwned"), std::string::npos) << listing;
  }
}

control::Handlers Echo() {
  control::Handlers handlers;
  EXPECT_TRUE(handlers
                  .Add(control::kCmdProcess,
                       [](const control::Envelope&) -> Result<control::Envelope> {
                         return control::MakeEnvelope(control::kResOk);
                       })
                  .ok());
  return handlers;
}

TEST(HostileUserTest, TheControlServerServesOnlyItsUser) {
  SKIP_WITHOUT_OTHER_USER();
  OtherUser other;
  ASSERT_TRUE(other.created()) << other.output();
  TempDir open_dir(0755);
  const std::string path = open_dir.path() + "/control.sock";
  control::ServeOptions options;
  options.exposes = [](std::string_view) { return true; };
  options.token = "s3cret";
  options.log = [](std::string_view) {};
  auto unix_server = control::Server::ListenUnix(path, Echo(), options);
  ASSERT_TRUE(unix_server.ok()) << unix_server.status().ToString();
  (*unix_server)->Start();
  // The window a socket has between bind and chmod, held open: its peer uid still decides.
  ASSERT_EQ(::chmod(path.c_str(), 0666), 0);
  std::string out;
  EXPECT_EQ(other.ExitCode(kPeer + " control-process " + path + " any", &out), kRefused) << out;
  EXPECT_NE(out.find("PERMISSION_DENIED"), std::string::npos) << out;

  auto tcp_server = control::Server::ListenTcp(0, Echo(), options);
  ASSERT_TRUE(tcp_server.ok()) << tcp_server.status().ToString();
  (*tcp_server)->Start();
  EXPECT_EQ(other.ExitCode(kPeer + " control-tcp " + std::to_string((*tcp_server)->port()) + " any",
                           &out),
            kRefused)
      << out;
  EXPECT_NE(out.find("UNAUTHENTICATED"), std::string::npos) << out;
}

}  // namespace
}  // namespace quiver
