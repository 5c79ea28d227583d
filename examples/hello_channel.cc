// The README's example: a publisher and a subscriber of one channel, here in one process.
// Run: build/hello_channel
#include <chrono>
#include <cstdio>
#include <cstring>

#include "quiver/channel.h"

int main() {
  auto channel = quiver::Channel::Create("hello", {.capacity = 1 << 20});
  if (!channel.ok()) return std::fprintf(stderr, "%s\n", channel.status().ToString().c_str()), 1;
  auto subscriber = quiver::Channel::Open("hello")->CreateSubscriber();  // any process
  auto publisher = channel->CreatePublisher();

  auto sample = publisher->Loan(12);                                  // writable shared memory
  std::memcpy(sample->data().data(), "hello quiver", 12);             // written in place
  quiver::Status published = publisher->Publish(std::move(*sample));  // visible now
  if (!published.ok()) return std::fprintf(stderr, "%s\n", published.ToString().c_str()), 1;

  auto received = subscriber->Receive(std::chrono::seconds(1));  // read-only, zero copy
  if (!received.ok()) return std::fprintf(stderr, "%s\n", received.status().ToString().c_str()), 1;
  std::printf("%.*s\n", static_cast<int>(received->size()),
              reinterpret_cast<const char*>(received->data().data()));
  return 0;
}
