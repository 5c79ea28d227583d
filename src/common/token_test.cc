#include "common/token.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

namespace quiver {
namespace {

std::string Write(const std::string& text) {
  const std::string path = "/tmp/quiver-token-test-" + std::to_string(::getpid());
  std::ofstream(path) << text;
  return path;
}

TEST(TokenTest, ATokenFileIsItsFirstLineTrimmed) {
  const std::string path = Write("  s3cret \t\r\nsecond line\n");
  EXPECT_EQ(*ReadTokenFile(path), "s3cret");
  std::remove(path.c_str());
}

TEST(TokenTest, EmptyAndMissingFilesAreClearErrors) {
  const std::string path = Write(" \n");
  const auto empty = ReadTokenFile(path);
  EXPECT_EQ(empty.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(empty.status().message(), "token file '" + path + "' is empty");
  std::remove(path.c_str());
  EXPECT_EQ(ReadTokenFile(path).status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(TrimToken(" \t\n"), "");
}

}  // namespace
}  // namespace quiver
