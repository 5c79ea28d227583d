// Directories that only this user may enter: where named channels live (/dev/shm/quiver-<uid>)
// and the runtime directory of sockets and tokens ($XDG_RUNTIME_DIR/quiver). Another user can
// squat such a name before we make it; that is refused and said plainly, never used.
// Thread-safe (each call works on the file system only).
#pragma once

#include <string>

#include "quiver/status.h"

namespace quiver {

/// What to do with a directory of ours that other users may enter.
enum class LooseDirectory {
  kTighten,  ///< chmod it 0700 (Quiver's own directories)
  kRefuse,   ///< kPermissionDenied saying so (a directory the user chose)
};

/// Makes sure `path` is a directory that we own and that nobody else may enter (no group or
/// other bits). It is opened with O_NOFOLLOW and checked through the opened fd, so a planted
/// symlink or file is refused, not followed. Returns false if it does not exist and `create`
/// is false; with `create` it is made (0700). `what` says what the directory is for, in
/// errors. kPermissionDenied naming the owner for a directory that is not ours.
Result<bool> EnsurePrivateDirectory(const std::string& path, bool create, std::string_view what,
                                    LooseDirectory loose = LooseDirectory::kTighten);

/// This user's runtime directory for Quiver's sockets and token files: $XDG_RUNTIME_DIR/quiver
/// when XDG_RUNTIME_DIR is set, else $TMPDIR/quiver-<uid> (TMPDIR defaults to /tmp). Made
/// private (EnsurePrivateDirectory) on first use.
Result<std::string> RuntimeDirectory();

/// Where `quiver serve` listens by default: "grpc+unix://" + RuntimeDirectory() +
/// "/flight.sock". The directory's mode is what keeps other users out.
Result<std::string> DefaultFlightLocation();

}  // namespace quiver
