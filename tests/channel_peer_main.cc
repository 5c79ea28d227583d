// A subscriber process for tests: attaches to a channel through an inherited segment fd,
// receives COUNT pattern samples, checks every byte, and reports on stdout.
//   usage: channel_peer_main FD COUNT
#include <cstdio>
#include <cstdlib>

#include "quiver/channel.h"
#include "test_support.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s FD COUNT\n", argv[0]);
    return 2;
  }
  const int fd = std::atoi(argv[1]);
  const uint64_t count = std::strtoull(argv[2], nullptr, 10);
  auto channel = quiver::Channel::FromFd(fd);
  if (!channel.ok()) {
    std::fprintf(stderr, "attach: %s\n", channel.status().ToString().c_str());
    return 1;
  }
  auto subscriber = channel->CreateSubscriber();
  if (!subscriber.ok()) {
    std::fprintf(stderr, "subscribe: %s\n", subscriber.status().ToString().c_str());
    return 1;
  }
  std::printf("ready\n");
  std::fflush(stdout);
  for (uint64_t seq = 0; seq < count; ++seq) {
    auto sample = subscriber->Receive(std::chrono::seconds(20));
    if (!sample.ok()) {
      std::fprintf(stderr, "receive: %s\n", sample.status().ToString().c_str());
      return 1;
    }
    if (sample->sequence() != seq || sample->size() != quiver::testing::PatternSize(seq, 8192) ||
        !quiver::testing::CheckPattern(sample->data(), seq)) {
      std::fprintf(stderr, "sample %llu is wrong\n", static_cast<unsigned long long>(seq));
      return 1;
    }
  }
  std::printf("verified %llu\n", static_cast<unsigned long long>(count));
  return 0;
}
