// Run as another user by permissions_test: tries every way to reach a channel of the user
// that made it, and says which worked.
//   usage: permissions_peer_main PATH NAME
// PATH is the segment file (/dev/shm/quiver-<owner uid>-NAME). Exit 0: all refused.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "quiver/channel.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s PATH NAME\n", argv[0]);
    return 2;
  }
  int reached = 0;
  for (int flags : {O_RDONLY, O_RDWR}) {
    const int fd = open(argv[1], flags | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
      void* map = mmap(nullptr, 4096, PROT_READ, MAP_SHARED, fd, 0);
      std::printf("open(%s) succeeded; mmap %s\n", flags == O_RDONLY ? "O_RDONLY" : "O_RDWR",
                  map == MAP_FAILED ? "failed" : "succeeded");
      ++reached;
      close(fd);
    } else {
      std::printf("open(%s): %s\n", flags == O_RDONLY ? "O_RDONLY" : "O_RDWR",
                  std::strerror(errno));
    }
  }
  // By name, Quiver looks under this user's own prefix: another user's channel is not there.
  auto channel = quiver::Channel::Open(argv[2]);
  std::printf("Channel::Open: %s\n",
              channel.ok() ? "succeeded" : channel.status().ToString().c_str());
  if (channel.ok()) ++reached;
  return reached == 0 ? 0 : 1;
}
