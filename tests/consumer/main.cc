// A program outside the Quiver tree (tests/consumer/): creates a channel with a unique name,
// publishes a small Arrow batch into it and receives it back through a subscriber.
//   consumer       prints "consumer: ok 3 rows"  (Quiver::arrow, Quiver::control)
//   consumer_core  prints "consumer: ok 12 bytes" (Quiver::quiver only: raw samples, no Arrow)
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "quiver/channel.h"
#include "quiver/status.h"
#ifndef CONSUMER_CORE_ONLY
#include <arrow/array.h>
#include <arrow/builder.h>
#include <arrow/record_batch.h>
#include <arrow/type.h>

#include "quiver/arrow.h"
#include "quiver/envelope.h"
#endif

namespace {

int Fail(std::string_view what, const quiver::Status& status) {
  std::fprintf(stderr, "consumer: %.*s: %s\n", static_cast<int>(what.size()), what.data(),
               status.ToString().c_str());
  return 1;
}

// Unique per run: the pid and the clock.
std::string ChannelName() {
  auto now = std::chrono::steady_clock::now().time_since_epoch();
  return "consumer-" + std::to_string(::getpid()) + "-" +
         std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(now).count());
}

#ifdef CONSUMER_CORE_ONLY
int Run(const std::string& name) {
  auto channel = quiver::Channel::Create(name, {.capacity = 1 << 20});
  if (!channel.ok()) return Fail("create", channel.status());
  auto subscriber = channel->CreateSubscriber();
  if (!subscriber.ok()) return Fail("subscribe", subscriber.status());
  auto publisher = channel->CreatePublisher();
  if (!publisher.ok()) return Fail("publisher", publisher.status());
  auto sample = publisher->Loan(12);
  if (!sample.ok()) return Fail("loan", sample.status());
  std::memcpy(sample->data().data(), "hello quiver", 12);
  if (auto st = publisher->Publish(std::move(*sample)); !st.ok()) return Fail("publish", st);
  auto received = subscriber->Receive(std::chrono::seconds(5));
  if (!received.ok()) return Fail("receive", received.status());
  if (received->size() != 12 || std::memcmp(received->data().data(), "hello quiver", 12) != 0) {
    std::fprintf(stderr, "consumer: received other bytes than were published\n");
    return 1;
  }
  std::printf("consumer: ok %zu bytes\n", received->size());
  return 0;
}
#else
int Run(const std::string& name) {
  // Quiver::control's envelope.h (and its nlohmann_json) reach this program too.
  if (auto st = quiver::control::ValidateTypeName("CMD_PROCESS"); !st.ok()) {
    return Fail("control", st);
  }

  auto schema = arrow::schema({arrow::field("id", arrow::int64(), /*nullable=*/false),
                               arrow::field("name", arrow::utf8())});
  arrow::Int64Builder ids;
  arrow::StringBuilder names;
  if (!ids.AppendValues({1, 2, 3}).ok() || !names.AppendValues({"a", "bb", "ccc"}).ok()) {
    std::fprintf(stderr, "consumer: building the batch failed\n");
    return 1;
  }
  auto id_array = ids.Finish();
  auto name_array = names.Finish();
  if (!id_array.ok() || !name_array.ok()) {
    std::fprintf(stderr, "consumer: building the batch failed\n");
    return 1;
  }
  auto batch = arrow::RecordBatch::Make(schema, 3, {*id_array, *name_array});

  auto channel = quiver::CreateArrowChannel(name, schema, {.capacity = 1 << 20});
  if (!channel.ok()) return Fail("create", channel.status());
  auto subscriber = quiver::ArrowSubscriber::Make(*channel);  // before the publish: sees it
  if (!subscriber.ok()) return Fail("subscribe", subscriber.status());
  auto publisher = quiver::ArrowPublisher::Make(*channel);
  if (!publisher.ok()) return Fail("publisher", publisher.status());
  if (auto st = publisher->Publish(*batch); !st.ok()) return Fail("publish", st);

  auto sample = subscriber->Receive(std::chrono::seconds(5));
  if (!sample.ok()) return Fail("receive", sample.status());
  if (!sample->batch->Equals(*batch)) {
    std::fprintf(stderr, "consumer: received %s\nnot the batch published\n",
                 sample->batch->ToString().c_str());
    return 1;
  }
  std::printf("consumer: ok %lld rows\n", static_cast<long long>(sample->batch->num_rows()));
  return 0;
}
#endif

}  // namespace

int main() { return Run(ChannelName()); }
