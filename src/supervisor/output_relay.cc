#include "supervisor/output_relay.h"

#include <limits.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace quiver::supervisor {
namespace {

// A node that never ends its line still gets relayed in pieces of this size, so memory stays
// bounded whatever it writes.
constexpr size_t kMaxLine = 64 << 10;

}  // namespace

OutputSink::OutputSink(int fd, size_t max_bytes) : fd_(fd), max_bytes_(max_bytes) {}

void OutputSink::Push(std::string text) {
  if (fd_ < 0) return;
  if (broken_ || bytes_ + text.size() > max_bytes_) {
    dropped_lines_ += static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
    return;
  }
  bytes_ += text.size();
  queue_.push_back(std::move(text));
}

void OutputSink::Flush(std::chrono::milliseconds wait) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (!queue_.empty() && !broken_) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd room{fd_, POLLOUT, 0};
    const int ready = ::poll(&room, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return;  // no room now: the caller comes back
    if ((room.revents & (POLLERR | POLLHUP)) != 0 && (room.revents & POLLOUT) == 0) {
      broken_ = true;
      break;
    }
    const std::string& front = queue_.front();
    const size_t piece = std::min<size_t>(front.size() - front_written_, PIPE_BUF);
    const ssize_t n = ::write(fd_, front.data() + front_written_, piece);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      broken_ = true;  // EPIPE (the reader left) or worse: the supervisor goes on regardless
      break;
    }
    front_written_ += static_cast<size_t>(n);
    bytes_ -= static_cast<size_t>(n);
    if (front_written_ == front.size()) {
      queue_.pop_front();
      front_written_ = 0;
    }
  }
  if (broken_) Abandon();
}

size_t OutputSink::Abandon() {
  for (const std::string& text : queue_) {
    dropped_lines_ += static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
  }
  queue_.clear();
  front_written_ = bytes_ = 0;
  return dropped_lines_;
}

OutputRelay::OutputRelay(std::string_view node, OutputSink* sink, size_t tail_lines)
    : prefix_("[" + std::string(node) + "] "), sink_(sink), tail_lines_(tail_lines) {}

void OutputRelay::Feed(std::string_view bytes) {
  while (!bytes.empty()) {
    const size_t nl = bytes.find('\n');
    if (nl == std::string_view::npos) {
      partial_.append(bytes);
      if (partial_.size() >= kMaxLine) {
        Emit(partial_);
        partial_.clear();
      }
      return;
    }
    if (partial_.empty()) {
      Emit(bytes.substr(0, nl));
    } else {
      partial_.append(bytes.substr(0, nl));
      Emit(partial_);
      partial_.clear();
    }
    bytes.remove_prefix(nl + 1);
  }
}

void OutputRelay::Finish() {
  if (!partial_.empty()) Emit(partial_);
  partial_.clear();
}

void OutputRelay::Emit(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (tail_lines_ > 0) {
    if (tail_.size() == tail_lines_) tail_.pop_front();
    tail_.emplace_back(line);
  }
  if (sink_ == nullptr) return;
  // One queued text per line: written in pieces of at most PIPE_BUF, a line of up to that
  // size never interleaves with another node's.
  std::string text;
  text.reserve(prefix_.size() + line.size() + 1);
  text.append(prefix_).append(line).push_back('\n');
  sink_->Push(std::move(text));
}

}  // namespace quiver::supervisor
