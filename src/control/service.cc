// Compute services (quiver/control.h): a named socket in the user's service directory that
// answers CMD_SERVICE_INFO and CMD_SERVICE_CALL, publishing each call's result batches into
// the caller's channel.
#include <arrow/buffer.h>
#include <arrow/ipc/api.h>
#include <arrow/util/base64.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <optional>

#include "common/private_dir.h"
#include "control/connection.h"
#include "control/server.h"
#include "quiver/arrow.h"
#include "quiver/control.h"

namespace quiver::control {
namespace {

constexpr std::string_view kSuffix = ".sock";

// True if a process accepts connections at the Unix socket `path`.
bool SomeoneListens(const std::string& path) { return Connection::ConnectUnix(path).ok(); }

Result<std::string> SchemaBase64(const arrow::Schema& schema) {
  auto serialized = arrow::ipc::SerializeSchema(schema);
  if (!serialized.ok()) {
    return Status::InvalidArgument("cannot serialize the service's schema: " +
                                   serialized.status().ToString());
  }
  return arrow::util::base64_encode(
      std::string_view(reinterpret_cast<const char*>((*serialized)->data()),
                       static_cast<size_t>((*serialized)->size())));
}

}  // namespace

Result<std::string> ServiceDirectory() {
  QUIVER_ASSIGN_OR_RETURN(std::string runtime, RuntimeDirectory());
  const std::string dir = runtime + "/services";
  QUIVER_RETURN_IF_ERROR(EnsurePrivateDirectory(dir, true, "the service directory").status());
  return dir;
}

Status ValidateServiceName(std::string_view name) {
  // A channel's rule: the name becomes a file name, so never a path.
  if (Status st = Channel::ValidateName(name); !st.ok()) {
    return Status::InvalidArgument("service " + st.message().substr(st.message().find("name")));
  }
  return Status::OK();
}

Result<std::string> ServicePath(std::string_view name, std::string_view directory) {
  QUIVER_RETURN_IF_ERROR(ValidateServiceName(name));
  std::string dir(directory);
  if (dir.empty()) {
    QUIVER_ASSIGN_OR_RETURN(dir, ServiceDirectory());
  }
  return dir + "/" + std::string(name) + std::string(kSuffix);
}

Result<std::vector<std::string>> ListServices(std::string_view directory) {
  std::string dir(directory);
  if (dir.empty()) {
    QUIVER_ASSIGN_OR_RETURN(dir, ServiceDirectory());
  }
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return Status::FromErrno("opendir " + dir, errno);
  std::vector<std::string> names;
  while (const dirent* entry = ::readdir(d)) {
    const std::string_view file(entry->d_name);
    if (!file.ends_with(kSuffix)) continue;
    struct stat st {};
    if (::fstatat(::dirfd(d), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISSOCK(st.st_mode) || st.st_uid != ::geteuid()) {
      continue;
    }
    names.emplace_back(file.substr(0, file.size() - kSuffix.size()));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

Result<std::vector<std::string>> RemoveDeadServices(bool dry_run, std::string_view directory) {
  std::string dir(directory);
  if (dir.empty()) {
    QUIVER_ASSIGN_OR_RETURN(dir, ServiceDirectory());
  }
  QUIVER_ASSIGN_OR_RETURN(std::vector<std::string> names, ListServices(dir));
  std::vector<std::string> dead;
  for (const std::string& name : names) {
    const std::string path = dir + "/" + name + std::string(kSuffix);
    // A socket made in the last seconds may be a service between its bind and its listen.
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || ::time(nullptr) - st.st_ctime < 2) continue;
    if (SomeoneListens(path)) continue;
    if (!dry_run && ::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return Status::FromErrno("unlink " + path, errno);
    }
    dead.push_back(path);
  }
  return dead;
}

bool ServiceCall::caller_gone() const {
  if (results_channel == nullptr) return false;
  const ChannelStats stats = results_channel->Stats();
  return std::none_of(stats.subscribers.begin(), stats.subscribers.end(),
                      [](const SubscriberStats& s) { return s.alive; });
}

struct Service::Impl {
  std::string name;
  std::string path;
  std::unique_ptr<Server> server;
};

Service::Service(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Service::~Service() {
  if (impl_ && impl_->server) impl_->server->Stop();
  if (impl_) impl_->server.reset();  // joins the calls; the server removes its socket
}

Result<std::unique_ptr<Service>> Service::Listen(std::string name,
                                                 std::shared_ptr<arrow::Schema> schema,
                                                 ServiceHandler handler, ServiceOptions options) {
  if (schema == nullptr) {
    return Status::InvalidArgument("service '" + name + "' needs the schema of its results");
  }
  if (!handler) return Status::InvalidArgument("service '" + name + "' needs a handler");
  QUIVER_ASSIGN_OR_RETURN(std::string path, ServicePath(name, options.directory));
  QUIVER_ASSIGN_OR_RETURN(std::string schema_b64, SchemaBase64(*schema));

  Handlers handlers;
  const nlohmann::json info = {
      {"service", name}, {"description", options.description}, {"schema", schema_b64}};
  QUIVER_RETURN_IF_ERROR(handlers.Add(kCmdServiceInfo, [info](const Envelope&) -> Result<Envelope> {
    return MakeEnvelope(kResOk, info);
  }));
  auto shared_handler = std::make_shared<ServiceHandler>(std::move(handler));
  QUIVER_RETURN_IF_ERROR(handlers.Add(
      kCmdServiceCall, [shared_handler, name](const Envelope& command) -> Result<Envelope> {
        const nlohmann::json& p = command.payload;
        auto stream = p.find("stream");
        if (stream == p.end() || !stream->is_string()) {
          return Status::InvalidArgument(
              "CMD_SERVICE_CALL needs payload.stream, the channel to publish the results on");
        }
        const nlohmann::json request = p.value("request", nlohmann::json::object());
        QUIVER_ASSIGN_OR_RETURN(Channel channel, Channel::Open(stream->get<std::string>()));
        // A DoExchange's input: subscribed before the handler runs, so nothing sent is lost
        // (the caller waits for this subscriber before it publishes).
        std::optional<Channel> input_channel;
        std::optional<ArrowSubscriber> inputs;
        if (auto input = p.find("input"); input != p.end()) {
          if (!input->is_string()) {
            return Status::InvalidArgument("CMD_SERVICE_CALL payload.input must be a channel name");
          }
          QUIVER_ASSIGN_OR_RETURN(input_channel, Channel::Open(input->get<std::string>()));
          QUIVER_ASSIGN_OR_RETURN(inputs, ArrowSubscriber::Make(*input_channel));
        }
        Status ran;
        {
          // Closed before the answer: the caller reads the end of the stream, then RES_OK.
          QUIVER_ASSIGN_OR_RETURN(ArrowPublisher results, ArrowPublisher::Make(channel));
          ServiceCall call{request, results, inputs ? &*inputs : nullptr, &channel};
          try {
            ran = (*shared_handler)(call);
          } catch (const std::exception& e) {
            ran = Status::InvalidArgument(std::string("the handler threw: ") + e.what());
          }
        }
        if (!ran.ok()) return ran.Wrap(ran.code(), "service '" + name + "' failed");
        return MakeEnvelope(kResOk);
      }));

  ServeOptions serve;
  serve.max_connections = options.max_connections;
  Result<std::unique_ptr<Server>> server = Server::ListenUnix(path, handlers, serve);
  if (!server.ok() && server.status().code() == ErrorCode::kAlreadyExists) {
    // A socket left by a worker that died is ours to replace; a live one is not.
    struct stat st {};
    if (SomeoneListens(path)) {
      return Status::AlreadyExists("service '" + name + "' is already served (at " + path + ")");
    }
    if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_uid == ::geteuid()) {
      ::unlink(path.c_str());
      server = Server::ListenUnix(path, handlers, serve);
    }
  }
  if (!server.ok()) return server.status();
  auto impl = std::make_unique<Impl>();
  impl->name = std::move(name);
  impl->path = std::move(path);
  impl->server = std::move(server).value();
  return std::unique_ptr<Service>(new Service(std::move(impl)));
}

Status Service::Run() { return impl_->server->Run(); }
void Service::Start() { impl_->server->Start(); }
void Service::Stop() { impl_->server->Stop(); }
const std::string& Service::name() const { return impl_->name; }
const std::string& Service::path() const { return impl_->path; }

}  // namespace quiver::control
