// W3 "frames": one-way latency of a payload ping-ponged between two processes (one-way =
// round trip / 2), Quiver channels against the bare limits and the kernel's copying peers.
//
// Transports, all measured in the same run, one forked echo child per case:
//   futex            two 32-bit words in a MAP_SHARED mapping, FUTEX_WAIT/FUTEX_WAKE, no
//                    spin and no payload: the floor of a blocking wake-up across processes
//   spin             two cache lines busy-polled, no payload: the floor of busy-polling
//   uds              AF_UNIX stream socketpair, the full payload written and read each way
//   pipe             two pipes, the full payload each way
//   quiver-blocking  two channels (ping, pong); Loan + fill + Publish, Receive with spin = 0
//   quiver-default   the same with the default SubscriberOptions (20 us spin, then futex)
//   quiver-spin      the same, the receiver busy-polls TryReceive()
// Every sender producing a payload writes all of its bytes for every message (memset, then
// the sequence number in the first 8 bytes): the socket and pipe peers write into their user
// buffer and the kernel copies it twice; Quiver writes into the loan and copies nothing. The
// receiver checks the sequence number and the last byte.
//
// Every case runs in three placements: ".../sched" (nothing pinned: what a user gets),
// ".../apart" (parent and child pinned to two CPUs) and ".../together" (both pinned to one
// CPU). On a small machine they differ in kind, not degree: on one CPU a blocking wake-up is
// a context switch and a busy-poller starves the very process it waits for; on two CPUs every
// blocking wake-up is a cross-CPU wake-up of a sleeping CPU. Left alone, the scheduler moves
// between the two, so each case also reports how often both processes sat on one CPU.
//
// Also measured: "fill", writing the payload once in one process (memset, as the senders do),
// since the bare futex and spin move no payload and a zero-copy transport still pays for it.
//
// Environment:
//   QUIVER_BENCH_ROUNDS        round trips per case for payloads up to 4 KiB (default 20000;
//                              64 KiB runs half as many, 1 MiB a tenth, 8 MiB a hundredth,
//                              never under 100)
//   QUIVER_BENCH_IDLE_MS       how long the idle-receiver cases leave a subscriber waiting
//   QUIVER_BENCH_SUMMARY_MD    also write the summary tables to this file
//   QUIVER_BENCH_SUMMARY_JSON  also write the workload-shaped result file (BENCHMARKS.md)
//   QUIVER_BENCH_PIN=P,C       CPUs of the parent and of the child when pinned apart
//                              (default 0,1; pinned together, both use P)
// With --benchmark_repetitions=N the summary reports the median over the N runs of each
// statistic (the median of the medians for p50).

#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "quiver/channel.h"
#include "quiver/status.h"
#include "shm/cpu.h"
#include "common/unique_fd.h"

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

constexpr uint64_t kStop = ~uint64_t{0};
constexpr size_t kSizes[] = {64, 3840, 64 << 10, 1 << 20, 8 << 20};
// A receiver that hears nothing for this long gives up: a lost wake-up shows as a failed
// case, not as a hung run.
constexpr auto kSilenceLimit = std::chrono::seconds(10);
// Blocking waits come back this often to check that the peer process still lives.
constexpr auto kLivenessSlice = milliseconds(100);
// Busy-pollers yield the CPU after this long without a message, as Quiver's own spin gives
// up after its default 20 us. While the two processes run on different CPUs the peer answers
// long before; when both share one CPU, a pure busy-poll would hold it for a whole time slice
// (4 ms here) while the peer it waits for cannot run.
constexpr auto kSpinBeforeYield = std::chrono::microseconds(20);

enum class Kind { kFutex, kSpin, kUds, kPipe, kQuiverBlocking, kQuiverDefault, kQuiverSpin };
constexpr Kind kKinds[] = {Kind::kFutex,     Kind::kSpin,           Kind::kUds,
                           Kind::kPipe,      Kind::kQuiverBlocking, Kind::kQuiverDefault,
                           Kind::kQuiverSpin};

std::string_view KindName(Kind kind) {
  switch (kind) {
    case Kind::kFutex:
      return "futex";
    case Kind::kSpin:
      return "spin";
    case Kind::kUds:
      return "uds";
    case Kind::kPipe:
      return "pipe";
    case Kind::kQuiverBlocking:
      return "quiver-blocking";
    case Kind::kQuiverDefault:
      return "quiver-default";
    case Kind::kQuiverSpin:
      return "quiver-spin";
  }
  return "?";
}

std::string SizeName(size_t size) {
  if (size >= (1 << 20) && size % (1 << 20) == 0) return std::to_string(size >> 20) + " MiB";
  if (size >= (1 << 10) && size % (1 << 10) == 0) return std::to_string(size >> 10) + " KiB";
  return std::to_string(size) + " B";
}

long EnvLong(const char* name, long fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const long parsed = std::strtol(v, &end, 10);
  return end != v && *end == '\0' && parsed > 0 ? parsed : fallback;
}

// Larger payloads take longer per round trip; fewer of them keep the run short while p99.9
// still rests on at least a couple of samples. At 8 MiB a pipe round trip takes 5 to 16 ms
// here, so those cases run a hundredth of the base: their p99.9 is close to the maximum.
int64_t RoundsFor(size_t size) {
  const long base = EnvLong("QUIVER_BENCH_ROUNDS", 20000);
  long rounds = base;
  if (size > (1 << 20)) {
    rounds = base / 100;
  } else if (size > (64 << 10)) {
    rounds = base / 10;
  } else if (size > 4096) {
    rounds = base / 2;
  }
  return std::max<long>(rounds, 100);
}

using quiver::shm::CpuRelax;

std::string Errno(std::string_view what) { return std::string(what) + ": " + std::strerror(errno); }

// ---- Where the two processes run --------------------------------------------------------
// A spinning receiver that shares its CPU with the process it waits for delays that very
// process, so each case reports how often parent and child sat on the same CPU. The child
// publishes its CPU number here (a page shared by every child, mapped before any fork).

struct CpuBoard {
  alignas(64) std::atomic<int> child_cpu{-1};
};
CpuBoard* g_cpu_board = nullptr;

enum class Placement { kScheduler, kApart, kTogether };
constexpr Placement kPlacements[] = {Placement::kScheduler, Placement::kApart,
                                     Placement::kTogether};

std::string_view PlacementName(Placement p) {
  switch (p) {
    case Placement::kScheduler:
      return "sched";
    case Placement::kApart:
      return "apart";
    case Placement::kTogether:
      return "together";
  }
  return "?";
}

struct Pinning {
  int parent = 0;
  int child = 1;
};

Pinning PinningFromEnv() {
  Pinning pin;
  const char* v = std::getenv("QUIVER_BENCH_PIN");
  if (v != nullptr && std::sscanf(v, "%d,%d", &pin.parent, &pin.child) != 2) pin = {};
  return pin;
}

bool PinTo(int cpu) {
  if (cpu < 0) return true;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof(set), &set) == 0;
}

/// Pins the calling process to one CPU for its lifetime, then restores its affinity.
class ScopedPin {
 public:
  explicit ScopedPin(int cpu) {
    if (cpu < 0) return;
    saved_ok_ = sched_getaffinity(0, sizeof(saved_), &saved_) == 0;
    ok_ = saved_ok_ && PinTo(cpu);
  }
  ScopedPin(const ScopedPin&) = delete;
  ScopedPin& operator=(const ScopedPin&) = delete;
  ~ScopedPin() {
    if (saved_ok_) sched_setaffinity(0, sizeof(saved_), &saved_);
  }
  bool ok() const { return ok_; }

 private:
  cpu_set_t saved_{};
  bool saved_ok_ = false;
  bool ok_ = true;
};

// ---- Process-wide cleanup on SIGINT/SIGTERM ---------------------------------------------
// Destructors do not run when a signal ends the process, so the handler itself kills the
// echo child and removes the channel files this process created (paths precomputed here,
// since only async-signal-safe calls are allowed in the handler).

volatile sig_atomic_t g_child_pid = 0;
char g_shm_paths[2][256] = {};

void OnTerminatingSignal(int sig) {
  if (g_child_pid > 0) kill(static_cast<pid_t>(g_child_pid), SIGKILL);
  for (char* path : g_shm_paths) {
    if (path[0] != '\0') unlink(path);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

std::string ShmPathOf(const std::string& name) { return quiver::Channel::NamedPath(name); }

// Every channel this process creates starts with this prefix; the sweep at exit looks for it.
std::string NamePrefix() { return "pingpong-" + std::to_string(getpid()) + "-"; }

void RememberShmPaths(const std::string& a, const std::string& b) {
  std::snprintf(g_shm_paths[0], sizeof(g_shm_paths[0]), "%s", ShmPathOf(a).c_str());
  std::snprintf(g_shm_paths[1], sizeof(g_shm_paths[1]), "%s", ShmPathOf(b).c_str());
}

void ForgetShmPaths() {
  g_shm_paths[0][0] = '\0';
  g_shm_paths[1][0] = '\0';
}

// ---- Small owners -----------------------------------------------------------------------

using Fd = quiver::UniqueFd;

/// One anonymous MAP_SHARED mapping, inherited by a forked child.
class SharedMapping {
 public:
  static std::optional<SharedMapping> Make(size_t bytes, std::string* error) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      *error = Errno("mmap");
      return std::nullopt;
    }
    return SharedMapping(p, bytes);
  }
  SharedMapping(SharedMapping&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  SharedMapping& operator=(SharedMapping&& o) noexcept {
    if (this != &o) {
      if (data_ != nullptr) munmap(data_, size_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  SharedMapping(const SharedMapping&) = delete;
  ~SharedMapping() {
    if (data_ != nullptr) munmap(data_, size_);
  }
  void* data() const { return data_; }

 private:
  SharedMapping(void* data, size_t size) : data_(data), size_(size) {}
  void* data_;
  size_t size_;
};

bool WriteAll(int fd, const std::byte* p, size_t n, std::string* error) {
  while (n > 0) {
    const ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      *error = Errno("write");
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Returns false on error or end of file (the peer closed its end: it exited).
bool ReadAll(int fd, std::byte* p, size_t n, std::string* error) {
  while (n > 0) {
    const ssize_t r = read(fd, p, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      *error = Errno("read");
      return false;
    }
    if (r == 0) {
      *error = "the peer closed its end";
      return false;
    }
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// ---- Payload ----------------------------------------------------------------------------

// Writes every byte of the message, as a producer of `size` fresh bytes would.
void FillPayload(std::byte* p, size_t size, uint64_t seq) {
  std::memset(p, static_cast<int>(seq & 0xff), size);
  std::memcpy(p, &seq, sizeof(seq));
}

// Returns the message's sequence number, or nullopt if its last byte disagrees with it.
std::optional<uint64_t> CheckPayload(const std::byte* p, size_t size) {
  uint64_t seq = 0;
  std::memcpy(&seq, p, sizeof(seq));
  if (size > sizeof(seq) && p[size - 1] != std::byte(static_cast<uint8_t>(seq & 0xff))) {
    return std::nullopt;
  }
  return seq;
}

// ---- Endpoints --------------------------------------------------------------------------

/// One side of a ping-pong: sends messages carrying a sequence number and receives the
/// other side's.
class Endpoint {
 public:
  virtual ~Endpoint() = default;
  /// Produces and sends one message carrying `seq`. False on failure (see error()).
  virtual bool Send(uint64_t seq) = 0;
  /// Waits for the next message. Nullopt on failure, or if the peer is gone.
  virtual std::optional<uint64_t> Receive() = 0;
  const std::string& error() const { return error_; }

 protected:
  explicit Endpoint(std::function<bool()> peer_alive) : peer_alive_(std::move(peer_alive)) {}
  // Called from the slow path of a wait. False (with error_ set) once the wait should end.
  bool KeepWaiting(Clock::time_point since) {
    if (!peer_alive_()) {
      error_ = "the peer process is gone";
      return false;
    }
    if (Clock::now() - since > kSilenceLimit) {
      error_ = "no message for " + std::to_string(kSilenceLimit.count()) + " s";
      return false;
    }
    return true;
  }

  // Busy-pollers call this after every empty poll. False (error_ set) once the wait should
  // end. The clock is read every 64 polls only, so the fast path stays a load and a pause.
  struct PollState {
    uint64_t polls = 0;
    Clock::time_point start{}, last_yield{}, last_check{};
  };
  bool PollAgain(PollState& st) {
    CpuRelax();
    if (++st.polls % 64 != 0) return true;
    const Clock::time_point now = Clock::now();
    if (st.polls == 64) {
      st.start = st.last_yield = st.last_check = now;
      return true;
    }
    if (now - st.last_yield >= kSpinBeforeYield) {
      sched_yield();
      st.last_yield = Clock::now();
    }
    if (now - st.last_check >= kLivenessSlice) {
      st.last_check = now;
      return KeepWaiting(st.start);
    }
    return true;
  }

  std::string error_;
  std::function<bool()> peer_alive_;
};

long Futex(std::atomic<uint32_t>* word, int op, uint32_t value, const timespec* timeout) {
  // Not FUTEX_PRIVATE_FLAG: the word is shared between processes.
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), op, value, timeout, nullptr, 0);
}

struct FutexWords {
  alignas(64) std::atomic<uint32_t> ping{0};
  alignas(64) std::atomic<uint32_t> pong{0};
};

/// futex: the sender stores the sequence number and always wakes; the receiver sleeps at
/// once, with no spin. Two system calls and two wake-ups per round trip, nothing else.
class FutexEndpoint final : public Endpoint {
 public:
  FutexEndpoint(std::atomic<uint32_t>* tx, std::atomic<uint32_t>* rx,
                std::function<bool()> peer_alive)
      : Endpoint(std::move(peer_alive)), tx_(tx), rx_(rx) {}

  bool Send(uint64_t seq) override {
    tx_->store(static_cast<uint32_t>(seq), std::memory_order_release);
    Futex(tx_, FUTEX_WAKE, 1, nullptr);
    return true;
  }

  std::optional<uint64_t> Receive() override {
    const Clock::time_point start = Clock::now();
    const timespec slice{0, std::chrono::duration_cast<nanoseconds>(kLivenessSlice).count()};
    for (;;) {
      const uint32_t v = rx_->load(std::memory_order_acquire);
      if (v != last_) {
        last_ = v;
        return v == static_cast<uint32_t>(kStop) ? kStop : v;
      }
      if (Futex(rx_, FUTEX_WAIT, last_, &slice) != 0 && errno == ETIMEDOUT && !KeepWaiting(start)) {
        return std::nullopt;
      }
    }
  }

 private:
  std::atomic<uint32_t>* tx_;
  std::atomic<uint32_t>* rx_;
  uint32_t last_ = 0;
};

struct SpinWords {
  alignas(64) std::atomic<uint64_t> ping{0};
  alignas(64) std::atomic<uint64_t> pong{0};
};

/// spin: one cache line per direction, busy-polled.
class SpinEndpoint final : public Endpoint {
 public:
  SpinEndpoint(std::atomic<uint64_t>* tx, std::atomic<uint64_t>* rx,
               std::function<bool()> peer_alive)
      : Endpoint(std::move(peer_alive)), tx_(tx), rx_(rx) {}

  bool Send(uint64_t seq) override {
    tx_->store(seq, std::memory_order_release);
    return true;
  }

  std::optional<uint64_t> Receive() override {
    PollState poll;
    for (;;) {
      const uint64_t v = rx_->load(std::memory_order_acquire);
      if (v != last_) {
        last_ = v;
        return v;
      }
      if (!PollAgain(poll)) return std::nullopt;
    }
  }

 private:
  std::atomic<uint64_t>* tx_;
  std::atomic<uint64_t>* rx_;
  uint64_t last_ = 0;
};

/// uds and pipe: the whole payload through the kernel each way.
class StreamEndpoint final : public Endpoint {
 public:
  StreamEndpoint(Fd rx, Fd tx, size_t size)
      : Endpoint([] { return true; }),  // a dead peer shows as end of file
        rx_(std::move(rx)),
        tx_(std::move(tx)),
        size_(size),
        tx_buf_(size),
        rx_buf_(size) {}

  bool Send(uint64_t seq) override {
    FillPayload(tx_buf_.data(), size_, seq);
    return WriteAll(tx_fd(), tx_buf_.data(), size_, &error_);
  }

  std::optional<uint64_t> Receive() override {
    if (!ReadAll(rx_.get(), rx_buf_.data(), size_, &error_)) return std::nullopt;
    std::optional<uint64_t> seq = CheckPayload(rx_buf_.data(), size_);
    if (!seq) error_ = "payload corrupted";
    return seq;
  }

 private:
  // A socket is one fd for both directions.
  int tx_fd() const { return tx_.get() >= 0 ? tx_.get() : rx_.get(); }

  Fd rx_;
  Fd tx_;
  size_t size_;
  std::vector<std::byte> tx_buf_;
  std::vector<std::byte> rx_buf_;
};

/// Quiver: one channel per direction. Send loans, fills and publishes; Receive blocks in
/// Receive() or busy-polls TryReceive(), checks the sample and releases it.
class QuiverEndpoint final : public Endpoint {
 public:
  QuiverEndpoint(quiver::Publisher publisher, quiver::Subscriber subscriber, size_t size,
                 bool busy_poll, std::function<bool()> peer_alive)
      : Endpoint(std::move(peer_alive)),
        publisher_(std::move(publisher)),
        subscriber_(std::move(subscriber)),
        size_(size),
        busy_poll_(busy_poll) {}

  bool Send(uint64_t seq) override {
    quiver::Result<quiver::LoanedSample> loan = publisher_.Loan(size_);
    if (!loan.ok()) {
      error_ = "Loan: " + loan.status().ToString();
      return false;
    }
    FillPayload(loan->data().data(), size_, seq);
    quiver::Status published = publisher_.Publish(std::move(*loan));
    if (!published.ok()) {
      error_ = "Publish: " + published.ToString();
      return false;
    }
    return true;
  }

  std::optional<uint64_t> Receive() override {
    return busy_poll_ ? ReceiveBusyPoll() : ReceiveBlocking();
  }

 private:
  std::optional<uint64_t> Check(const quiver::Sample& sample) {
    if (sample.size() != size_) {
      error_ = "sample of " + std::to_string(sample.size()) + " bytes, expected " +
               std::to_string(size_);
      return std::nullopt;
    }
    std::optional<uint64_t> seq = CheckPayload(sample.data().data(), size_);
    if (!seq) error_ = "payload corrupted";
    return seq;
  }

  std::optional<uint64_t> ReceiveBlocking() {
    const Clock::time_point start = Clock::now();
    for (;;) {
      quiver::Result<quiver::Sample> sample = subscriber_.Receive(kLivenessSlice);
      if (sample.ok()) return Check(*sample);
      if (sample.status().code() != quiver::ErrorCode::kTimeout) {
        error_ = "Receive: " + sample.status().ToString();
        return std::nullopt;
      }
      if (!KeepWaiting(start)) return std::nullopt;
    }
  }

  std::optional<uint64_t> ReceiveBusyPoll() {
    PollState poll;
    for (;;) {
      quiver::Result<std::optional<quiver::Sample>> sample = subscriber_.TryReceive();
      if (!sample.ok()) {
        error_ = "TryReceive: " + sample.status().ToString();
        return std::nullopt;
      }
      if (sample->has_value()) return Check(**sample);
      if (!PollAgain(poll)) return std::nullopt;
    }
  }

  quiver::Publisher publisher_;
  quiver::Subscriber subscriber_;
  size_t size_;
  bool busy_poll_;
};

// ---- Transports -------------------------------------------------------------------------

/// Makes the two endpoints of one case. Prepare() runs before fork (what both processes
/// inherit); ParentEndpoint() runs in the parent after fork, and completes before the
/// child's ChildEndpoint() starts.
class Transport {
 public:
  virtual ~Transport() = default;
  virtual bool Prepare(std::string* /*error*/) { return true; }
  virtual std::unique_ptr<Endpoint> ParentEndpoint(std::function<bool()> peer_alive,
                                                   std::string* error) = 0;
  virtual std::unique_ptr<Endpoint> ChildEndpoint(std::function<bool()> peer_alive,
                                                  std::string* error) = 0;
};

class FutexTransport final : public Transport {
 public:
  bool Prepare(std::string* error) override {
    mapping_ = SharedMapping::Make(sizeof(FutexWords), error);
    if (!mapping_) return false;
    words_ = new (mapping_->data()) FutexWords();
    return true;
  }
  std::unique_ptr<Endpoint> ParentEndpoint(std::function<bool()> alive, std::string*) override {
    return std::make_unique<FutexEndpoint>(&words_->ping, &words_->pong, std::move(alive));
  }
  std::unique_ptr<Endpoint> ChildEndpoint(std::function<bool()> alive, std::string*) override {
    return std::make_unique<FutexEndpoint>(&words_->pong, &words_->ping, std::move(alive));
  }

 private:
  std::optional<SharedMapping> mapping_;
  FutexWords* words_ = nullptr;
};

class SpinTransport final : public Transport {
 public:
  bool Prepare(std::string* error) override {
    mapping_ = SharedMapping::Make(sizeof(SpinWords), error);
    if (!mapping_) return false;
    words_ = new (mapping_->data()) SpinWords();
    return true;
  }
  std::unique_ptr<Endpoint> ParentEndpoint(std::function<bool()> alive, std::string*) override {
    return std::make_unique<SpinEndpoint>(&words_->ping, &words_->pong, std::move(alive));
  }
  std::unique_ptr<Endpoint> ChildEndpoint(std::function<bool()> alive, std::string*) override {
    return std::make_unique<SpinEndpoint>(&words_->pong, &words_->ping, std::move(alive));
  }

 private:
  std::optional<SharedMapping> mapping_;
  SpinWords* words_ = nullptr;
};

class UdsTransport final : public Transport {
 public:
  explicit UdsTransport(size_t size) : size_(size) {}
  bool Prepare(std::string* error) override {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      *error = Errno("socketpair");
      return false;
    }
    parent_ = Fd(sv[0]);
    child_ = Fd(sv[1]);
    return true;
  }
  std::unique_ptr<Endpoint> ParentEndpoint(std::function<bool()>, std::string*) override {
    child_.Reset();  // so the child's exit reads as end of file here
    return std::make_unique<StreamEndpoint>(std::move(parent_), Fd(), size_);
  }
  std::unique_ptr<Endpoint> ChildEndpoint(std::function<bool()>, std::string*) override {
    parent_.Reset();
    return std::make_unique<StreamEndpoint>(std::move(child_), Fd(), size_);
  }

 private:
  size_t size_;
  Fd parent_, child_;
};

class PipeTransport final : public Transport {
 public:
  explicit PipeTransport(size_t size) : size_(size) {}
  bool Prepare(std::string* error) override {
    int a[2], b[2];
    if (pipe2(a, O_CLOEXEC) != 0) {
      *error = Errno("pipe2");
      return false;
    }
    ping_rx_ = Fd(a[0]);
    ping_tx_ = Fd(a[1]);
    if (pipe2(b, O_CLOEXEC) != 0) {
      *error = Errno("pipe2");
      return false;
    }
    pong_rx_ = Fd(b[0]);
    pong_tx_ = Fd(b[1]);
    return true;
  }
  std::unique_ptr<Endpoint> ParentEndpoint(std::function<bool()>, std::string*) override {
    ping_rx_.Reset();
    pong_tx_.Reset();
    return std::make_unique<StreamEndpoint>(std::move(pong_rx_), std::move(ping_tx_), size_);
  }
  std::unique_ptr<Endpoint> ChildEndpoint(std::function<bool()>, std::string*) override {
    ping_tx_.Reset();
    pong_rx_.Reset();
    return std::make_unique<StreamEndpoint>(std::move(ping_rx_), std::move(pong_tx_), size_);
  }

 private:
  size_t size_;
  Fd ping_rx_, ping_tx_, pong_rx_, pong_tx_;
};

class QuiverTransport final : public Transport {
 public:
  // `tag` makes the names unique per case.
  QuiverTransport(Kind kind, size_t size, const std::string& tag)
      : kind_(kind),
        size_(size),
        ping_name_(NamePrefix() + tag + "-ping"),
        pong_name_(NamePrefix() + tag + "-pong") {}

  // The parent creates both channels, publishes pings and subscribes to pongs: its
  // subscriber exists before the child can publish its first pong.
  std::unique_ptr<Endpoint> ParentEndpoint(std::function<bool()> alive,
                                           std::string* error) override {
    RememberShmPaths(ping_name_, pong_name_);
    const quiver::ChannelOptions options{.capacity = std::max<size_t>(size_t{4} << 20, 4 * size_)};
    auto ping = quiver::Channel::Create(ping_name_, options);
    if (!ping.ok()) return Fail("Create(ping): " + ping.status().ToString(), error);
    auto pong = quiver::Channel::Create(pong_name_, options);
    if (!pong.ok()) return Fail("Create(pong): " + pong.status().ToString(), error);
    auto publisher = ping->CreatePublisher();
    if (!publisher.ok()) return Fail("CreatePublisher: " + publisher.status().ToString(), error);
    auto subscriber = pong->CreateSubscriber(SubscriberOptionsFor(kind_));
    if (!subscriber.ok()) return Fail("CreateSubscriber: " + subscriber.status().ToString(), error);
    return std::make_unique<QuiverEndpoint>(std::move(*publisher), std::move(*subscriber), size_,
                                            kind_ == Kind::kQuiverSpin, std::move(alive));
  }

  std::unique_ptr<Endpoint> ChildEndpoint(std::function<bool()> alive,
                                          std::string* error) override {
    auto ping = quiver::Channel::Open(ping_name_);
    if (!ping.ok()) return Fail("Open(ping): " + ping.status().ToString(), error);
    auto pong = quiver::Channel::Open(pong_name_);
    if (!pong.ok()) return Fail("Open(pong): " + pong.status().ToString(), error);
    auto subscriber = ping->CreateSubscriber(SubscriberOptionsFor(kind_));
    if (!subscriber.ok()) return Fail("CreateSubscriber: " + subscriber.status().ToString(), error);
    auto publisher = pong->CreatePublisher();
    if (!publisher.ok()) return Fail("CreatePublisher: " + publisher.status().ToString(), error);
    return std::make_unique<QuiverEndpoint>(std::move(*publisher), std::move(*subscriber), size_,
                                            kind_ == Kind::kQuiverSpin, std::move(alive));
  }

  static quiver::SubscriberOptions SubscriberOptionsFor(Kind kind) {
    quiver::SubscriberOptions options;  // quiver-default and quiver-spin keep the defaults
    if (kind == Kind::kQuiverBlocking) options.spin = nanoseconds(0);
    return options;
  }

 private:
  static std::unique_ptr<Endpoint> Fail(std::string message, std::string* error) {
    *error = std::move(message);
    return nullptr;
  }

  Kind kind_;
  size_t size_;
  std::string ping_name_, pong_name_;
};

std::unique_ptr<Transport> MakeTransport(Kind kind, size_t size, Placement placement) {
  switch (kind) {
    case Kind::kFutex:
      return std::make_unique<FutexTransport>();
    case Kind::kSpin:
      return std::make_unique<SpinTransport>();
    case Kind::kUds:
      return std::make_unique<UdsTransport>(size);
    case Kind::kPipe:
      return std::make_unique<PipeTransport>(size);
    default:
      return std::make_unique<QuiverTransport>(kind, size,
                                               std::string(KindName(kind)) + "-" +
                                                   std::to_string(size) + "-" +
                                                   std::string(PlacementName(placement)));
  }
}

// ---- The echo child ---------------------------------------------------------------------

/// A forked child. Always reaped: killed first if it has not exited by then.
class ChildProcess {
 public:
  explicit ChildProcess(pid_t pid) : pid_(pid) { g_child_pid = pid; }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() {
    if (!reaped_) {
      kill(pid_, SIGKILL);
      Reap(0);
    }
    g_child_pid = 0;
  }

  bool Alive() { return !reaped_ && !Reap(WNOHANG); }

  // Waits up to `limit` for a clean exit; kills the child after that. Returns a description
  // of an unclean end, or "" if it exited with status 0.
  std::string Finish(milliseconds limit) {
    const Clock::time_point deadline = Clock::now() + limit;
    while (!reaped_ && !Reap(WNOHANG) && Clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(1));
    }
    if (!reaped_) {
      kill(pid_, SIGKILL);
      Reap(0);
      return "the echo child did not exit; killed it";
    }
    if (WIFEXITED(status_) && WEXITSTATUS(status_) == 0) return "";
    if (WIFSIGNALED(status_))
      return "the echo child died of signal " + std::to_string(WTERMSIG(status_));
    return "the echo child exited with status " + std::to_string(WEXITSTATUS(status_));
  }

 private:
  // Returns true once the child is reaped.
  bool Reap(int flags) {
    for (;;) {
      const pid_t r = waitpid(pid_, &status_, flags);
      if (r == pid_) {
        reaped_ = true;
        return true;
      }
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) reaped_ = true;  // ECHILD: nothing left to wait for
      return reaped_;
    }
  }

  pid_t pid_;
  int status_ = 0;
  bool reaped_ = false;
};

// The child's whole life: wait for the parent's go, build its endpoint, report ready, then
// echo every message until the stop message. Returns the exit status.
int ChildMain(Transport& transport, Fd go, Fd ready, pid_t parent, int cpu) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) return 1;
  if (!PinTo(cpu)) std::fprintf(stderr, "pingpong child: cannot pin to CPU %d\n", cpu);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  char byte = 0;
  std::string error;
  if (!ReadAll(go.get(), reinterpret_cast<std::byte*>(&byte), 1, &error)) return 0;  // no go
  std::unique_ptr<Endpoint> endpoint =
      transport.ChildEndpoint([parent] { return getppid() == parent; }, &error);
  const char status = endpoint ? 'R' : 'E';
  if (!endpoint) std::fprintf(stderr, "pingpong child: %s\n", error.c_str());
  if (!WriteAll(ready.get(), reinterpret_cast<const std::byte*>(&status), 1, &error)) return 2;
  if (!endpoint) return 2;
  for (;;) {
    std::optional<uint64_t> seq = endpoint->Receive();
    if (!seq) {
      std::fprintf(stderr, "pingpong child: %s\n", endpoint->error().c_str());
      return 3;
    }
    if (*seq == kStop) return 0;
    if (!endpoint->Send(*seq)) {
      std::fprintf(stderr, "pingpong child: %s\n", endpoint->error().c_str());
      return 4;
    }
    // After the reply, off the measured path of this round trip.
    g_cpu_board->child_cpu.store(sched_getcpu(), std::memory_order_relaxed);
  }
}

/// A child echoing through `transport`, and the parent's endpoint facing it.
struct Session {
  std::unique_ptr<Transport> transport;
  std::unique_ptr<ChildProcess> child;
  std::unique_ptr<Endpoint> endpoint;

  // Stops the child: the stop message, then a bounded wait. Returns "" if all went well.
  std::string Stop() {
    std::string problem;
    if (endpoint && !endpoint->Send(kStop)) problem = endpoint->error();
    std::string end = child->Finish(milliseconds(5000));
    return problem.empty() ? end : problem;
  }
};

// Forks the echo child and connects both sides. On failure returns nullopt with `error` set,
// having killed and reaped whatever it started.
std::optional<Session> StartSession(std::unique_ptr<Transport> transport, int child_cpu,
                                    std::string* error) {
  if (!transport->Prepare(error)) return std::nullopt;
  int go[2], ready[2];
  if (pipe2(go, O_CLOEXEC) != 0) {
    *error = Errno("pipe2");
    return std::nullopt;
  }
  Fd go_rx(go[0]), go_tx(go[1]);
  if (pipe2(ready, O_CLOEXEC) != 0) {
    *error = Errno("pipe2");
    return std::nullopt;
  }
  Fd ready_rx(ready[0]), ready_tx(ready[1]);
  const pid_t parent = getpid();
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    *error = Errno("fork");
    return std::nullopt;
  }
  if (pid == 0) {
    go_tx.Reset();
    ready_rx.Reset();
    // _exit: the child must not run the parent's atexit handlers or flush its stdio.
    _exit(ChildMain(*transport, std::move(go_rx), std::move(ready_tx), parent, child_cpu));
  }
  Session session;
  session.child = std::make_unique<ChildProcess>(pid);
  go_rx.Reset();
  ready_tx.Reset();
  ChildProcess* child = session.child.get();
  session.endpoint = transport->ParentEndpoint([child] { return child->Alive(); }, error);
  session.transport = std::move(transport);
  if (!session.endpoint) return std::nullopt;  // closing `go` tells the child to exit
  const char go_byte = 'G';
  char ready_byte = 0;
  if (!WriteAll(go_tx.get(), reinterpret_cast<const std::byte*>(&go_byte), 1, error) ||
      !ReadAll(ready_rx.get(), reinterpret_cast<std::byte*>(&ready_byte), 1, error) ||
      ready_byte != 'R') {
    *error = "the echo child failed to start: " + session.child->Finish(milliseconds(1000));
    return std::nullopt;
  }
  return session;
}

// ---- Statistics -------------------------------------------------------------------------

struct CaseResult {
  double p50_us = 0, p99_us = 0, p999_us = 0, mean_us = 0, max_us = 0;
  double cpu_us_per_rt = 0;  // the parent's CPU time per round trip
  double csw_per_rt = 0;     // the parent's voluntary context switches per round trip
  double same_cpu_pct = 0;   // sampled round trips with parent and child on one CPU
  int64_t rounds = 0;
};

// Results of every case and repetition.
using CaseKey = std::tuple<Placement, size_t, Kind>;
std::map<CaseKey, std::vector<CaseResult>>& Results() {
  static std::map<CaseKey, std::vector<CaseResult>> results;
  return results;
}
// p50 of writing the payload once, per payload size.
std::map<size_t, std::vector<double>>& FillResults() {
  static std::map<size_t, std::vector<double>> results;
  return results;
}
std::map<Kind, std::vector<double>>& IdleResults() {
  static std::map<Kind, std::vector<double>> results;
  return results;
}

// Nearest-rank percentile of sorted values.
double Percentile(const std::vector<double>& sorted, double q) {
  const size_t n = sorted.size();
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(n)));
  rank = std::clamp<size_t>(rank, 1, n);
  return sorted[rank - 1];
}

double Median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double CpuSeconds(const rusage& r) {
  return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
         static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) * 1e-6;
}

// ---- The benchmark ----------------------------------------------------------------------

void BM_PingPong(benchmark::State& state, Kind kind, size_t size, Placement placement) {
  const Pinning pin = PinningFromEnv();
  const int parent_cpu = placement == Placement::kScheduler ? -1 : pin.parent;
  const int child_cpu = placement == Placement::kScheduler ? -1
                        : placement == Placement::kApart   ? pin.child
                                                           : pin.parent;
  ScopedPin parent_pin(parent_cpu);
  if (!parent_pin.ok()) {
    state.SkipWithError(("cannot pin the parent to CPU " + std::to_string(pin.parent)).c_str());
    return;
  }
  std::string error;
  std::optional<Session> session =
      StartSession(MakeTransport(kind, size, placement), child_cpu, &error);
  if (!session) {
    ForgetShmPaths();
    state.SkipWithError(error.c_str());
    return;
  }
  Endpoint& ep = *session->endpoint;
  uint64_t seq = 0;

  // Warm-up: page faults, caches, the scheduler's idea of both processes.
  const int64_t rounds = state.max_iterations;
  const int64_t warmup = std::max<int64_t>(rounds / 10, 50);
  for (int64_t i = 0; i < warmup && error.empty(); ++i) {
    ++seq;
    if (!ep.Send(seq)) {
      error = ep.error();
    } else if (std::optional<uint64_t> got = ep.Receive(); !got || *got != seq) {
      error = got ? "echo out of order" : ep.error();
    }
  }

  std::vector<double> one_way_us;
  one_way_us.reserve(static_cast<size_t>(rounds));
  rusage before{}, after{};
  int64_t cpu_samples = 0, same_cpu = 0;
  getrusage(RUSAGE_SELF, &before);
  if (!error.empty()) state.SkipWithError(("warm-up: " + error).c_str());
  for (auto _ : state) {
    ++seq;
    const Clock::time_point t0 = Clock::now();
    if (!ep.Send(seq)) {
      error = ep.error();
      break;
    }
    const std::optional<uint64_t> got = ep.Receive();
    const Clock::time_point t1 = Clock::now();
    if (!got || *got != seq) {
      error = got ? "echo out of order" : ep.error();
      break;
    }
    const double one_way = std::chrono::duration<double>(t1 - t0).count() / 2;
    one_way_us.push_back(one_way * 1e6);
    state.SetIterationTime(one_way);
    if (seq % 16 == 0) {
      ++cpu_samples;
      same_cpu += g_cpu_board->child_cpu.load(std::memory_order_relaxed) == sched_getcpu();
    }
  }
  getrusage(RUSAGE_SELF, &after);
  if (!error.empty() && !state.error_occurred()) state.SkipWithError(error.c_str());

  const std::string stop = session->Stop();
  session.reset();  // the channels go here, after the child detached: the files go with them
  ForgetShmPaths();
  if (!stop.empty() && !state.error_occurred()) state.SkipWithError(stop.c_str());
  if (state.error_occurred() || one_way_us.empty()) return;

  CaseResult r;
  r.rounds = static_cast<int64_t>(one_way_us.size());
  double sum = 0;
  for (double v : one_way_us) sum += v;
  r.mean_us = sum / static_cast<double>(one_way_us.size());
  std::sort(one_way_us.begin(), one_way_us.end());
  r.p50_us = Percentile(one_way_us, 0.50);
  r.p99_us = Percentile(one_way_us, 0.99);
  r.p999_us = Percentile(one_way_us, 0.999);
  r.max_us = one_way_us.back();
  r.cpu_us_per_rt = (CpuSeconds(after) - CpuSeconds(before)) * 1e6 / static_cast<double>(r.rounds);
  r.csw_per_rt =
      static_cast<double>(after.ru_nvcsw - before.ru_nvcsw) / static_cast<double>(r.rounds);
  r.same_cpu_pct = cpu_samples > 0
                       ? 100.0 * static_cast<double>(same_cpu) / static_cast<double>(cpu_samples)
                       : NAN;
  Results()[{placement, size, kind}].push_back(r);

  state.counters["p50_us"] = r.p50_us;
  state.counters["p99_us"] = r.p99_us;
  state.counters["p999_us"] = r.p999_us;
  state.counters["mean_us"] = r.mean_us;
  state.counters["max_us"] = r.max_us;
  state.counters["cpu_us_per_rt"] = r.cpu_us_per_rt;
  state.counters["vcsw_per_rt"] = r.csw_per_rt;
  state.counters["same_cpu_pct"] = r.same_cpu_pct;
  state.counters["bytes"] = static_cast<double>(size);
}

// Writing the payload once, in one process, as every sender does per message: into a
// buffer as large as the Quiver channel, at a rotating offset as its loans are.
void BM_Fill(benchmark::State& state, size_t size) {
  const size_t capacity = std::max<size_t>(size_t{4} << 20, 4 * size);
  std::vector<std::byte> buffer(capacity + 64);
  std::byte* base = buffer.data() + (64 - reinterpret_cast<uintptr_t>(buffer.data()) % 64) % 64;
  std::vector<double> fill_us;
  fill_us.reserve(static_cast<size_t>(state.max_iterations));
  size_t offset = 0;
  uint64_t seq = 0;
  for (auto _ : state) {
    if (offset + size > capacity) offset = 0;
    const Clock::time_point t0 = Clock::now();
    FillPayload(base + offset, size, ++seq);
    benchmark::ClobberMemory();
    const Clock::time_point t1 = Clock::now();
    offset += (size + 63) / 64 * 64;
    const double seconds = std::chrono::duration<double>(t1 - t0).count();
    fill_us.push_back(seconds * 1e6);
    state.SetIterationTime(seconds);
  }
  std::sort(fill_us.begin(), fill_us.end());
  const double p50 = Percentile(fill_us, 0.5);
  FillResults()[size].push_back(p50);
  state.counters["p50_us"] = p50;
  state.counters["p99_us"] = Percentile(fill_us, 0.99);
}

// A subscriber left waiting in Receive() with nothing to receive: how much CPU does it burn?
// The child measures its own CPU time across the wait and reports it through a pipe.
void BM_IdleReceiver(benchmark::State& state, Kind kind) {
  const long idle_ms = EnvLong("QUIVER_BENCH_IDLE_MS", 1000);
  const std::string name = NamePrefix() + "idle-" + std::string(KindName(kind));
  RememberShmPaths(name, name);
  int go[2], report[2];
  if (pipe2(go, O_CLOEXEC) != 0 || pipe2(report, O_CLOEXEC) != 0) {
    state.SkipWithError(Errno("pipe2").c_str());
    return;
  }
  Fd go_rx(go[0]), go_tx(go[1]), report_rx(report[0]), report_tx(report[1]);
  const pid_t parent = getpid();
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    state.SkipWithError(Errno("fork").c_str());
    return;
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    go_tx.Reset();
    report_rx.Reset();
    auto body = [&]() -> int {
      std::string error;
      char byte;
      if (getppid() != parent ||
          !ReadAll(go_rx.get(), reinterpret_cast<std::byte*>(&byte), 1, &error)) {
        return 0;
      }
      auto channel = quiver::Channel::Open(name);
      if (!channel.ok()) return 2;
      auto subscriber = channel->CreateSubscriber(QuiverTransport::SubscriberOptionsFor(kind));
      if (!subscriber.ok()) return 2;
      rusage before{}, after{};
      getrusage(RUSAGE_SELF, &before);
      const Clock::time_point start = Clock::now();
      const char ready = 'R';
      if (!WriteAll(report_tx.get(), reinterpret_cast<const std::byte*>(&ready), 1, &error)) {
        return 2;
      }
      auto sample = subscriber->Receive(std::chrono::seconds(30));
      const double wall = std::chrono::duration<double>(Clock::now() - start).count();
      getrusage(RUSAGE_SELF, &after);
      if (!sample.ok()) return 3;
      const double cpu_pct = (CpuSeconds(after) - CpuSeconds(before)) / wall * 100;
      return WriteAll(report_tx.get(), reinterpret_cast<const std::byte*>(&cpu_pct),
                      sizeof(cpu_pct), &error)
                 ? 0
                 : 2;
    };
    _exit(body());
  }
  ChildProcess child(pid);
  go_rx.Reset();
  report_tx.Reset();

  std::string error;
  double cpu_pct = 0;
  {
    auto channel = quiver::Channel::Create(name, {.capacity = 1 << 20});
    std::optional<quiver::Publisher> publisher;
    if (!channel.ok()) {
      error = channel.status().ToString();
    } else if (auto p = channel->CreatePublisher(); !p.ok()) {
      error = p.status().ToString();
    } else {
      publisher.emplace(std::move(*p));
    }
    const char go_byte = 'G';
    char ready = 0;
    if (error.empty() &&
        (!WriteAll(go_tx.get(), reinterpret_cast<const std::byte*>(&go_byte), 1, &error) ||
         !ReadAll(report_rx.get(), reinterpret_cast<std::byte*>(&ready), 1, &error))) {
      error = "the idle child failed to start: " + child.Finish(milliseconds(1000));
    }
    for (auto _ : state) {
      if (!error.empty()) break;
      const Clock::time_point t0 = Clock::now();
      std::this_thread::sleep_for(milliseconds(idle_ms));
      const std::byte one[8] = {};
      quiver::Status published = publisher->PublishCopy(one);
      if (!published.ok()) {
        error = published.ToString();
        break;
      }
      if (!ReadAll(report_rx.get(), reinterpret_cast<std::byte*>(&cpu_pct), sizeof(cpu_pct),
                   &error)) {
        break;
      }
      state.SetIterationTime(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    go_tx.Reset();  // a child still waiting for its go exits now
    const std::string end = child.Finish(milliseconds(5000));
    if (error.empty()) error = end;
  }
  ForgetShmPaths();
  if (!error.empty()) {
    if (!state.error_occurred()) state.SkipWithError(error.c_str());
    return;
  }
  IdleResults()[kind].push_back(cpu_pct);
  state.counters["idle_cpu_pct"] = cpu_pct;
  state.counters["idle_ms"] = static_cast<double>(idle_ms);
}

void RegisterAll() {
  // Sizes outside, transports inside: the cases of one size run back to back, so the
  // machine's drift hits every transport of a comparison alike.
  for (Placement placement : kPlacements) {
    for (size_t size : kSizes) {
      for (Kind kind : kKinds) {
        const std::string name = "pingpong/" + std::string(KindName(kind)) + "/" +
                                 std::to_string(size) + "/" + std::string(PlacementName(placement));
        benchmark::RegisterBenchmark(name.c_str(), BM_PingPong, kind, size, placement)
            ->Iterations(RoundsFor(size))
            ->UseManualTime()
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
  for (size_t size : kSizes) {
    const std::string name = "fill/" + std::to_string(size);
    benchmark::RegisterBenchmark(name.c_str(), BM_Fill, size)
        ->Iterations(RoundsFor(size))
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
  }
  for (Kind kind : {Kind::kQuiverBlocking, Kind::kQuiverDefault}) {
    const std::string name = "idle/" + std::string(KindName(kind));
    benchmark::RegisterBenchmark(name.c_str(), BM_IdleReceiver, kind)
        ->Iterations(1)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  }
}

// ---- Summary ----------------------------------------------------------------------------

struct Summary {
  double p50 = NAN, p99 = NAN, p999 = NAN, mean = NAN, cpu = NAN, csw = NAN, same_cpu = NAN;
  size_t runs = 0;
  int64_t rounds = 0;
};

std::optional<Summary> Summarize(Placement placement, size_t size, Kind kind) {
  auto it = Results().find({placement, size, kind});
  if (it == Results().end() || it->second.empty()) return std::nullopt;
  std::vector<double> p50, p99, p999, mean, cpu, csw, same_cpu;
  for (const CaseResult& r : it->second) {
    p50.push_back(r.p50_us);
    p99.push_back(r.p99_us);
    p999.push_back(r.p999_us);
    mean.push_back(r.mean_us);
    cpu.push_back(r.cpu_us_per_rt);
    csw.push_back(r.csw_per_rt);
    same_cpu.push_back(r.same_cpu_pct);
  }
  Summary s;
  s.p50 = Median(p50);
  s.p99 = Median(p99);
  s.p999 = Median(p999);
  s.mean = Median(mean);
  s.cpu = Median(cpu);
  s.csw = Median(csw);
  s.same_cpu = Median(same_cpu);
  s.runs = it->second.size();
  s.rounds = it->second.front().rounds;
  return s;
}

std::string Fixed(double v, int digits = 2) {
  if (std::isnan(v)) return "–";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

std::string Ratio(double a, double b) {
  if (std::isnan(a) || std::isnan(b) || b <= 0) return "–";
  return Fixed(a / b) + "×";
}

std::string MachineLine() {
  utsname u{};
  uname(&u);
  std::string model = "unknown CPU";
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  return std::to_string(std::thread::hardware_concurrency()) + " CPUs (" + model + "), Linux " +
         u.release;
}

std::string PlacementTitle(Placement placement) {
  const Pinning pin = PinningFromEnv();
  switch (placement) {
    case Placement::kScheduler:
      return "sched: placed by the scheduler (nothing pinned)";
    case Placement::kApart:
      return "apart: parent pinned to CPU " + std::to_string(pin.parent) + ", child to CPU " +
             std::to_string(pin.child);
    case Placement::kTogether:
      return "together: both pinned to CPU " + std::to_string(pin.parent);
  }
  return "?";
}

void LatencyTable(std::ostringstream& out, Placement placement) {
  out << "| payload |";
  for (Kind k : kKinds) out << " " << KindName(k) << " |";
  out << "\n|---|";
  for (size_t i = 0; i < std::size(kKinds); ++i) out << "---:|";
  out << "\n";
  for (size_t size : kSizes) {
    out << "| " << SizeName(size) << " |";
    for (Kind k : kKinds) {
      std::optional<Summary> s = Summarize(placement, size, k);
      out << " " << (s ? Fixed(s->p50) + " / " + Fixed(s->p99) + " / " + Fixed(s->p999) : "–")
          << " |";
    }
    out << "\n";
  }
}

double FillP50(size_t size) {
  auto it = FillResults().find(size);
  return it == FillResults().end() ? NAN : Median(it->second);
}

void RatioTable(std::ostringstream& out, Placement placement) {
  out << "| payload | quiver-blocking | ÷ futex | ÷ (futex + fill) | ÷ uds | ÷ pipe | "
         "quiver-default ÷ futex | quiver-spin ÷ spin | quiver-spin ÷ uds | goal |\n";
  out << "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
  for (size_t size : kSizes) {
    auto get = [&](Kind k) {
      std::optional<Summary> s = Summarize(placement, size, k);
      return s ? s->p50 : NAN;
    };
    const double qb = get(Kind::kQuiverBlocking), fx = get(Kind::kFutex), uds = get(Kind::kUds);
    const double pipe = get(Kind::kPipe), qd = get(Kind::kQuiverDefault);
    const double qs = get(Kind::kQuiverSpin), spin = get(Kind::kSpin);
    std::string goal = "–";
    if (!std::isnan(qb) && !std::isnan(fx) && !std::isnan(uds)) {
      const bool futex_ok = qb <= 3 * fx, uds_ok = qb < uds;
      goal = futex_ok && uds_ok
                 ? "met"
                 : std::string("missed (") + (futex_ok ? "" : "> 3× futex") +
                       (!futex_ok && !uds_ok ? ", " : "") + (uds_ok ? "" : "≥ uds") + ")";
    }
    out << "| " << SizeName(size) << " | " << Fixed(qb) << " | " << Ratio(qb, fx) << " | "
        << Ratio(qb, fx + FillP50(size)) << " | " << Ratio(qb, uds) << " | " << Ratio(qb, pipe)
        << " | " << Ratio(qd, fx) << " | " << Ratio(qs, spin) << " | " << Ratio(qs, uds) << " | "
        << goal << " |\n";
  }
}

void CostTable(std::ostringstream& out, Placement placement) {
  out << "| payload |";
  for (Kind k : kKinds) out << " " << KindName(k) << " |";
  out << "\n|---|";
  for (size_t i = 0; i < std::size(kKinds); ++i) out << "---:|";
  out << "\n";
  for (size_t size : kSizes) {
    out << "| " << SizeName(size) << " |";
    for (Kind k : kKinds) {
      std::optional<Summary> s = Summarize(placement, size, k);
      out << " "
          << (s ? Fixed(s->cpu, 1) + " / " + Fixed(s->csw, 2) + " / " + Fixed(s->same_cpu, 0) : "–")
          << " |";
    }
    out << "\n";
  }
}

std::string SummaryMarkdown() {
  std::ostringstream out;
  size_t runs = 0;
  for (const auto& [key, v] : Results()) runs = std::max(runs, v.size());
  out << "# W3 ping-pong, one-way latency in µs\n\n";
  out << "Machine: " << MachineLine() << ". "
      << (runs > 1 ? "Each figure is the median over " + std::to_string(runs) + " runs"
                   : std::string("One run"))
      << "; every ratio compares figures of the same run.\n";
  for (Placement placement : kPlacements) {
    bool any = false;
    for (const auto& [key, v] : Results()) any = any || std::get<0>(key) == placement;
    if (!any) continue;
    out << "\n## " << PlacementTitle(placement) << "\n\n";
    out << "p50 / p99 / p99.9:\n\n";
    LatencyTable(out, placement);
    out << "\nRatios of p50 (goal: quiver-blocking ≤ 3× futex and < uds):\n\n";
    RatioTable(out, placement);
    out << "\nPer round trip: parent CPU µs / parent voluntary context switches / % of "
           "samples with both processes on one CPU:\n\n";
    CostTable(out, placement);
  }
  if (!FillResults().empty()) {
    out << "\nfill (writing the payload once, one process), p50 µs:";
    for (size_t size : kSizes)
      out << " " << SizeName(size) << " " << Fixed(FillP50(size), 3) << ";";
    out << "\n";
  }
  if (!IdleResults().empty()) {
    out << "\nIdle receiver (a subscriber blocked in Receive() with no traffic), CPU %: ";
    bool first = true;
    for (const auto& [kind, v] : IdleResults()) {
      out << (first ? "" : ", ") << KindName(kind) << " " << Fixed(Median(v), 3);
      first = false;
    }
    out << "\n";
  }
  return out.str();
}

std::string JsonEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out;
}

std::string JsonNumber(double v) {
  if (std::isnan(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4f", v);
  return buf;
}

// The workload-shaped result file of BENCHMARKS.md ("median_us" is the p50 latency).
std::string SummaryJson() {
  utsname u{};
  uname(&u);
  std::ostringstream out;
  out << "{\"workload\": \"w3-frames-pingpong\", \"params\": {\"payload_bytes\": [";
  for (size_t i = 0; i < std::size(kSizes); ++i) out << (i ? ", " : "") << kSizes[i];
  out << "], \"latency\": \"one-way = round trip / 2\", \"peers\": \"C++ <-> C++\"}, ";
  out << "\"machine\": {\"cpus\": " << std::thread::hardware_concurrency() << ", \"kernel\": \""
      << JsonEscape(u.release) << "\"}, \"results\": [";
  bool first = true;
  for (Placement placement : kPlacements) {
    for (size_t size : kSizes) {
      for (Kind k : kKinds) {
        std::optional<Summary> s = Summarize(placement, size, k);
        if (!s) continue;
        out << (first ? "\n  " : ",\n  ") << "{\"transport\": \"" << KindName(k)
            << "\", \"payload_bytes\": " << size << ", \"placement\": \""
            << PlacementName(placement) << "\", \"median_us\": " << JsonNumber(s->p50)
            << ", \"p99_us\": " << JsonNumber(s->p99) << ", \"p999_us\": " << JsonNumber(s->p999)
            << ", \"mean_us\": " << JsonNumber(s->mean)
            << ", \"same_cpu_pct\": " << JsonNumber(s->same_cpu) << ", \"runs\": " << s->runs
            << ", \"round_trips_per_run\": " << s->rounds << "}";
        first = false;
      }
    }
  }
  for (const auto& [size, v] : FillResults()) {
    out << (first ? "\n  " : ",\n  ") << "{\"transport\": \"fill\", \"payload_bytes\": " << size
        << ", \"median_us\": " << JsonNumber(Median(v)) << ", \"runs\": " << v.size() << "}";
    first = false;
  }
  for (const auto& [kind, v] : IdleResults()) {
    out << (first ? "\n  " : ",\n  ") << "{\"transport\": \"" << KindName(kind)
        << "\", \"idle_receiver_cpu_pct\": " << JsonNumber(Median(v)) << ", \"runs\": " << v.size()
        << "}";
    first = false;
  }
  out << "\n]}\n";
  return out.str();
}

void WriteFile(const char* env, const std::string& text) {
  const char* path = std::getenv(env);
  if (path == nullptr || *path == '\0') return;
  std::ofstream file(path);
  file << text;
  if (!file) std::fprintf(stderr, "pingpong: could not write %s (%s)\n", path, env);
}

// Channel files of this process still present: the library failed to remove them. Reports
// and removes them. Returns how many there were.
int SweepLeftovers() {
  const std::string prefix = NamePrefix();
  int found = 0;
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator(quiver::Channel::NamedDirectory(), ec)) {
    const std::string file = entry.path().filename().string();
    if (file.rfind(prefix, 0) != 0) continue;
    std::fprintf(stderr, "pingpong: left behind: %s (removed)\n", entry.path().c_str());
    std::filesystem::remove(entry.path(), ec);
    ++found;
  }
  return found;
}

}  // namespace

int main(int argc, char** argv) {
  // The summary follows the benchmark's own output; keep it off stdout when stdout is JSON
  // or CSV for a machine to read.
  bool console = true;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.rfind("--benchmark_format=", 0) == 0 && arg != "--benchmark_format=console") {
      console = false;
    }
  }
  signal(SIGINT, OnTerminatingSignal);
  signal(SIGTERM, OnTerminatingSignal);
  signal(SIGPIPE, SIG_IGN);  // a dead peer is an EPIPE, reported, not a silent exit
  void* board =
      mmap(nullptr, sizeof(CpuBoard), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (board == MAP_FAILED) {
    std::perror("mmap");
    return 1;
  }
  g_cpu_board = new (board) CpuBoard();

  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  RegisterAll();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();

  const std::string summary = SummaryMarkdown();
  std::fprintf(console ? stdout : stderr, "\n%s", summary.c_str());
  WriteFile("QUIVER_BENCH_SUMMARY_MD", summary);
  WriteFile("QUIVER_BENCH_SUMMARY_JSON", SummaryJson());
  return SweepLeftovers() == 0 ? 0 : 2;
}
