#include "pingpong/results.h"

namespace quiver::bench::pingpong {

std::map<CaseKey, std::vector<CaseResult>>& Results() {
  static std::map<CaseKey, std::vector<CaseResult>> results;
  return results;
}

std::map<size_t, std::vector<double>>& FillResults() {
  static std::map<size_t, std::vector<double>> results;
  return results;
}

std::map<Kind, std::vector<double>>& IdleResults() {
  static std::map<Kind, std::vector<double>> results;
  return results;
}

}  // namespace quiver::bench::pingpong
