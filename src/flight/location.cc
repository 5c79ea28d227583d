#include "flight/location.h"

#include <algorithm>
#include <string>

namespace quiver::flight {

Result<Address> ParseAddress(std::string_view uri, std::string_view what) {
  const std::string text(uri);
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument(std::string(what) + " '" + text.substr(0, 200) + "': " + why +
                                   " (expected grpc://HOST:PORT or grpc+unix:///PATH)");
  };
  const size_t colon_slashes = text.find("://");
  if (colon_slashes == std::string::npos) return bad("no scheme");
  const std::string scheme = text.substr(0, colon_slashes);
  Address address;
  if (scheme == "grpc+unix") {
    address.unix_socket = text.substr(colon_slashes + 3);
    if (address.unix_socket.empty() || address.unix_socket.front() != '/') {
      return bad("a Unix socket needs an absolute path (grpc+unix:///PATH)");
    }
    return address;
  }
  if (scheme == "grpc+tls") {
    address.tls = true;
  } else if (scheme != "grpc" && scheme != "grpc+tcp") {
    return bad("unknown scheme '" + scheme + "'");
  }
  std::string rest = text.substr(colon_slashes + 3);
  const size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    address.path = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  size_t port_colon;
  if (!rest.empty() && rest.front() == '[') {  // [v6]:port
    const size_t close = rest.find(']');
    if (close == std::string::npos) return bad("unclosed '['");
    address.host = rest.substr(1, close - 1);
    port_colon = close + 1;
    if (port_colon >= rest.size() || rest[port_colon] != ':') return bad("no port");
  } else {
    port_colon = rest.rfind(':');
    if (port_colon == std::string::npos) return bad("no port");
    address.host = rest.substr(0, port_colon);
  }
  if (address.host.empty()) return bad("no host");
  const std::string port = rest.substr(port_colon + 1);
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoi(port) > 65535) {
    return bad("port '" + port.substr(0, 20) + "' is not 0 to 65535");
  }
  address.port = std::stoi(port);
  return address;
}

Result<Ticket> ParseTicket(std::string_view text) {
  const size_t question = text.find('?');
  Ticket ticket{std::string(text.substr(0, question))};
  if (ticket.channel.empty()) {
    return Status::InvalidArgument("ticket: no channel name (NAME[?from=latest|from=oldest])");
  }
  if (question == std::string_view::npos) return ticket;
  std::string_view options = text.substr(question + 1);
  bool from_given = false;
  while (!options.empty()) {
    const size_t amp = options.find('&');
    const std::string_view option = options.substr(0, amp);
    options = amp == std::string_view::npos ? std::string_view() : options.substr(amp + 1);
    if (option == "from=latest" || option == "from=oldest") {
      if (from_given) return Status::InvalidArgument("ticket: from= given twice");
      from_given = true;
      ticket.from_oldest = option == "from=oldest";
      continue;
    }
    return Status::InvalidArgument("ticket: unknown option '" + std::string(option.substr(0, 80)) +
                                   "' (known: from=latest, from=oldest)");
  }
  return ticket;
}

Result<RemoteChannel> ParseRemoteChannel(std::string_view uri) {
  QUIVER_ASSIGN_OR_RETURN(Address address, ParseAddress(uri, "remote channel"));
  if (!address.unix_socket.empty()) {  // grpc+unix:///SOCKET/CHANNEL: names have no '/'
    const size_t slash = address.unix_socket.rfind('/');
    if (slash == 0) {
      return Status::InvalidArgument("remote channel '" + std::string(uri.substr(0, 200)) +
                                     "': no channel (grpc+unix:///SOCKET/CHANNEL)");
    }
    const std::string path = address.unix_socket.substr(slash + 1);
    QUIVER_ASSIGN_OR_RETURN(Ticket ticket, ParseTicket(path));
    return RemoteChannel{"grpc+unix://" + address.unix_socket.substr(0, slash), path,
                         ticket.channel};
  }
  if (address.path.empty()) {
    return Status::InvalidArgument("remote channel '" + std::string(uri.substr(0, 200)) +
                                   "': no channel (grpc://HOST:PORT/CHANNEL)");
  }
  QUIVER_ASSIGN_OR_RETURN(Ticket ticket, ParseTicket(address.path));
  const std::string host =
      address.host.find(':') != std::string::npos ? "[" + address.host + "]" : address.host;
  return RemoteChannel{std::string(address.tls ? "grpc+tls://" : "grpc+tcp://") + host + ":" +
                           std::to_string(address.port),
                       address.path, ticket.channel};
}

}  // namespace quiver::flight
