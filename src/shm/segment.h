// A shared-memory segment: a memfd or a named object under /dev/shm, its size, its
// liveness locks and its mappings. Thread-compatible; the bytes are synchronised by callers.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/unique_fd.h"
#include "quiver/status.h"

namespace quiver::shm {

/// One mmap'ed range. Owns it; movable, not copyable.
class Mapping {
 public:
  Mapping() = default;
  Mapping(std::byte* data, size_t size) : data_(data), size_(size) {}
  Mapping(Mapping&& other) noexcept;
  Mapping& operator=(Mapping&& other) noexcept;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping();

  std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<std::byte> bytes() const { return {data_, size_}; }

 private:
  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

enum class Protection { kReadOnly, kReadWrite };

/// Byte offsets of the segment file used as OFD liveness locks (see ofd_lock.h).
/// Byte 0: the publisher (exclusive). Bytes 1..64: subscriber slots (exclusive).
/// kParticipantLockByte: every open Segment (shared); whoever can upgrade it is alone.
inline constexpr uint64_t kPublisherLockByte = 0;
inline constexpr uint64_t kFirstSubscriberLockByte = 1;
inline constexpr uint64_t kParticipantLockByte = 65;

class Segment {
 public:
  /// Called on a new segment before any other process can see it (to write its header).
  using Initializer = std::function<Status(Segment&)>;
  /// Asked of a live segment that holds the name a CreateNamed wants: true lets the new
  /// segment take the name (the old one's holders keep their mapping).
  using Replaceable = std::function<bool(const Segment&)>;

  /// Creates `/dev/shm/quiver-<uid>/<name>` (mode 0600) of `bytes` bytes, runs `init`, then
  /// publishes the name atomically. A stale segment of that name (no process holds it) is
  /// removed first; a live one gives kAlreadyExists unless `replaceable` says it may be
  /// replaced. kCapacityExceeded (saying what to do) when its file system is too full.
  static Result<Segment> CreateNamed(std::string_view name, size_t bytes, const Initializer& init,
                                     const Replaceable& replaceable = {});

  /// Creates an anonymous memfd segment (sealed against resizing). Other processes reach it
  /// only through its fd (inherited or passed with SCM_RIGHTS), so it can never leak.
  static Result<Segment> CreateMemfd(std::string_view name, size_t bytes, const Initializer& init);

  /// Opens the named segment. kNotFound if it does not exist, or if it was stale (its
  /// owners are all dead): a stale segment is removed by this call.
  static Result<Segment> OpenNamed(std::string_view name);

  /// Attaches to a segment whose fd this process holds (e.g. an inherited memfd). Takes its
  /// own open file description, so its liveness locks are its own. `fd` stays the caller's.
  static Result<Segment> FromFd(int fd);

  /// Removes the named segment if no process holds it. Returns true if it removed it.
  static Result<bool> RemoveIfStale(std::string_view name);

  /// Returns true if the named segment exists but no process holds it. Changes nothing.
  static Result<bool> IsStale(std::string_view name);

  /// Names of this user's named segments in Directory(), sorted. Lists only this user's
  /// regular files and opens none of them. kPermissionDenied if the directory is not ours.
  static Result<std::vector<std::string>> ListNamed();

  /// Returns where named segments are made: /dev/shm, or $QUIVER_SHM_DIR.
  static std::string BaseDirectory();
  /// Returns this user's private directory of named segments, BaseDirectory()/quiver-<uid>
  /// (mode 0700, made by the first CreateNamed and removed by the last segment out). Other
  /// users can neither list it nor plant a name in it; a directory of that name that is not
  /// ours is refused (kPermissionDenied saying so), never used.
  static std::string Directory();
  /// Returns the file of named segment `name`: Directory()/name.
  static std::string PathOf(std::string_view name);
  /// Checks `name` is 1..64 characters of [A-Za-z0-9._-] not starting with '.'.
  static Status ValidateName(std::string_view name);

  Segment(Segment&&) noexcept;
  Segment& operator=(Segment&&) noexcept;
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;
  /// Closes; the last participant of a named segment removes its name.
  ~Segment();

  /// For a process about to die of a signal (SIGTERM): removes the name of every named
  /// segment this process holds and is the last participant of, as closing them would.
  /// The segments stay usable until the process exits. Thread-safe; not async-signal-safe
  /// (call it from a handler that runs outside the signal, as Python's do).
  static void ReleaseNamesOfLastHolder();

  /// Maps `length` bytes at `offset` (a multiple of the page size).
  Result<Mapping> Map(size_t offset, size_t length, Protection protection) const;

  int fd() const { return fd_.get(); }
  size_t size() const { return size_; }
  /// True in a child of fork() for a segment its parent opened (ForkGeneration changed):
  /// its fd shares the parent's open file description and so its locks. Closing such a
  /// segment only closes the child's fd and mappings; it never removes the name.
  bool inherited() const;
  bool named() const { return !path_.empty(); }
  /// The file path of a named segment; empty for a memfd.
  const std::string& path() const { return path_; }

 private:
  Segment(UniqueFd fd, size_t size, std::string path);
  void Close();
  // Removes the name if this is its last participant; true if it did.
  bool UnlinkIfLast() const;
  // In or out of the process's set of named segments (ReleaseNamesOfLastHolder).
  void Track();
  void Untrack();

  UniqueFd fd_;
  size_t size_ = 0;
  std::string path_;
  uint64_t fork_generation_ = 0;  // ForkGeneration() when it was opened
};

}  // namespace quiver::shm
