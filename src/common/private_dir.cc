#include "common/private_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "common/unique_fd.h"

namespace quiver {
namespace {

Status Squatted(const std::string& path, std::string_view what, const std::string& why) {
  return Status::PermissionDenied(
      path + " (" + std::string(what) + ") " + why +
      ": another user may have made it to get at this user's data. Remove it (as "
      "root), or point Quiver at a directory of your own");
}

}  // namespace

Result<bool> EnsurePrivateDirectory(const std::string& path, bool create, std::string_view what,
                                    LooseDirectory loose) {
  for (int attempt = 0; attempt < 8; ++attempt) {
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!fd.valid()) {
      const int err = errno;
      if (err == ENOENT) {
        if (!create) return false;
        if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
          return Status::FromErrno("creating " + path, errno);
        }
        continue;  // made (or made by another process of ours meanwhile): open and check it
      }
      if (err == ENOTDIR || err == ELOOP) return Squatted(path, what, "is not a directory");
      if (err == EACCES) return Squatted(path, what, "cannot be opened (permission denied)");
      return Status::FromErrno("opening " + path, err);
    }
    struct stat st {};
    if (fstat(fd.get(), &st) != 0) return Status::FromErrno("fstat " + path, errno);
    if (st.st_uid != geteuid()) {
      return Squatted(path, what, "belongs to uid " + std::to_string(st.st_uid) + ", not to us");
    }
    if ((st.st_mode & 077) != 0 && loose == LooseDirectory::kRefuse) {
      char mode[8];
      std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
      return Status::PermissionDenied(
          path + " (" + std::string(what) + ") has mode " + mode +
          ": other users may enter it. Use a directory only you can enter "
          "(chmod 700)");
    }
    // Ours, but opened up (a chmod of ours): close it again. Files others planted while it
    // was open are refused one by one by whoever opens them (owner and mode checks).
    if ((st.st_mode & 077) != 0 && fchmod(fd.get(), 0700) != 0) {
      return Status::FromErrno("chmod 0700 " + path, errno);
    }
    return true;
  }
  return Status::Busy(path + " (" + std::string(what) + ") keeps disappearing");
}

Result<std::string> RuntimeDirectory() {
  std::string path;
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  if (xdg != nullptr && *xdg == '/') {
    path = std::string(xdg) + "/quiver";
  } else {
    const char* tmp = std::getenv("TMPDIR");
    path = std::string(tmp != nullptr && *tmp == '/' ? tmp : "/tmp") + "/quiver-" +
           std::to_string(geteuid());
  }
  QUIVER_RETURN_IF_ERROR(
      EnsurePrivateDirectory(path, /*create=*/true, "Quiver's runtime directory").status());
  return path;
}

Result<std::string> DefaultFlightLocation() {
  QUIVER_ASSIGN_OR_RETURN(std::string dir, RuntimeDirectory());
  return "grpc+unix://" + dir + "/flight.sock";
}

}  // namespace quiver
