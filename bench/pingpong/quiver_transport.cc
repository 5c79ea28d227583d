#include "pingpong/quiver_transport.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <utility>

#include "pingpong/cleanup.h"
#include "pingpong/payload.h"
#include "quiver/status.h"

namespace quiver::bench::pingpong {
namespace {

/// One channel per direction. Send loans, fills and publishes; Receive blocks in Receive()
/// or busy-polls TryReceive(), checks the sample and releases it.
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

/// iceoryx2's own benchmark method with Quiver channels (quiver-spin-own-method): the payload
/// is never written or read, the next sample is loaned ahead, the receiver busy-polls. One
/// message per round trip is checked through the publisher's sequence number (metadata, not
/// payload). The stop message is the one sample with a payload: 8 bytes carrying kStop.
/// The harness loans the parent's next sample (LoanAhead); the echo child, which it does not
/// drive, loans its own in Receive() before it waits, as iceoryx2's echo does.
class QuiverLoanAheadEndpoint final : public LoanAheadEndpoint {
 public:
  QuiverLoanAheadEndpoint(quiver::Publisher publisher, quiver::Subscriber subscriber, size_t size,
                          bool echo, std::function<bool()> peer_alive)
      : LoanAheadEndpoint(std::move(peer_alive)),
        publisher_(std::move(publisher)),
        subscriber_(std::move(subscriber)),
        size_(size),
        echo_(echo) {}

  bool LoanAhead() override {
    if (next_) return true;
    quiver::Result<quiver::LoanedSample> loan = publisher_.Loan(size_);
    if (!loan.ok()) {
      error_ = "Loan: " + loan.status().ToString();
      return false;
    }
    next_.emplace(std::move(*loan));
    return true;
  }

  bool Send(uint64_t seq) override {
    if (seq == kStop) {
      next_.reset();  // back to the channel unpublished
      return PublishStop();
    }
    if (!LoanAhead()) return false;  // nothing to do if the harness loaned ahead
    quiver::Status published = publisher_.Publish(std::move(*next_));
    next_.reset();
    if (!published.ok()) {
      error_ = "Publish: " + published.ToString();
      return false;
    }
    return true;
  }

  // Returns the sender's sequence number plus one: the harness's numbering, which starts at 1.
  std::optional<uint64_t> Receive() override {
    if (echo_ && !LoanAhead()) return std::nullopt;
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

 private:
  std::optional<uint64_t> Check(const quiver::Sample& sample) {
    if (sample.size() == size_) return sample.sequence() + 1;
    if (sample.size() == sizeof(uint64_t) &&
        CheckPayload(sample.data().data(), sizeof(uint64_t)) == kStop) {
      return kStop;
    }
    error_ =
        "sample of " + std::to_string(sample.size()) + " bytes, expected " + std::to_string(size_);
    return std::nullopt;
  }

  bool PublishStop() {
    quiver::Result<quiver::LoanedSample> loan = publisher_.Loan(sizeof(uint64_t));
    if (!loan.ok()) {
      error_ = "Loan: " + loan.status().ToString();
      return false;
    }
    FillPayload(loan->data().data(), sizeof(uint64_t), kStop);
    quiver::Status published = publisher_.Publish(std::move(*loan));
    if (!published.ok()) {
      error_ = "Publish: " + published.ToString();
      return false;
    }
    return true;
  }

  quiver::Publisher publisher_;
  quiver::Subscriber subscriber_;
  size_t size_;
  bool echo_;
  std::optional<quiver::LoanedSample> next_;
};

class QuiverTransport final : public Transport {
 public:
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
    return MakeEndpoint(std::move(*publisher), std::move(*subscriber), /*echo=*/false,
                        std::move(alive));
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
    return MakeEndpoint(std::move(*publisher), std::move(*subscriber), /*echo=*/true,
                        std::move(alive));
  }

 private:
  std::unique_ptr<Endpoint> MakeEndpoint(quiver::Publisher publisher, quiver::Subscriber subscriber,
                                         bool echo, std::function<bool()> alive) const {
    if (kind_ == Kind::kQuiverSpinOwnMethod) {
      return std::make_unique<QuiverLoanAheadEndpoint>(std::move(publisher), std::move(subscriber),
                                                       size_, echo, std::move(alive));
    }
    return std::make_unique<QuiverEndpoint>(std::move(publisher), std::move(subscriber), size_,
                                            kind_ == Kind::kQuiverSpin, std::move(alive));
  }

  static std::unique_ptr<Endpoint> Fail(std::string message, std::string* error) {
    *error = std::move(message);
    return nullptr;
  }

  Kind kind_;
  size_t size_;
  std::string ping_name_, pong_name_;
};

}  // namespace

std::unique_ptr<Transport> MakeQuiverTransport(Kind kind, size_t size, const std::string& tag) {
  return std::make_unique<QuiverTransport>(kind, size, tag);
}

quiver::SubscriberOptions SubscriberOptionsFor(Kind kind) {
  quiver::SubscriberOptions options;  // the others keep the defaults
  if (kind == Kind::kQuiverBlocking) options.spin = std::chrono::nanoseconds(0);
  return options;
}

}  // namespace quiver::bench::pingpong
