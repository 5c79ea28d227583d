#include "quiver/schema_file.h"

#include <arrow/type.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

namespace quiver {
namespace {

TEST(SchemaFileTest, EveryTypeNameReadsAsItsArrowType) {
  std::string json = "[";
  for (std::string_view t : SchemaTypeNames()) {
    json += std::string(json.size() > 1 ? ", " : "") + "{\"name\": \"f_" + std::string(t) +
            "\", \"type\": \"" + std::string(t) + "\", \"nullable\": false}";
  }
  json += "]";
  auto schema = ParseSchemaJson(json, "all.json");
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  ASSERT_EQ(static_cast<size_t>((*schema)->num_fields()), SchemaTypeNames().size());
  EXPECT_EQ((*schema)->GetFieldByName("f_utf8")->type()->ToString(), "string");
  EXPECT_EQ((*schema)->GetFieldByName("f_timestamp[ms]")->type()->ToString(), "timestamp[ms]");
  EXPECT_EQ((*schema)->GetFieldByName("f_float32")->type()->ToString(), "float");
  EXPECT_FALSE((*schema)->field(0)->nullable());
}

TEST(SchemaFileTest, UnknownTypesAreRefusedListingTheKnownOnes) {
  auto schema = ParseSchemaJson(R"([{"name": "x", "type": "decimal"}])", "s.json");
  ASSERT_FALSE(schema.ok());
  EXPECT_EQ(schema.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(schema.status().message().find("s.json: field 'x' has unknown type 'decimal' "
                                           "(known: bool, int8,"),
            std::string::npos)
      << schema.status().message();
}

}  // namespace
}  // namespace quiver

namespace quiver {
namespace {

TEST(SchemaFileLoadTest, RefusesFifosDevicesAndHugeFilesInsteadOfHanging) {
  const std::string fifo = "/tmp/quiver-schema-fifo-" + std::to_string(getpid());
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  auto from_fifo = LoadSchemaFile(fifo);  // would block forever waiting for a writer
  unlink(fifo.c_str());
  EXPECT_EQ(from_fifo.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(from_fifo.status().message().find("not a regular file"), std::string::npos);
  EXPECT_EQ(LoadSchemaFile("/dev/zero").status().code(), ErrorCode::kInvalidArgument);

  const std::string big = "/tmp/quiver-schema-big-" + std::to_string(getpid());
  { std::ofstream(big) << std::string((1 << 20) + 1, ' '); }
  auto huge = LoadSchemaFile(big);
  unlink(big.c_str());
  EXPECT_NE(huge.status().message().find("larger than 1 MiB"), std::string::npos);
}

}  // namespace
}  // namespace quiver
