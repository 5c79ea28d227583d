// Handlers (which command goes where) and the QUIVER_CONTROL_WORKERS format.
#include <charconv>
#include <cstdlib>
#include <string>

#include "quiver/control.h"

namespace quiver::control {

Status Handlers::Add(std::string_view type, Handler handler) {
  QUIVER_RETURN_IF_ERROR(ValidateTypeName(type));
  if (IsResponse(type)) {
    return Status::InvalidArgument(std::string(type) +
                                   " is a response type; handlers answer CMD_* commands");
  }
  if (type == kCmdAuth || type == kCmdShutdown) {
    return Status::InvalidArgument(std::string(type) +
                                   " belongs to the connection itself and cannot be handled");
  }
  if (!handler)
    return Status::InvalidArgument("the handler for " + std::string(type) + " is empty");
  if (handlers_.count(type) != 0) {
    return Status::InvalidArgument(std::string(type) + " already has a handler");
  }
  handlers_.emplace(std::string(type), std::move(handler));
  return Status::OK();
}

const Handler* Handlers::Find(std::string_view type) const {
  auto it = handlers_.find(type);
  return it == handlers_.end() ? nullptr : &it->second;
}

std::vector<std::string> Handlers::types() const {
  std::vector<std::string> out;
  out.reserve(handlers_.size());
  for (const auto& [type, handler] : handlers_) out.push_back(type);
  return out;
}

std::string FormatControlFds(ControlFds fds) {
  if (fds.read_fd == fds.write_fd) return std::to_string(fds.read_fd);
  return std::to_string(fds.read_fd) + ':' + std::to_string(fds.write_fd);
}

Result<ControlFds> ParseControlFds(std::string_view text) {
  const auto number = [](std::string_view digits, int* fd) {
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), *fd);
    return !digits.empty() && ec == std::errc() && end == digits.data() + digits.size() && *fd >= 0;
  };
  const size_t colon = text.find(':');
  ControlFds fds;
  const bool ok = colon == std::string_view::npos
                      ? number(text, &fds.read_fd) && number(text, &fds.write_fd)
                      : number(text.substr(0, colon), &fds.read_fd) &&
                            number(text.substr(colon + 1), &fds.write_fd);
  if (!ok) {
    return Status::InvalidArgument("'" + std::string(text.substr(0, 40)) +
                                   "' is not a control connection: expected R:W (the fds of two "
                                   "pipes) or N (a socket's fd)");
  }
  return fds;
}

std::string FormatControlWorkers(const std::vector<WorkerFd>& workers) {
  std::string out;
  for (const WorkerFd& w : workers) {
    if (!out.empty()) out += ',';
    out += w.name + '=' + FormatControlFds(w.fds);
  }
  return out;
}

Result<std::vector<WorkerFd>> ParseControlWorkers(std::string_view text) {
  std::vector<WorkerFd> out;
  if (text.empty()) return out;
  size_t start = 0;
  for (;;) {
    const size_t comma = text.find(',', start);
    const std::string_view entry = text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    const size_t eq = entry.find('=');
    const auto bad = [&](std::string_view why) {
      return Status::InvalidArgument(std::string(kControlWorkersEnv) + " entry '" +
                                     std::string(entry.substr(0, 80)) + "' " + std::string(why) +
                                     " (expected name=R:W,name=R:W)");
    };
    if (eq == std::string_view::npos || eq == 0) return bad("has no name=");
    const std::string_view name = entry.substr(0, eq);
    // Node names keep to the channel names' rule (pipeline files check them with it).
    if (!Channel::ValidateName(name).ok()) return bad("has no valid node name");
    Result<ControlFds> fds = ParseControlFds(entry.substr(eq + 1));
    if (!fds.ok()) return bad("has no file descriptors after '='");
    for (const WorkerFd& seen : out) {
      if (seen.name == name) return bad("names a worker twice");
    }
    out.push_back({std::string(name), *fds});
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

Result<std::vector<WorkerFd>> ControlWorkersFromEnvironment() {
  const char* env = std::getenv(kControlWorkersEnv);
  if (env == nullptr || *env == '\0') {
    return Status::NotFound(std::string("this process commands no workers: ") + kControlWorkersEnv +
                            " is not set (run it under `quiver run` as a node whose pipeline "
                            "entry names them: controls = [\"worker\", ...])");
  }
  return ParseControlWorkers(env);
}

}  // namespace quiver::control
