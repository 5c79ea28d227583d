#include "shm/segment.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <set>
#include <utility>

#include "common/fork_generation.h"
#include "common/private_dir.h"
#include "shm/ofd_lock.h"

namespace quiver::shm {
namespace {

// A segment is ours only if it is a regular file we own that nobody else may open.
Status CheckOwnership(int fd, std::string_view what) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return Status::FromErrno("fstat", errno);
  if (!S_ISREG(st.st_mode)) {
    return Status::PermissionDenied(std::string(what) + " is not a regular file");
  }
  if (st.st_uid != geteuid()) {
    return Status::PermissionDenied(std::string(what) + " is owned by uid " +
                                    std::to_string(st.st_uid) + ", not by us");
  }
  if ((st.st_mode & 077) != 0) {
    return Status::PermissionDenied(std::string(what) +
                                    " is accessible to other users (mode is not 0600)");
  }
  return Status::OK();
}

Result<bool> CheckUserDirectory(bool create) {
  return EnsurePrivateDirectory(Segment::Directory(), create,
                                "where this user's named channels live; QUIVER_SHM_DIR moves it");
}

// The last channel out removes the directory too, so nothing of Quiver's stays in /dev/shm.
// rmdir refuses a directory that still holds a channel; a creator racing with it retries.
void RemoveUserDirectoryIfEmpty() { rmdir(Segment::Directory().c_str()); }

bool SameFile(int fd, const std::string& path) {
  struct stat a {
  }, b{};
  if (fstat(fd, &a) != 0 || stat(path.c_str(), &b) != 0) return false;
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// Reserves the pages now so that a full /dev/shm is a clear error here, not a SIGBUS later.
Status Reserve(int fd, size_t bytes) {
  if (ftruncate(fd, static_cast<off_t>(bytes)) != 0) return Status::FromErrno("ftruncate", errno);
  int rc = posix_fallocate(fd, 0, static_cast<off_t>(bytes));
  if (rc == ENOSPC) {
    // Containers get 64 MB of /dev/shm by default, less than one default channel.
    struct statfs fs {};
    const bool known = fstatfs(fd, &fs) == 0;
    const std::string free_text =
        known ? " (" + std::to_string(static_cast<uint64_t>(fs.f_bavail) * fs.f_bsize >> 20) +
                    " MiB free of " +
                    std::to_string(static_cast<uint64_t>(fs.f_blocks) * fs.f_bsize >> 20) + " MiB)"
              : "";
    return Status::CapacityExceeded(
        "not enough shared memory for " + std::to_string(bytes >> 20) + " MiB in its file system" +
        free_text +
        ": give the channel a smaller capacity, give the file system more room "
        "(a container: docker run --shm-size=1g), or make a memfd channel "
        "(Backing::kMemfd, Python memfd=True), which takes memory like any "
        "process rather than from /dev/shm");
  }
  if (rc != 0 && rc != EOPNOTSUPP && rc != EINVAL) {
    return Status::FromErrno("reserving " + std::to_string(bytes) + " bytes of shared memory", rc);
  }
  return Status::OK();
}

enum class OpenOutcome { kLive, kStale, kGone };

// Joins `fd` (an open segment file at `path`) as a participant, or reports that it is stale
// (no other participant: removed here) or gone (unlinked while we opened it).
Result<OpenOutcome> Join(int fd, const std::string& path) {
  QUIVER_RETURN_IF_ERROR(LockByte(fd, kParticipantLockByte, LockKind::kShared));
  if (!SameFile(fd, path)) return OpenOutcome::kGone;
  if (TryLockByte(fd, kParticipantLockByte, LockKind::kExclusive).ok()) {
    // Nobody else holds it: every owner died without removing it.
    if (SameFile(fd, path)) unlink(path.c_str());
    return OpenOutcome::kStale;
  }
  return OpenOutcome::kLive;
}

// The named segments this process holds, for ReleaseNamesOfLastHolder.
std::mutex g_named_mu;
std::set<Segment*>& NamedSegments() {
  // Never destroyed: a static Channel elsewhere may close after this file's statics would.
  static auto* segments = new std::set<Segment*>;
  return *segments;
}

}  // namespace

Mapping::Mapping(Mapping&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

Mapping& Mapping::operator=(Mapping&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) munmap(data_, size_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

Mapping::~Mapping() {
  if (data_ != nullptr) munmap(data_, size_);
}

std::string Segment::BaseDirectory() {
  const char* dir = std::getenv("QUIVER_SHM_DIR");
  return dir != nullptr && *dir != '\0' ? dir : "/dev/shm";
}

std::string Segment::Directory() {
  return BaseDirectory() + "/quiver-" + std::to_string(geteuid());
}

std::string Segment::PathOf(std::string_view name) { return Directory() + "/" + std::string(name); }

Status Segment::ValidateName(std::string_view name) {
  if (name.empty() || name.size() > 64) {
    return Status::InvalidArgument("channel name must be 1 to 64 characters, got " +
                                   std::to_string(name.size()));
  }
  if (name.front() == '.') {
    return Status::InvalidArgument("channel name must not start with '.'");
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) {
      return Status::InvalidArgument("channel name '" + std::string(name) +
                                     "' has a character outside [A-Za-z0-9._-]");
    }
  }
  return Status::OK();
}

Segment::Segment(UniqueFd fd, size_t size, std::string path)
    : fd_(std::move(fd)), size_(size), path_(std::move(path)), fork_generation_(ForkGeneration()) {
  Track();
}

Segment::Segment(Segment&& other) noexcept
    : fd_(std::move(other.fd_)),
      size_(other.size_),
      path_(std::move(other.path_)),
      fork_generation_(other.fork_generation_) {
  other.Untrack();
  Track();
}

Segment& Segment::operator=(Segment&& other) noexcept {
  if (this != &other) {
    Close();
    fd_ = std::move(other.fd_);
    size_ = other.size_;
    path_ = std::move(other.path_);
    fork_generation_ = other.fork_generation_;
    other.Untrack();
    Track();
  }
  return *this;
}

Segment::~Segment() { Close(); }

bool Segment::inherited() const { return fork_generation_ != ForkGeneration(); }

void Segment::Track() {
  if (path_.empty()) return;
  std::lock_guard lock(g_named_mu);
  NamedSegments().insert(this);
}

void Segment::Untrack() {
  std::lock_guard lock(g_named_mu);
  NamedSegments().erase(this);
}

bool Segment::UnlinkIfLast() const {
  if (!fd_.valid() || path_.empty()) return false;
  // Holding the exclusive lock while unlinking makes a concurrent opener wait, then see
  // the name gone and report kNotFound.
  if (TryLockByte(fd_.get(), kParticipantLockByte, LockKind::kExclusive).ok() &&
      SameFile(fd_.get(), path_)) {
    unlink(path_.c_str());
    RemoveUserDirectoryIfEmpty();
    return true;
  }
  return false;
}

void Segment::ReleaseNamesOfLastHolder() {
  std::lock_guard lock(g_named_mu);
  for (Segment* segment : NamedSegments()) {
    if (!segment->inherited() && segment->UnlinkIfLast()) {
      // Gone from the name: back to a shared lock, so this process counts as a participant
      // again for as long as it lives.
      (void)LockByte(segment->fd_.get(), kParticipantLockByte, LockKind::kShared);
    }
  }
}

void Segment::Close() {
  Untrack();
  if (!fd_.valid()) return;
  // The last participant out removes the name; a child of fork() is not a participant of
  // its own (it shares its parent's description, so it would take itself for the last).
  if (!inherited()) UnlinkIfLast();
  fd_.Reset();  // drops every lock this description holds, unless a parent shares it
}

Result<Segment> Segment::CreateNamed(std::string_view name, size_t bytes, const Initializer& init,
                                     const Replaceable& replaceable) {
  QUIVER_RETURN_IF_ERROR(ValidateName(name));
  const std::string dir = Directory();
  const std::string path = PathOf(name);
  // An unnamed file, initialised, then linked into place: no process can ever open a
  // half-initialised segment, and a crash before the link leaves nothing behind.
  UniqueFd fd;
  for (int attempt = 0; attempt < 8 && !fd.valid(); ++attempt) {
    QUIVER_RETURN_IF_ERROR(CheckUserDirectory(/*create=*/true).status());
    fd.Reset(open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    if (!fd.valid() && errno != ENOENT) break;  // ENOENT: the last channel out removed dir
  }
  if (!fd.valid()) return Status::FromErrno("creating a segment in " + dir, errno);
  if (fchmod(fd.get(), 0600) != 0) return Status::FromErrno("fchmod", errno);
  QUIVER_RETURN_IF_ERROR(Reserve(fd.get(), bytes));
  QUIVER_RETURN_IF_ERROR(LockByte(fd.get(), kParticipantLockByte, LockKind::kShared));
  Segment segment(std::move(fd), bytes, std::string());
  QUIVER_RETURN_IF_ERROR(init(segment));

  const std::string proc_path = "/proc/self/fd/" + std::to_string(segment.fd());
  for (int attempt = 0; attempt < 8; ++attempt) {
    if (linkat(AT_FDCWD, proc_path.c_str(), AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) == 0) {
      segment.path_ = path;
      segment.Track();
      return segment;
    }
    if (errno == ENOENT) {  // the directory was removed meanwhile: make it again
      QUIVER_RETURN_IF_ERROR(CheckUserDirectory(/*create=*/true).status());
      continue;
    }
    if (errno != EEXIST) return Status::FromErrno("linking segment " + path, errno);
    QUIVER_ASSIGN_OR_RETURN(bool removed, RemoveIfStale(name));
    if (removed) continue;
    // Live: its holders keep their mapping whatever happens to the name. If the caller may
    // take the name over (its publisher died, say), the name goes to the new segment.
    if (replaceable) {
      Result<Segment> existing = OpenNamed(name);
      if (!existing.ok() && existing.status().code() == ErrorCode::kNotFound) continue;
      if (existing.ok() && replaceable(*existing)) {
        if (SameFile(existing->fd(), path)) unlink(path.c_str());
        existing->Untrack();
        existing->path_.clear();  // it is no longer at `path`: its last holder leaves it be
        continue;
      }
    }
    return Status::AlreadyExists("channel '" + std::string(name) +
                                 "' already exists and is in use (" + path + ")");
  }
  return Status::AlreadyExists("channel '" + std::string(name) +
                               "' keeps being re-created by another process");
}

Result<Segment> Segment::CreateMemfd(std::string_view name, size_t bytes, const Initializer& init) {
  QUIVER_RETURN_IF_ERROR(ValidateName(name));
  const std::string memfd_name = "quiver:" + std::string(name);
  UniqueFd fd(memfd_create(memfd_name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd.valid()) return Status::FromErrno("memfd_create", errno);
  if (fchmod(fd.get(), 0600) != 0) return Status::FromErrno("fchmod", errno);
  QUIVER_RETURN_IF_ERROR(Reserve(fd.get(), bytes));
  // Nobody may shrink it under a mapping (SIGBUS) or grow it.
  if (fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return Status::FromErrno("sealing memfd", errno);
  }
  QUIVER_RETURN_IF_ERROR(LockByte(fd.get(), kParticipantLockByte, LockKind::kShared));
  Segment segment(std::move(fd), bytes, std::string());
  QUIVER_RETURN_IF_ERROR(init(segment));
  return segment;
}

Result<Segment> Segment::OpenNamed(std::string_view name) {
  QUIVER_RETURN_IF_ERROR(ValidateName(name));
  const std::string path = PathOf(name);
  auto not_found = [&] {
    return Status::NotFound("channel '" + std::string(name) + "' does not exist (no " + path + ")");
  };
  QUIVER_ASSIGN_OR_RETURN(bool have_directory, CheckUserDirectory(/*create=*/false));
  if (!have_directory) return not_found();
  for (int attempt = 0; attempt < 100; ++attempt) {
    // O_NOFOLLOW: a symlink planted under our name is refused, never followed. O_NONBLOCK:
    // opening a FIFO planted there returns at once (and fstat refuses it) instead of hanging.
    UniqueFd fd(open(path.c_str(), O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!fd.valid()) {
      if (errno == ENOENT) return not_found();
      if (errno == ELOOP) {
        return Status::PermissionDenied(path + " is a symbolic link; refusing it");
      }
      if (errno == EACCES) {
        return Status::PermissionDenied("no permission to open " + path);
      }
      return Status::FromErrno("opening " + path, errno);
    }
    QUIVER_RETURN_IF_ERROR(CheckOwnership(fd.get(), path));
    QUIVER_ASSIGN_OR_RETURN(OpenOutcome outcome, Join(fd.get(), path));
    if (outcome == OpenOutcome::kGone) continue;
    if (outcome == OpenOutcome::kStale) {
      return Status::NotFound("channel '" + std::string(name) +
                              "' does not exist (removed a stale segment of a "
                              "dead owner: " +
                              path + ")");
    }
    struct stat st {};
    if (fstat(fd.get(), &st) != 0) return Status::FromErrno("fstat", errno);
    return Segment(std::move(fd), static_cast<size_t>(st.st_size), path);
  }
  return Status::Busy("channel '" + std::string(name) + "' keeps disappearing");
}

Result<Segment> Segment::FromFd(int fd) {
  // A fresh open file description, so our liveness locks are not shared with whoever
  // handed us the fd (an inherited fd shares its description with the parent).
  const std::string proc_path = "/proc/self/fd/" + std::to_string(fd);
  UniqueFd own(open(proc_path.c_str(), O_RDWR | O_CLOEXEC));
  if (!own.valid()) return Status::FromErrno("reopening fd " + std::to_string(fd), errno);
  QUIVER_RETURN_IF_ERROR(CheckOwnership(own.get(), "fd " + std::to_string(fd)));
  QUIVER_RETURN_IF_ERROR(LockByte(own.get(), kParticipantLockByte, LockKind::kShared));
  struct stat st {};
  if (fstat(own.get(), &st) != 0) return Status::FromErrno("fstat", errno);
  return Segment(std::move(own), static_cast<size_t>(st.st_size), std::string());
}

Result<bool> Segment::RemoveIfStale(std::string_view name) {
  QUIVER_RETURN_IF_ERROR(ValidateName(name));
  const std::string path = PathOf(name);
  QUIVER_ASSIGN_OR_RETURN(bool have_directory, CheckUserDirectory(/*create=*/false));
  if (!have_directory) return false;
  UniqueFd fd(open(path.c_str(), O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return false;
    if (errno == ELOOP) {
      return Status::PermissionDenied(path + " is a symbolic link; refusing it");
    }
    return Status::FromErrno("opening " + path, errno);
  }
  QUIVER_RETURN_IF_ERROR(CheckOwnership(fd.get(), path));
  QUIVER_ASSIGN_OR_RETURN(OpenOutcome outcome, Join(fd.get(), path));
  if (outcome == OpenOutcome::kStale) {
    fd.Reset();
    RemoveUserDirectoryIfEmpty();
  }
  return outcome != OpenOutcome::kLive;
}

Result<bool> Segment::IsStale(std::string_view name) {
  QUIVER_RETURN_IF_ERROR(ValidateName(name));
  const std::string path = PathOf(name);
  QUIVER_ASSIGN_OR_RETURN(bool have_directory, CheckUserDirectory(/*create=*/false));
  if (!have_directory) return false;
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return false;
    return Status::FromErrno("opening " + path, errno);
  }
  QUIVER_RETURN_IF_ERROR(CheckOwnership(fd.get(), path));
  // Any lock held by anyone on the participant byte means someone is there. Asking
  // (F_OFD_GETLK) takes no lock, so this never disturbs a live channel or removes anything.
  return !IsByteLockedByOthers(fd.get(), kParticipantLockByte);
}

Result<std::vector<std::string>> Segment::ListNamed() {
  std::vector<std::string> names;
  QUIVER_ASSIGN_OR_RETURN(bool have_directory, CheckUserDirectory(/*create=*/false));
  if (!have_directory) return names;
  const std::string dir = Directory();
  DIR* listing = opendir(dir.c_str());
  if (listing == nullptr) {
    if (errno == ENOENT) return names;  // the last channel out removed it meanwhile
    return Status::FromErrno("listing " + dir, errno);
  }
  while (const dirent* entry = readdir(listing)) {
    const std::string_view file = entry->d_name;
    if (!ValidateName(file).ok()) continue;  // ".", "..", and nothing a channel could be
    // Only our own regular files: asked without opening, so nothing here can block.
    struct stat st {};
    if (fstatat(dirfd(listing), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISREG(st.st_mode) && st.st_uid == geteuid()) names.emplace_back(file);
  }
  closedir(listing);
  std::sort(names.begin(), names.end());
  return names;
}

Result<Mapping> Segment::Map(size_t offset, size_t length, Protection protection) const {
  if (length == 0 || offset > size_ || length > size_ - offset) {
    return Status::ShmCorruption("mapping [" + std::to_string(offset) + ", +" +
                                 std::to_string(length) + ") lies outside the segment of " +
                                 std::to_string(size_) + " bytes");
  }
  int prot = protection == Protection::kReadOnly ? PROT_READ : PROT_READ | PROT_WRITE;
  // MAP_POPULATE: fault every page in now, never on the hot path.
  void* p =
      mmap(nullptr, length, prot, MAP_SHARED | MAP_POPULATE, fd_.get(), static_cast<off_t>(offset));
  if (p == MAP_FAILED) return Status::FromErrno("mmap", errno);
  return Mapping(static_cast<std::byte*>(p), length);
}

}  // namespace quiver::shm
