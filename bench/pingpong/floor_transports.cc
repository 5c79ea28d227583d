#include "pingpong/floor_transports.h"

#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <new>
#include <optional>
#include <utility>

#include "pingpong/fd_io.h"

namespace quiver::bench::pingpong {
namespace {

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
    const timespec slice{
        0, std::chrono::duration_cast<std::chrono::nanoseconds>(kLivenessSlice).count()};
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

}  // namespace

std::unique_ptr<Transport> MakeFutexTransport() { return std::make_unique<FutexTransport>(); }

std::unique_ptr<Transport> MakeSpinTransport() { return std::make_unique<SpinTransport>(); }

}  // namespace quiver::bench::pingpong
