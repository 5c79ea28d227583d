#include "pingpong/json_report.h"

#include <sys/utsname.h>

#include <cmath>
#include <cstdio>
#include <iterator>
#include <optional>
#include <sstream>
#include <string_view>
#include <thread>

#include "pingpong/cases.h"
#include "pingpong/placement.h"
#include "pingpong/results.h"
#include "pingpong/stats.h"
#include "pingpong/summary.h"

namespace quiver::bench::pingpong {
namespace {

std::string JsonEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out;
}

std::string JsonNumber(double v) {
  if (std::isnan(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4f", v);
  return buf;
}

}  // namespace

std::string SummaryJson() {
  utsname u{};
  uname(&u);
  std::ostringstream out;
  out << "{\"workload\": \"w3-frames-pingpong\", \"params\": {\"payload_bytes\": [";
  for (size_t i = 0; i < std::size(kSizes); ++i) out << (i ? ", " : "") << kSizes[i];
  out << "], \"latency\": \"one-way = round trip / 2\", \"peers\": \"C++ <-> C++\"}, ";
  out << "\"machine\": {\"cpus\": " << std::thread::hardware_concurrency() << ", \"kernel\": \""
      << JsonEscape(u.release) << "\"}, \"results\": [";
  bool first = true;
  for (Placement placement : kPlacements) {
    for (size_t size : kSizes) {
      for (Kind k : kKinds) {
        std::optional<Summary> s = Summarize(placement, size, k);
        if (!s) continue;
        out << (first ? "\n  " : ",\n  ") << "{\"transport\": \"" << KindName(k)
            << "\", \"payload_bytes\": " << size << ", \"placement\": \""
            << PlacementName(placement) << "\", \"median_us\": " << JsonNumber(s->p50)
            << ", \"p99_us\": " << JsonNumber(s->p99) << ", \"p999_us\": " << JsonNumber(s->p999)
            << ", \"mean_us\": " << JsonNumber(s->mean)
            << ", \"same_cpu_pct\": " << JsonNumber(s->same_cpu) << ", \"runs\": " << s->runs
            << ", \"round_trips_per_run\": " << s->rounds << "}";
        first = false;
      }
    }
  }
  for (const auto& [size, v] : FillResults()) {
    out << (first ? "\n  " : ",\n  ") << "{\"transport\": \"fill\", \"payload_bytes\": " << size
        << ", \"median_us\": " << JsonNumber(Median(v)) << ", \"runs\": " << v.size() << "}";
    first = false;
  }
  for (const auto& [kind, v] : IdleResults()) {
    out << (first ? "\n  " : ",\n  ") << "{\"transport\": \"" << KindName(kind)
        << "\", \"idle_receiver_cpu_pct\": " << JsonNumber(Median(v)) << ", \"runs\": " << v.size()
        << "}";
    first = false;
  }
  out << "\n]}\n";
  return out.str();
}

}  // namespace quiver::bench::pingpong
