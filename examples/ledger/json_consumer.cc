// The way such pipelines are often built today, for comparison: Ledger rows as JSON objects, one per line on
// stdin, parsed in C++ (nlohmann::json). Prints the row count and sum(amount).
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

int main() {
  std::ios::sync_with_stdio(false);
  std::string line;
  long long rows = 0;
  double amount = 0;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    auto row = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (row.is_discarded() || !row.contains("amount")) {
      std::fprintf(stderr, "json_consumer: bad line %lld\n", rows + 1);
      return 1;
    }
    amount += row["amount"].get<double>();
    ++rows;
  }
  std::printf("{\"rows\": %lld, \"amount\": %.6f}\n", rows, amount);
  return 0;
}
