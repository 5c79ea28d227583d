// The chaos test: a publisher and three subscribers under load, and a driver that strikes
// them at random moments, again and again, with one of three faults:
//   - SIGKILL of a random node (the publisher, or a subscriber while it receives, holds a
//     sample, joins or closes: subscribers close and join again now and then);
//   - SIGSTOP of a subscriber for 50-400 ms, then SIGCONT. Channel generations alternate
//     between the default `block` (the publisher waits it out, nothing is lost) and a
//     100 ms stall policy (the stopped one is evicted, says so when it runs again, and
//     joins anew; the publisher never waits more than 100 ms past the stall timeout);
//   - scribbles on shared fields from the driver, a third process: slot bits past the last
//     slot in active_mask, closing_mask and every descriptor's holders, garbage in free
//     slots' notification names (none of which anyone may use as an index).
//
//   quiver_chaos [--kills N] [--seed S] [--quiet]      the driver (run by ctest and make chaos);
//                                                       N faults of all kinds
//   quiver_chaos --role publisher|subscriber ...        the nodes it starts (not for people)
//
// After every fault the driver asserts:
//   - no subscriber ever saw a torn or corrupted sample: each sample carries its sequence,
//     its size and a hash of everything else, checked on receipt;
//   - no survivor hangs, and each learns of the death within 100 ms: subscribers report
//     PEER_GONE after a publisher's death; a dead subscriber's slot is free again (no slot
//     stays in use without a live subscriber, wherever it died);
//   - under `block` no published sample is lost for surviving subscribers: each one sees
//     consecutive sequence numbers from its first sample on, through the dead publisher's
//     last published one (half the subscribers that join a live channel do so with
//     `from_oldest`, and their backlog must join up with what follows the same way);
// and at the end that nothing of the test is left in /dev/shm and no process is left over.
// A dead publisher's channel takes no successor (docs/ARCHITECTURE.md), so each publisher
// death starts a new generation of the channel, which the subscribers move to.
//
// Where each node is (loaning, writing, publishing, receiving, holding) is kept in a shared
// "board" page, so the driver can say at which moment each kill struck.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "channel/layout.h"
#include "quiver/channel.h"
#include "shm/segment.h"

namespace {

using quiver::Channel;
using quiver::ErrorCode;

constexpr int kSubscribers = 3;
int64_t g_detection_limit_ns = 100'000'000;       // 100 ms (--limit-ms)
constexpr int64_t kHangLimitNs = 10'000'000'000;  // a wait this long is a hang

enum Phase : uint32_t {
  kIdle,
  kLoaning,
  kWriting,
  kPublishing,
  kReceiving,
  kHolding,
  kJoining,
  kClosing,
  kPhases
};
const char* const kPhaseNames[kPhases] = {"idle",      "loaning", "writing", "publishing",
                                          "receiving", "holding", "joining", "closing"};
constexpr auto kStallTimeout = std::chrono::milliseconds(100);  // even generations

// Shared between the driver and its nodes (a memfd the nodes inherit).
struct Board {
  std::atomic<uint32_t> generation;               // the channel generation nodes should use
  std::atomic<uint32_t> phase[1 + kSubscribers];  // [0] publisher, [1..3] subscribers
  std::atomic<int64_t> completed;  // the last sequence whose Publish() returned, or -1
  std::atomic<uint32_t> churn;     // 1: subscribers close and join again now and then
};

int64_t NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

std::string ChannelName(const std::string& base, uint32_t generation) {
  return base + "-g" + std::to_string(generation);
}

// ---- Sample contents ---------------------------------------------------------------------
// [0,8) sequence, [8,16) size, [16,size-8) pseudo-random bytes of the sequence,
// [size-8,size) FNV-1a of everything before.

uint64_t Fnv(const std::byte* data, size_t size) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < size; ++i) {
    hash = (hash ^ static_cast<uint8_t>(data[i])) * 0x100000001b3ull;
  }
  return hash;
}

void FillBody(std::byte* data, size_t from, size_t to, uint64_t seq) {
  uint64_t x = seq * 0x9e3779b97f4a7c15ull + from;
  for (size_t i = from; i < to; ++i) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    data[i] = static_cast<std::byte>(x >> 56);
  }
}

std::string CheckSample(const quiver::Sample& sample) {
  const std::byte* data = sample.data().data();
  const size_t size = sample.size();
  if (size < 24) return "sample of " + std::to_string(size) + " bytes is too small";
  uint64_t seq = 0, declared = 0, hash = 0;
  std::memcpy(&seq, data, 8);
  std::memcpy(&declared, data + 8, 8);
  std::memcpy(&hash, data + size - 8, 8);
  if (declared != size)
    return "declared size " + std::to_string(declared) + " != " + std::to_string(size);
  if (seq != sample.sequence()) {
    return "content sequence " + std::to_string(seq) + " != channel sequence " +
           std::to_string(sample.sequence());
  }
  if (Fnv(data, size - 8) != hash)
    return "hash mismatch: torn or corrupted sample " + std::to_string(seq);
  return "";
}

// A channel's control area mapped read-write, as any attached process can: for the driver's
// scribbles and its look at which slots are in use.
class ControlArea {
 public:
  explicit ControlArea(const Channel& channel) {
    void* first = mmap(nullptr, quiver::channel::kPageSize, PROT_READ, MAP_SHARED, channel.fd(), 0);
    if (first == MAP_FAILED) std::abort();
    std::memcpy(&config_, first, sizeof(config_));
    munmap(first, quiver::channel::kPageSize);
    size_ = config_.data_offset;
    bytes_ = static_cast<std::byte*>(
        mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, channel.fd(), 0));
    if (bytes_ == MAP_FAILED) std::abort();
  }
  ControlArea(const ControlArea&) = delete;
  ControlArea& operator=(const ControlArea&) = delete;
  ~ControlArea() { munmap(bytes_, size_); }
  quiver::channel::ChannelHeader& header() {
    return *reinterpret_cast<quiver::channel::ChannelHeader*>(bytes_);
  }
  quiver::channel::SampleDesc& desc(uint32_t i) {
    return reinterpret_cast<quiver::channel::SampleDesc*>(bytes_ + config_.descs_offset)[i];
  }
  quiver::channel::SubscriberSlot& slot(uint32_t i) {
    return reinterpret_cast<quiver::channel::SubscriberSlot*>(bytes_ + config_.slots_offset)[i];
  }
  const quiver::channel::ChannelConfig& config() const { return config_; }

 private:
  quiver::channel::ChannelConfig config_{};
  std::byte* bytes_ = nullptr;
  size_t size_ = 0;
};

// ---- Nodes -------------------------------------------------------------------------------

Board* MapBoard(int fd) {
  void* map = mmap(nullptr, sizeof(Board), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) {
    std::perror("mmap board");
    std::exit(2);
  }
  return static_cast<Board*>(map);
}

void Say(const std::string& line) {
  std::string out = line + "\n";
  if (write(STDOUT_FILENO, out.data(), out.size()) < 0) _exit(3);
}

int RunPublisher(const std::string& base, Board* board, uint32_t generation, uint64_t seed) {
  std::atomic<uint32_t>& phase = board->phase[0];
  auto channel = Channel::Open(ChannelName(base, generation));
  if (!channel.ok()) return Say("error open: " + channel.status().ToString()), 1;
  auto publisher = channel->CreatePublisher();
  if (!publisher.ok()) return Say("error publisher: " + publisher.status().ToString()), 1;
  board->completed.store(-1);
  Say("ready");
  std::mt19937_64 rng(seed);
  for (uint64_t seq = 0;; ++seq) {
    const size_t size = 24 + rng() % (64 << 10);
    phase.store(kLoaning, std::memory_order_relaxed);
    auto loan = publisher->Loan(size);
    if (!loan.ok()) return Say("error loan: " + loan.status().ToString()), 1;
    phase.store(kWriting, std::memory_order_relaxed);
    std::byte* data = loan->data().data();
    std::memcpy(data, &seq, 8);
    std::memcpy(data + 8, &size, 8);
    const size_t middle = 16 + (size - 24) / 2;
    FillBody(data, 16, middle, seq);
    if (rng() % 8 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));  // a
    FillBody(data, middle, size - 8, seq);  // kill here leaves a half-written loan
    const uint64_t hash = Fnv(data, size - 8);
    std::memcpy(data + size - 8, &hash, 8);
    phase.store(kPublishing, std::memory_order_relaxed);
    const quiver::Status published = publisher->Publish(std::move(*loan));
    if (!published.ok()) return Say("error publish: " + published.ToString()), 1;
    board->completed.store(static_cast<int64_t>(seq), std::memory_order_relaxed);
    phase.store(kIdle, std::memory_order_relaxed);
  }
}

int RunSubscriber(const std::string& base, Board* board, int index, uint64_t seed) {
  std::atomic<uint32_t>& phase = board->phase[index];
  std::mt19937_64 rng(seed);
  uint32_t generation = board->generation.load();
  std::optional<Channel> channel;
  std::optional<quiver::Subscriber> subscriber;
  bool from_oldest = false;
  uint64_t published_before = 0;
  // Takes a slot of the current generation's channel (kJoining is a moment kills aim at).
  auto join = [&]() -> int {
    phase.store(kJoining, std::memory_order_relaxed);
    from_oldest = rng() % 2 == 0;  // half the joins start from the backlog others hold
    published_before = channel->Stats().published;
    auto made = channel->CreateSubscriber({.from_oldest = from_oldest});
    if (!made.ok()) return Say("error subscriber: " + made.status().ToString()), 1;
    subscriber.emplace(std::move(*made));
    Say("attached " + std::to_string(generation));
    return 0;
  };
  // Gives the slot back (kClosing: kills aim there too).
  auto close = [&] {
    phase.store(kClosing, std::memory_order_relaxed);
    subscriber.reset();
    phase.store(kIdle, std::memory_order_relaxed);
  };
  for (;;) {
    {
      auto opened = Channel::Open(ChannelName(base, generation));
      if (!opened.ok()) {
        if (opened.status().code() != ErrorCode::kNotFound) {
          return Say("error open: " + opened.status().ToString()), 1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        generation = std::max(generation, board->generation.load());
        continue;
      }
      channel.emplace(std::move(*opened));
      if (join() != 0) return 1;
    }
    int64_t last = -1;
    uint64_t count = 0;
    for (;;) {
      phase.store(kReceiving, std::memory_order_relaxed);
      auto sample = subscriber->Receive(std::chrono::milliseconds(20));
      if (sample.ok()) {
        phase.store(kHolding, std::memory_order_relaxed);
        const std::string wrong = CheckSample(*sample);
        if (!wrong.empty()) return Say("error " + wrong), 1;
        const auto seq = static_cast<int64_t>(sample->sequence());
        if (last >= 0 && seq != last + 1) {
          return Say("error gap: sequence " + std::to_string(seq) + " after " +
                     std::to_string(last) + " in generation " + std::to_string(generation)),
                 1;
        }
        if (last < 0 && from_oldest) {
          const auto before = static_cast<int64_t>(published_before);
          Say("backlog " + std::to_string(seq < before ? before - seq : 0));
        }
        last = seq;
        ++count;
        if (rng() % 16 == 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
        if (board->churn.load() != 0 && rng() % 128 == 0) {  // leave and come back
          sample = quiver::Status::Timeout("released");      // hold nothing now
          close();
          if (join() != 0) return 1;
          last = -1;
          count = 0;
        }
        continue;
      }
      if (sample.status().code() == ErrorCode::kTimeout) continue;
      if (sample.status().code() == ErrorCode::kEvicted) {
        // Stopped past the stall policy: what it had not received was dropped. It says so,
        // and joins again.
        Say("evicted " + std::to_string(generation) + " " + std::to_string(last) + " " +
            std::to_string(count));
        close();
        if (join() != 0) return 1;
        last = -1;
        count = 0;
        continue;
      }
      if (sample.status().code() != ErrorCode::kPeerGone) {
        return Say("error receive: " + sample.status().ToString()), 1;
      }
      const int64_t noticed = NowNs();
      phase.store(kIdle, std::memory_order_relaxed);
      subscriber.reset();
      channel.reset();
      Say("gone " + std::to_string(generation) + " " + std::to_string(noticed) + " " +
          std::to_string(last) + " " + std::to_string(count));
      ++generation;
      break;
    }
  }
}

// ---- Driver ------------------------------------------------------------------------------

struct Node {
  pid_t pid = -1;
  int out = -1;  // its stdout
  std::string pending;
  std::optional<uint32_t> attached;  // generation it last attached to
  struct Gone {
    uint32_t generation;
    int64_t at_ns;
    int64_t last;
    uint64_t count;
  };
  std::vector<Gone> gone;
  bool ready = false;
  uint64_t evictions = 0;
};

struct Stats {
  std::map<std::string, uint64_t> kills;  // "publisher/writing" -> n
  std::vector<int64_t> publisher_detect_ns, subscriber_detect_ns;
  uint64_t generations = 1, verified_published = 0, cut_short_publishes = 0;
  uint64_t oldest_joins = 0, backlog_joins = 0, backlog_samples = 0;  // from_oldest
  uint64_t stops_block = 0, stops_policy = 0, evictions = 0, scribbles = 0;
  int64_t longest_wait_with_policy_ns = 0;  // how long a publisher waited, stall policy on
  int64_t longest_wait_without_ns = 0;      // and without it (the whole stop)
};

[[noreturn]] void Fail(const std::string& why, uint64_t seed) {
  std::fprintf(stderr, "quiver_chaos: FAILED: %s\n  (replay with --seed %llu)\n", why.c_str(),
               static_cast<unsigned long long>(seed));
  std::fflush(stderr);
  kill(0, SIGKILL);  // the whole process group: no node is left over
  _exit(1);
}

class Driver {
 public:
  Driver(uint64_t seed, bool quiet) : seed_(seed), quiet_(quiet), rng_(seed) {
    base_ = "chaos-" + std::to_string(getpid());
    board_fd_ = memfd_create("quiver-chaos-board", 0);  // inherited by the nodes
    if (board_fd_ < 0 || ftruncate(board_fd_, sizeof(Board)) != 0) Fail("board memfd", seed_);
    board_ = MapBoard(board_fd_);
  }

  int Run(int kills) {
    const int64_t start = NowNs();
    board_->churn.store(1);  // the soak keeps every subscriber from start to end
    StartNodes();

    std::uniform_int_distribution<int> pause_us(1000, 30000);
    for (int k = 1; k <= kills; ++k) {
      Pump(NowNs() + int64_t{pause_us(rng_)} * 1000);  // under load for a random while
      // Of ten faults: two publisher kills, five subscriber kills, two stops, one scribble.
      const int fault = static_cast<int>(rng_() % 10);
      const int subscriber = 1 + static_cast<int>(rng_() % kSubscribers);
      if (fault < 2) {
        KillPublisher();
      } else if (fault < 7) {
        KillSubscriber(subscriber);
      } else if (fault < 9) {
        StopSubscriber(subscriber);
      } else {
        Scribble();
      }
      if (!quiet_ && (k % 100 == 0 || k == kills)) {
        std::fprintf(stderr, "quiver_chaos: %d/%d faults, generation %u, %.1f s\n", k, kills,
                     generation_, static_cast<double>(NowNs() - start) / 1e9);
      }
    }
    Finish();
    Report(kills, static_cast<double>(NowNs() - start) / 1e9);
    return 0;
  }

 public:
  // No kills: full rate for `seconds`, sampling every node's RSS and open fds; then the
  // publisher is stopped and every counter must agree.
  int Soak(double seconds) {
    const int64_t start = NowNs();
    StartNodes();
    const int64_t interval = std::min<int64_t>(10'000'000'000, static_cast<int64_t>(seconds * 1e8));
    std::vector<std::vector<std::pair<long, int>>> samples;  // per sample: (RSS KiB, fds) per node
    while (NowNs() - start < static_cast<int64_t>(seconds * 1e9)) {
      Pump(NowNs() + interval);
      std::vector<std::pair<long, int>> row;
      for (Node* node : All()) row.emplace_back(RssKib(node->pid), OpenFds(node->pid));
      samples.push_back(row);
      if (!quiet_) {
        const quiver::ChannelStats stats = current_->Stats();
        std::fprintf(stderr,
                     "quiver_chaos: soak %.0f s: %llu samples, %.0f MB published; RSS "
                     "KiB pub %ld subs %ld %ld %ld; fds pub %d\n",
                     static_cast<double>(NowNs() - start) / 1e9,
                     static_cast<unsigned long long>(stats.published),
                     static_cast<double>(stats.published_bytes) / 1e6, row[0].first, row[1].first,
                     row[2].first, row[3].first, row[0].second);
      }
    }
    // Flat: after the first sample (warm-up), no node's RSS grows by more than 4 MiB and
    // no node's fd count changes.
    for (size_t n = 0; n < samples.front().size(); ++n) {
      for (const auto& row : samples) {
        if (row[n].first > samples.front()[n].first + 4096) {
          Fail("soak: node " + std::to_string(n) + " RSS grew from " +
                   std::to_string(samples.front()[n].first) + " to " +
                   std::to_string(row[n].first) + " KiB",
               seed_);
        }
        if (row[n].second != samples.front()[n].second) {
          Fail("soak: node " + std::to_string(n) + " fds went from " +
                   std::to_string(samples.front()[n].second) + " to " +
                   std::to_string(row[n].second),
               seed_);
        }
      }
    }
    const quiver::ChannelStats before = current_->Stats();
    KillPublisher();  // every subscriber drains and reports what it received
    uint64_t published = before.published;
    for (const Node& sub : subscribers_) {
      const Node::Gone& gone = sub.gone.back();
      // Every subscriber was there from the first sample: it received every one.
      if (gone.count != static_cast<uint64_t>(gone.last + 1) || gone.count < published) {
        Fail("soak: a subscriber received " + std::to_string(gone.count) + " samples (last " +
                 std::to_string(gone.last) + ") of at least " + std::to_string(published),
             seed_);
      }
    }
    Finish();
    std::printf(
        "quiver_chaos: soak PASSED: %.0f s at full rate, %llu samples (%.1f GB) to 3 "
        "subscribers, each received all; RSS and fds flat over %zu samples (RSS KiB "
        "at start/end: publisher %ld/%ld, subscriber %ld/%ld; fds %d/%d)\n",
        static_cast<double>(NowNs() - start) / 1e9,
        static_cast<unsigned long long>(subscribers_[0].gone.back().count),
        static_cast<double>(before.published_bytes) / 1e9, samples.size(), samples.front()[0].first,
        samples.back()[0].first, samples.front()[1].first, samples.back()[1].first,
        samples.front()[0].second, samples.back()[0].second);
    return 0;
  }

  static long RssKib(pid_t pid) {
    FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/status").c_str(), "r");
    long rss = -1;
    char line[256];
    while (f != nullptr && std::fgets(line, sizeof(line), f) != nullptr) {
      if (std::sscanf(line, "VmRSS: %ld", &rss) == 1) break;
    }
    if (f != nullptr) std::fclose(f);
    return rss;
  }

  static int OpenFds(pid_t pid) {
    std::error_code ec;
    int n = 0;
    for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
      ++n;
    }
    return n;
  }

 private:
  // The first generation of the channel, three subscribers on it, then the publisher.
  void StartNodes() {
    NewGeneration();
    for (int i = 1; i <= kSubscribers; ++i) subscribers_[i - 1] = Spawn("subscriber", i);
    AwaitAttached(generation_);
    publisher_ = Spawn("publisher", 0);
    AwaitReady(publisher_);
  }

  Node Spawn(const char* role, int index) {
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) Fail("pipe", seed_);
    const std::string board = std::to_string(board_fd_);
    const std::string idx = std::to_string(index);
    const std::string gen = std::to_string(generation_);
    const std::string seed = std::to_string(rng_());
    const pid_t pid = fork();
    if (pid == 0) {
      dup2(pipe_fds[1], STDOUT_FILENO);
      execl("/proc/self/exe", "quiver_chaos", "--role", role, "--base", base_.c_str(), "--board",
            board.c_str(), "--index", idx.c_str(), "--generation", gen.c_str(), "--seed",
            seed.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(pipe_fds[1]);
    Node node;
    node.pid = pid;
    node.out = pipe_fds[0];
    return node;
  }

  // Even generations have the stall policy, odd ones the default (`block`, no eviction).
  bool StallPolicy() const { return generation_ % 2 == 0; }

  void NewGeneration() {
    ++generation_;
    quiver::ChannelOptions options{.capacity = 2 << 20, .max_samples = 64};
    if (StallPolicy()) options.stall_timeout = kStallTimeout;
    auto channel = Channel::Create(ChannelName(base_, generation_), options);
    if (!channel.ok()) Fail("create: " + channel.status().ToString(), seed_);
    previous_ = std::move(current_);
    current_.emplace(std::move(*channel));
    board_->generation.store(generation_);
  }

  // Reads what the nodes say until `deadline`, failing on any error they report.
  void Pump(int64_t deadline) {
    do {
      std::vector<pollfd> fds;
      std::vector<Node*> nodes;
      for (Node* node : All()) {
        if (node->out >= 0) {
          fds.push_back({node->out, POLLIN, 0});
          nodes.push_back(node);
        }
      }
      const int64_t left_ms = std::max<int64_t>(0, (deadline - NowNs()) / 1'000'000);
      if (poll(fds.data(), fds.size(), static_cast<int>(std::min<int64_t>(left_ms, 5))) < 0 &&
          errno != EINTR) {
        Fail("poll", seed_);
      }
      for (size_t i = 0; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        char buf[4096];
        const ssize_t n = read(fds[i].fd, buf, sizeof(buf));
        if (n <= 0) {
          close(nodes[i]->out);
          nodes[i]->out = -1;
          continue;
        }
        nodes[i]->pending.append(buf, static_cast<size_t>(n));
        size_t eol;
        while ((eol = nodes[i]->pending.find('\n')) != std::string::npos) {
          Handle(*nodes[i], nodes[i]->pending.substr(0, eol));
          nodes[i]->pending.erase(0, eol + 1);
        }
      }
      for (Node* node : All()) {  // a node that died on its own is a failure
        int status = 0;
        if (node->pid > 0 && waitpid(node->pid, &status, WNOHANG) == node->pid) {
          node->pid = -1;
          char buf[4096];  // what it said last (an "error ..." line fails with its reason)
          ssize_t n;
          while (node->out >= 0 && (n = read(node->out, buf, sizeof(buf))) > 0) {
            node->pending.append(buf, static_cast<size_t>(n));
          }
          size_t eol;
          while ((eol = node->pending.find('\n')) != std::string::npos) {
            Handle(*node, node->pending.substr(0, eol));
            node->pending.erase(0, eol + 1);
          }
          Fail("a node exited by itself (wait status " + std::to_string(status) + ")", seed_);
        }
      }
    } while (NowNs() < deadline);
  }

  void Handle(Node& node, const std::string& line) {
    if (line.rfind("error", 0) == 0) Fail("a node reported: " + line, seed_);
    if (line == "ready") {
      node.ready = true;
    } else if (line.rfind("attached ", 0) == 0) {
      node.attached = static_cast<uint32_t>(std::stoul(line.substr(9)));
    } else if (line.rfind("backlog ", 0) == 0) {
      const uint64_t samples = std::stoull(line.substr(8));
      ++stats_.oldest_joins;
      if (samples > 0) ++stats_.backlog_joins;
      stats_.backlog_samples += samples;
    } else if (line.rfind("evicted ", 0) == 0) {
      ++stats_.evictions;
      ++node.evictions;
    } else if (line.rfind("gone ", 0) == 0) {
      Node::Gone gone{};
      unsigned generation = 0;
      long long at = 0, last = 0;
      unsigned long long count = 0;
      if (std::sscanf(line.c_str(), "gone %u %lld %lld %llu", &generation, &at, &last, &count) !=
          4) {
        Fail("unreadable line: " + line, seed_);
      }
      gone = {generation, at, last, count};
      node.gone.push_back(gone);
    } else {
      Fail("unexpected line: " + line, seed_);
    }
  }

  template <typename Predicate>
  void AwaitOrFail(Predicate done, const std::string& what) {
    const int64_t deadline = NowNs() + kHangLimitNs;
    while (!done()) {
      if (NowNs() > deadline) Fail("hang: " + what, seed_);
      Pump(NowNs() + 1'000'000);
    }
  }

  void AwaitReady(Node& node) {
    AwaitOrFail([&] { return node.ready; }, "the publisher did not start");
  }

  void AwaitAttached(uint32_t generation) {
    for (Node& sub : subscribers_) {
      AwaitOrFail([&] { return sub.attached == generation; },
                  "a subscriber did not attach to generation " + std::to_string(generation));
    }
  }

  std::string PhaseOf(int index) const {
    return kPhaseNames[std::min<uint32_t>(board_->phase[index].load(), kPhases - 1)];
  }

  // Waits (up to 50 ms) until node `index` is in one of `phases`, so kills land in short
  // moments too (a publish takes about a microsecond), not only in the long ones.
  void AimAt(int index, std::initializer_list<Phase> phases) {
    const Phase target = *(phases.begin() + rng_() % phases.size());
    const int64_t until = NowNs() + 50'000'000;
    while (board_->phase[index].load() != target && NowNs() < until) {
    }
  }

  void KillNode(Node& node) {
    kill(node.pid, SIGKILL);
    int status = 0;
    waitpid(node.pid, &status, 0);
    node.pid = -1;
    if (node.out >= 0) close(node.out);
    node.out = -1;
  }

  void KillPublisher() {
    const uint32_t generation = generation_;
    std::vector<size_t> gone_before;
    for (Node& sub : subscribers_) gone_before.push_back(sub.gone.size());
    AimAt(0, {kLoaning, kWriting, kPublishing});
    const int64_t killed_at = NowNs();
    KillNode(publisher_);
    ++stats_.kills["publisher/" + PhaseOf(0)];  // where it was when it died
    // Every subscriber drains what was queued, then learns of the death.
    for (size_t i = 0; i < subscribers_.size(); ++i) {
      Node& sub = subscribers_[i];
      AwaitOrFail([&] { return sub.gone.size() > gone_before[i]; },
                  "a subscriber never learned that the publisher died");
      const Node::Gone& gone = sub.gone.back();
      if (gone.generation != generation) Fail("a subscriber left the wrong generation", seed_);
      const int64_t latency = gone.at_ns - killed_at;
      stats_.publisher_detect_ns.push_back(latency);
      if (latency > g_detection_limit_ns) {
        Fail("a subscriber learned of the publisher's death after " +
                 std::to_string(latency / 1'000'000) + " ms",
             seed_);
      }
    }
    // Nothing lost under `block`: each subscriber got every sample whose Publish()
    // returned (gaps before were refused by the subscriber itself), and at most the one
    // the publisher died publishing (a publish cut short reaches a prefix of the slots).
    const int64_t completed = board_->completed.load();
    stats_.verified_published += static_cast<uint64_t>(completed + 1);
    for (const Node& sub : subscribers_) {
      const Node::Gone& gone = sub.gone.back();
      if (gone.count > 0 && (gone.last < completed || gone.last > completed + 1)) {
        Fail("a surviving subscriber's last sample was " + std::to_string(gone.last) +
                 ", the publisher's last completed publish " + std::to_string(completed) +
                 ": samples lost",
             seed_);
      }
      if (gone.last == completed + 1) ++stats_.cut_short_publishes;
    }
    NewGeneration();
    ++stats_.generations;
    AwaitAttached(generation_);
    previous_.reset();  // the last holder of the dead publisher's channel: removes it
    publisher_ = Spawn("publisher", 0);
    AwaitReady(publisher_);
  }

  // Slots of the current channel in use (Active or Closing), read as any process could.
  int SlotsInUse() {
    int in_use = 0;
    ControlArea area(*current_);
    for (uint32_t i = 0; i < area.config().max_subscribers; ++i) {
      if (area.slot(i).state.load() != 0) ++in_use;
    }
    return in_use;
  }

  void KillSubscriber(int index) {
    Node& sub = subscribers_[index - 1];
    AimAt(index, {kReceiving, kHolding, kJoining, kClosing});
    const int64_t killed_at = NowNs();
    KillNode(sub);
    ++stats_.kills["subscriber/" + PhaseOf(index)];
    // Wherever it died (receiving, holding, half joined, half closed), its slot is free
    // again soon: the publisher, loaning at full rate, finds it and reclaims its samples.
    AwaitOrFail([&] { return SlotsInUse() <= kSubscribers - 1; },
                "a dead subscriber's slot stayed in use (it would hang a block channel)");
    const int64_t latency = NowNs() - killed_at;
    stats_.subscriber_detect_ns.push_back(latency);
    if (latency > g_detection_limit_ns) {
      Fail("the publisher learned of a subscriber's death after " +
               std::to_string(latency / 1'000'000) + " ms",
           seed_);
    }
    sub = Spawn("subscriber", index);
    AwaitOrFail([&] { return sub.attached == generation_; }, "a new subscriber did not attach");
  }

  // SIGSTOP for 50-400 ms, then SIGCONT: with the stall policy the stopped subscriber is
  // evicted and the publisher waits at most 100 ms past the stall timeout; without it the
  // publisher waits the stop out and nothing is lost.
  void StopSubscriber(int index) {
    Node& sub = subscribers_[index - 1];
    const bool policy = StallPolicy();
    const uint64_t evictions = sub.evictions;
    AimAt(index, {kReceiving, kHolding});
    kill(sub.pid, SIGSTOP);
    int status = 0;
    if (waitpid(sub.pid, &status, WUNTRACED) != sub.pid || !WIFSTOPPED(status)) {
      Fail("a subscriber did not stop", seed_);
    }
    const int64_t stop_ns = int64_t{50 + static_cast<int64_t>(rng_() % 351)} * 1'000'000;
    const int64_t until = NowNs() + stop_ns;
    int64_t longest = 0;
    while (NowNs() < until) {
      Pump(NowNs() + 1'000'000);
      longest = std::max<int64_t>(
          longest, std::chrono::nanoseconds(current_->Stats().publisher_waiting).count());
    }
    kill(sub.pid, SIGCONT);
    if (policy) {
      ++stats_.stops_policy;
      stats_.longest_wait_with_policy_ns = std::max(stats_.longest_wait_with_policy_ns, longest);
      const int64_t limit = std::chrono::nanoseconds(kStallTimeout).count() + g_detection_limit_ns;
      if (longest > limit) {
        Fail("with a stall policy of " + std::to_string(kStallTimeout.count()) +
                 " ms, the publisher waited " + std::to_string(longest / 1'000'000) +
                 " ms for a stopped subscriber",
             seed_);
      }
    } else {
      ++stats_.stops_block;
      stats_.longest_wait_without_ns = std::max(stats_.longest_wait_without_ns, longest);
    }
    // An evicted subscriber says so once it runs, and joins again; one that was not
    // evicted goes on (its own checks refuse any gap).
    const int64_t settle = NowNs() + 200'000'000;
    Pump(settle);
    if (!policy && sub.evictions != evictions) {
      Fail("a subscriber was evicted from a channel without a stall policy", seed_);
    }
    AwaitOrFail([&] { return sub.attached == generation_; }, "a resumed subscriber did not attach");
  }

  // Writes slot bits past the last slot into active_mask, closing_mask and every
  // descriptor's holders, and garbage into free slots' notification names, for ~10 ms:
  // nobody may use those as an index; the other checks go on as always.
  void Scribble() {
    ++stats_.scribbles;
    ControlArea area(*current_);
    const uint64_t junk = ~uint64_t{0} << area.config().max_subscribers;
    const int64_t until = NowNs() + 10'000'000;
    while (NowNs() < until) {
      area.header().active_mask.fetch_or(junk);
      area.header().closing_mask.fetch_or(junk);
      for (uint32_t d = 0; d < area.config().max_samples; ++d) area.desc(d).holders.fetch_or(junk);
      for (uint32_t i = 0; i < area.config().max_subscribers; ++i) {
        if (area.slot(i).state.load() == 0) std::memset(area.slot(i).notify_name, 'x', 48);
      }
      Pump(NowNs() + 1'000'000);
    }
  }

  void Finish() {
    for (Node* node : All()) KillNode(*node);
    current_.reset();
    previous_.reset();
    int status = 0;
    if (waitpid(-1, &status, WNOHANG) != -1 || errno != ECHILD)
      Fail("a process is left over", seed_);
    std::vector<std::string> left;
    for (const std::string& name : quiver::shm::Segment::ListNamed().ValueOr({})) {
      if (name.rfind(base_, 0) == 0) left.push_back(name);
    }
    if (!left.empty())
      Fail(
          "left in /dev/shm: " + left.front() + " and " + std::to_string(left.size() - 1) + " more",
          seed_);
  }

  static std::string Percentiles(std::vector<int64_t> ns) {
    if (ns.empty()) return "none";
    std::sort(ns.begin(), ns.end());
    auto at = [&](double q) {
      return static_cast<double>(ns[std::min(ns.size() - 1, static_cast<size_t>(q * ns.size()))]) /
             1e6;
    };
    char buf[160];
    std::snprintf(buf, sizeof(buf), "n=%zu p50=%.1f ms p99=%.1f ms max=%.1f ms", ns.size(), at(0.5),
                  at(0.99), static_cast<double>(ns.back()) / 1e6);
    return buf;
  }

  void Report(int kills, double seconds) {
    uint64_t killed = 0;
    for (const auto& [what, n] : stats_.kills) killed += n;
    std::printf(
        "quiver_chaos: PASSED: %d faults survived in %.1f s (seed %llu): %llu SIGKILLs, %llu "
        "SIGSTOPs, %llu scribbles\n",
        kills, seconds, static_cast<unsigned long long>(seed_),
        static_cast<unsigned long long>(killed),
        static_cast<unsigned long long>(stats_.stops_block + stats_.stops_policy),
        static_cast<unsigned long long>(stats_.scribbles));
    std::printf("  kills by moment:");
    for (const auto& [what, n] : stats_.kills)
      std::printf(" %s=%llu", what.c_str(), static_cast<unsigned long long>(n));
    std::printf(
        "\n  channel generations: %llu; samples published and verified gap-free by every "
        "subscriber at each publisher death: %llu\n",
        static_cast<unsigned long long>(stats_.generations),
        static_cast<unsigned long long>(stats_.verified_published));
    std::printf("  subscribers that got the sample a dying publisher was publishing: %llu\n",
                static_cast<unsigned long long>(stats_.cut_short_publishes));
    std::printf(
        "  subscribers that joined from_oldest and received: %llu; started with a backlog: "
        "%llu (%llu samples published before they joined)\n",
        static_cast<unsigned long long>(stats_.oldest_joins),
        static_cast<unsigned long long>(stats_.backlog_joins),
        static_cast<unsigned long long>(stats_.backlog_samples));
    std::printf("  publisher death -> subscriber knows: %s\n",
                Percentiles(stats_.publisher_detect_ns).c_str());
    std::printf("  subscriber death -> its slot is free again: %s\n",
                Percentiles(stats_.subscriber_detect_ns).c_str());
    std::printf(
        "  subscribers stopped 50-400 ms: %llu without a stall policy (the publisher waited up "
        "to %.0f ms, nothing lost), %llu with a %lld ms one (%llu evicted; the publisher waited "
        "at most %.0f ms)\n",
        static_cast<unsigned long long>(stats_.stops_block),
        static_cast<double>(stats_.longest_wait_without_ns) / 1e6,
        static_cast<unsigned long long>(stats_.stops_policy),
        static_cast<long long>(kStallTimeout.count()),
        static_cast<unsigned long long>(stats_.evictions),
        static_cast<double>(stats_.longest_wait_with_policy_ns) / 1e6);
    std::printf("  left in /dev/shm: nothing; processes left: none\n");
  }

  std::vector<Node*> All() {
    std::vector<Node*> all{&publisher_};
    for (Node& sub : subscribers_) all.push_back(&sub);
    return all;
  }

  uint64_t seed_;
  bool quiet_;
  std::mt19937_64 rng_;
  std::string base_;
  int board_fd_ = -1;
  Board* board_ = nullptr;
  uint32_t generation_ = 0;
  std::optional<Channel> current_, previous_;
  Node publisher_;
  std::array<Node, kSubscribers> subscribers_;
  Stats stats_;
};

const char* Arg(int argc, char** argv, const char* flag, const char* fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], flag) == 0) return argv[i + 1];
  }
  return fallback;
}

bool Flag(int argc, char** argv, const char* flag) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], flag) == 0) return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  if (Flag(argc, argv, "--help") || Flag(argc, argv, "-h")) {
    std::printf(
        "usage: quiver_chaos [--kills N | --soak SECONDS] [--seed S] [--limit-ms MS] [--quiet]\n"
        "  A publisher and 3 subscribers under load; N SIGKILLs of a random one at random\n"
        "  moments (default 1000); fails on a torn sample, a lost sample, a death noticed\n"
        "  after more than 100 ms (--limit-ms), a hang, or anything left over. --soak: no kills, "
        "full\n"
        "  rate for SECONDS; RSS and open fds of every node must stay flat, and every\n"
        "  subscriber must have received every sample. See tests/chaos/.\n");
    return 0;
  }
  const std::string role = Arg(argc, argv, "--role", "");
  const uint64_t seed = std::strtoull(
      Arg(argc, argv, "--seed", std::to_string(std::random_device{}()).c_str()), nullptr, 10);
  if (role.empty()) {
    const double soak = std::atof(Arg(argc, argv, "--soak", "0"));
    if (soak > 0) {
      setpgid(0, 0);
      return Driver(seed, Flag(argc, argv, "--quiet")).Soak(soak);
    }
    g_detection_limit_ns = int64_t{std::atoi(Arg(argc, argv, "--limit-ms", "100"))} * 1'000'000;
    const int kills = std::atoi(Arg(argc, argv, "--kills", "1000"));
    if (kills < 0) return std::fprintf(stderr, "--kills must be >= 0\n"), 2;
    setpgid(0, 0);  // its own process group, so a failure can kill every node at once
    std::printf("quiver_chaos: %d kills, seed %llu\n", kills,
                static_cast<unsigned long long>(seed));
    std::fflush(stdout);
    return Driver(seed, Flag(argc, argv, "--quiet")).Run(kills);
  }
  const std::string base = Arg(argc, argv, "--base", "");
  Board* board = MapBoard(std::atoi(Arg(argc, argv, "--board", "-1")));
  const int index = std::atoi(Arg(argc, argv, "--index", "0"));
  const auto generation = static_cast<uint32_t>(std::atoi(Arg(argc, argv, "--generation", "1")));
  if (role == "publisher") return RunPublisher(base, board, generation, seed);
  if (role == "subscriber") return RunSubscriber(base, board, index, seed);
  std::fprintf(stderr, "unknown role '%s'\n", role.c_str());
  return 2;
}
