// Channel::Holders: who holds a channel, read from /proc. Each process's fds onto the
// segment are found by device and inode; the OFD locks an fd holds are listed in its
// /proc/PID/fdinfo ("lock: 1: OFDLCK ADVISORY WRITE -1 00:1b:25449 0 1"), and the lock
// bytes say the role (shm/segment.h: byte 0 the publisher, 1 + i subscriber slot i).
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>
#include <string>

#include "channel/channel_state.h"
#include "quiver/channel.h"
#include "shm/segment.h"

namespace quiver {
namespace {

bool IsNumber(const char* name) {
  if (*name == '\0') return false;
  for (const char* c = name; *c != '\0'; ++c) {
    if (*c < '0' || *c > '9') return false;
  }
  return true;
}

// The exclusive (WRITE) lock ranges an open file description holds, from its fdinfo.
std::vector<std::pair<uint64_t, uint64_t>> WriteLocks(const std::string& fdinfo_path) {
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  std::ifstream in(fdinfo_path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("lock:", 0) != 0) continue;
    std::istringstream fields(line.substr(5));
    std::string id, kind, advisory, type, pid, file, start, end;
    if (!(fields >> id >> kind >> advisory >> type >> pid >> file >> start >> end)) continue;
    if (type != "WRITE") continue;
    uint64_t lo = 0, hi = UINT64_MAX;
    if (std::from_chars(start.data(), start.data() + start.size(), lo).ec != std::errc()) continue;
    if (end != "EOF" &&
        std::from_chars(end.data(), end.data() + end.size(), hi).ec != std::errc()) {
      continue;
    }
    ranges.emplace_back(lo, hi);
  }
  return ranges;
}

}  // namespace

ChannelHolders Channel::Holders() const {
  ChannelHolders out;
  struct stat mine {};
  if (::fstat(fd(), &mine) != 0) return out;
  const uint32_t slots = state_->max_subscribers;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return out;
  while (const dirent* p = ::readdir(proc)) {
    if (!IsNumber(p->d_name)) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(p->d_name));
    const std::string base = std::string("/proc/") + p->d_name;
    DIR* fds = ::opendir((base + "/fd").c_str());  // EACCES for other users' processes
    if (fds == nullptr) continue;
    bool holds = false;
    while (const dirent* f = ::readdir(fds)) {
      if (!IsNumber(f->d_name)) continue;
      struct stat st {};
      if (::stat((base + "/fd/" + f->d_name).c_str(), &st) != 0 || st.st_dev != mine.st_dev ||
          st.st_ino != mine.st_ino) {
        continue;
      }
      holds = true;
      for (const auto& [lo, hi] : WriteLocks(base + "/fdinfo/" + f->d_name)) {
        if (lo <= shm::kPublisherLockByte && shm::kPublisherLockByte <= hi) out.publisher = pid;
        for (uint32_t i = 0; i < slots; ++i) {
          const uint64_t byte = shm::kFirstSubscriberLockByte + i;
          if (lo <= byte && byte <= hi) out.subscribers[i] = pid;
        }
      }
    }
    ::closedir(fds);
    if (holds) out.processes.push_back(pid);
  }
  ::closedir(proc);
  std::sort(out.processes.begin(), out.processes.end());
  return out;
}

}  // namespace quiver
