// A second local user for tests of who may reach what: made with useradd, commands run as it
// with setpriv, removed again at the end. Tests that need it skip (with a message) when not
// root or when the tools are missing.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace quiver::testing {

/// Runs `command` through the shell; returns its stdout and stderr, `status` its wait status.
inline std::string Shell(const std::string& command, int* status) {
  std::string out;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) {
    *status = -1;
    return "popen failed";
  }
  char buf[512];
  while (std::fgets(buf, sizeof(buf), pipe) != nullptr) out += buf;
  *status = pclose(pipe);
  return out;
}

inline bool Have(const char* tool) {
  int status = 0;
  Shell(std::string("command -v ") + tool + " >/dev/null", &status);
  return status == 0;
}

/// Why a second user cannot be made here, or "" if it can.
inline std::string WhyNoOtherUser() {
  if (geteuid() != 0) return "needs root to create a second user (useradd); not root";
  for (const char* tool : {"useradd", "userdel", "setpriv"}) {
    if (!Have(tool)) return std::string(tool) + " is not installed";
  }
  return "";
}

/// A throwaway system user, removed again at the end of the test.
class OtherUser {
 public:
  OtherUser() : name_("qvt" + std::to_string(getpid() % 1000000)) {
    int status = 0;
    output_ =
        Shell("useradd --system --no-create-home --shell /usr/sbin/nologin " + name_, &status);
    created_ = status == 0;
    if (created_) uid_ = std::stoul(Shell("id -u " + name_, &status));
  }
  ~OtherUser() {
    if (!created_) return;
    int status = 0;
    Shell("userdel " + name_, &status);
  }
  OtherUser(const OtherUser&) = delete;
  OtherUser& operator=(const OtherUser&) = delete;

  bool created() const { return created_; }
  const std::string& name() const { return name_; }
  uid_t uid() const { return uid_; }
  const std::string& output() const { return output_; }

  /// `command` run as this user (no supplementary groups); `status` gets its wait status.
  std::string Run(const std::string& command, int* status) const {
    return Shell("setpriv --reuid=" + name_ + " --regid=" + name_ + " --clear-groups " + command,
                 status);
  }
  /// The exit code of `command` run as this user (-1 if it did not exit), output in `out`.
  int ExitCode(const std::string& command, std::string* out) const {
    int status = 0;
    *out = Run(command, &status);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  std::string name_;
  std::string output_;
  bool created_ = false;
  uid_t uid_ = 0;
};

}  // namespace quiver::testing
