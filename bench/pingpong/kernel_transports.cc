#include "pingpong/kernel_transports.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "pingpong/fd_io.h"
#include "pingpong/payload.h"

namespace quiver::bench::pingpong {
namespace {

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

}  // namespace

std::unique_ptr<Transport> MakeUdsTransport(size_t size) {
  return std::make_unique<UdsTransport>(size);
}

std::unique_ptr<Transport> MakePipeTransport(size_t size) {
  return std::make_unique<PipeTransport>(size);
}

}  // namespace quiver::bench::pingpong
