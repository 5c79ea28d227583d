// Smoke test: Arrow C++ (from a CMake config or the pyarrow wheel) compiles, links and
// runs in our toolchain — including under ASan/UBSan.
#include <arrow/api.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace {

TEST(ArrowSmokeTest, BuildsValidRecordBatch) {
  arrow::Int32Builder ids;
  arrow::StringBuilder names;
  ASSERT_TRUE(ids.AppendValues(std::vector<int32_t>{7, 11, 42}).ok());
  ASSERT_TRUE(ids.AppendNull().ok());
  ASSERT_TRUE(names.AppendValues(std::vector<std::string>{"alpha", "beta", "gamma"}).ok());
  ASSERT_TRUE(names.Append("delta").ok());

  std::shared_ptr<arrow::Array> id_array;
  std::shared_ptr<arrow::Array> name_array;
  ASSERT_TRUE(ids.Finish(&id_array).ok());
  ASSERT_TRUE(names.Finish(&name_array).ok());

  auto schema =
      arrow::schema({arrow::field("id", arrow::int32()), arrow::field("name", arrow::utf8())});
  auto batch = arrow::RecordBatch::Make(schema, 4, {id_array, name_array});

  ASSERT_EQ(batch->num_rows(), 4);
  ASSERT_EQ(batch->num_columns(), 2);
  const arrow::Status status = batch->ValidateFull();
  ASSERT_TRUE(status.ok()) << status.ToString();

  auto id_col = std::static_pointer_cast<arrow::Int32Array>(batch->GetColumnByName("id"));
  auto name_col = std::static_pointer_cast<arrow::StringArray>(batch->GetColumnByName("name"));
  ASSERT_NE(id_col, nullptr);
  ASSERT_NE(name_col, nullptr);
  EXPECT_EQ(id_col->Value(2), 42);
  EXPECT_TRUE(id_col->IsNull(3));
  EXPECT_EQ(name_col->GetString(1), "beta");
  EXPECT_EQ(name_col->GetView(3), "delta");
  EXPECT_EQ(batch->schema()->field(1)->ToString(), "name: string");
}

}  // namespace
