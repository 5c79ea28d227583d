#include "common/token.h"

#include <fstream>

namespace quiver {

std::string TrimToken(std::string_view text) {
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return "";
  const size_t last = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(first, last - first + 1));
}

Result<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("token file '" + path + "' cannot be read");
  std::string line;
  std::getline(in, line);
  std::string token = TrimToken(line);
  if (token.empty()) return Status::InvalidArgument("token file '" + path + "' is empty");
  return token;
}

}  // namespace quiver
