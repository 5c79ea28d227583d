// A C++ node for cross-language tests: produces or consumes Ledger batches on a channel.
//   ledger_peer_main consume CHANNEL BATCHES   prints "rows=<n> sum=<sum of amount, %.6f>"
//   ledger_peer_main produce CHANNEL BATCHES ROWS   creates the channel, waits for one
//                                                   subscriber, publishes, prints the sum
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "ledger.h"
#include "quiver/arrow.h"

namespace {

int Fail(const quiver::Status& st) {
  std::fprintf(stderr, "ledger_peer: %s\n", st.ToString().c_str());
  return 1;
}

int Consume(const std::string& name, int batches) {
  auto channel = quiver::Channel::Open(name);
  if (!channel.ok()) return Fail(channel.status());
  auto subscriber =
      quiver::ArrowSubscriber::Make(*channel, {.reader_schema = quiver::testing::LedgerSchema(),
                                               .validation = quiver::BatchValidation::kFull});
  if (!subscriber.ok()) return Fail(subscriber.status());
  std::printf("ready\n");
  std::fflush(stdout);
  int64_t rows = 0;
  double sum = 0;
  for (int i = 0; i < batches; ++i) {
    auto sample = subscriber->Receive(std::chrono::seconds(30));
    if (!sample.ok()) return Fail(sample.status());
    rows += sample->batch->num_rows();
    sum += quiver::testing::SumAmount(*sample->batch);
  }
  std::printf("rows=%lld sum=%.6f\n", static_cast<long long>(rows), sum);
  return 0;
}

int Produce(const std::string& name, int batches, int64_t rows) {
  auto channel = quiver::CreateArrowChannel(name, quiver::testing::LedgerSchema(),
                                            {.capacity = size_t{64} << 20});
  if (!channel.ok()) return Fail(channel.status());
  auto publisher = quiver::ArrowPublisher::Make(*channel);
  if (!publisher.ok()) return Fail(publisher.status());
  std::printf("ready\n");
  std::fflush(stdout);
  while (publisher->publisher().subscriber_count() == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  double sum = 0;
  for (int i = 0; i < batches; ++i) {
    auto batch = quiver::testing::MakeLedger(rows, static_cast<uint64_t>(i) + 1);
    sum += quiver::testing::SumAmount(*batch);
    quiver::Status st = publisher->Publish(*batch);
    if (!st.ok()) return Fail(st);
  }
  std::printf("rows=%lld sum=%.6f\n", static_cast<long long>(rows * batches), sum);
  std::fflush(stdout);
  // Stay until the subscriber has everything: the channel goes when we go.
  while (channel->Stats().subscribers.size() > 0 && channel->Stats().subscribers[0].queued > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "consume" && argc == 4) return Consume(argv[2], std::atoi(argv[3]));
  if (mode == "produce" && argc == 5)
    return Produce(argv[2], std::atoi(argv[3]), std::atoll(argv[4]));
  std::fprintf(stderr, "usage: %s consume CHANNEL BATCHES | produce CHANNEL BATCHES ROWS\n",
               argv[0]);
  return 2;
}
