#include "pingpong/markdown_report.h"

#include <sys/utsname.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <thread>
#include <tuple>

#include "pingpong/cases.h"
#include "pingpong/placement.h"
#include "pingpong/results.h"
#include "pingpong/stats.h"
#include "pingpong/summary.h"

namespace quiver::bench::pingpong {
namespace {

std::string Fixed(double v, int digits = 2) {
  if (std::isnan(v)) return "–";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

std::string Ratio(double a, double b) {
  if (std::isnan(a) || std::isnan(b) || b <= 0) return "–";
  return Fixed(a / b) + "×";
}

std::string MachineLine() {
  utsname u{};
  uname(&u);
  std::string model = "unknown CPU";
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  return std::to_string(std::thread::hardware_concurrency()) + " CPUs (" + model + "), Linux " +
         u.release;
}

std::string PlacementTitle(Placement placement) {
  const Pinning pin = PinningFromEnv();
  switch (placement) {
    case Placement::kScheduler:
      return "sched: placed by the scheduler (nothing pinned)";
    case Placement::kApart:
      return "apart: parent pinned to CPU " + std::to_string(pin.parent) + ", child to CPU " +
             std::to_string(pin.child);
    case Placement::kTogether:
      return "together: both pinned to CPU " + std::to_string(pin.parent);
  }
  return "?";
}

double FillP50(size_t size) {
  auto it = FillResults().find(size);
  return it == FillResults().end() ? NAN : Median(it->second);
}

// The header of a table with one column per transport.
void TransportColumns(std::ostringstream& out) {
  out << "| payload |";
  for (Kind k : kKinds) out << " " << KindName(k) << " |";
  out << "\n|---|";
  for (size_t i = 0; i < std::size(kKinds); ++i) out << "---:|";
  out << "\n";
}

void LatencyTable(std::ostringstream& out, Placement placement) {
  TransportColumns(out);
  for (size_t size : kSizes) {
    out << "| " << SizeName(size) << " |";
    for (Kind k : kKinds) {
      std::optional<Summary> s = Summarize(placement, size, k);
      out << " " << (s ? Fixed(s->p50) + " / " + Fixed(s->p99) + " / " + Fixed(s->p999) : "–")
          << " |";
    }
    out << "\n";
  }
}

void RatioTable(std::ostringstream& out, Placement placement) {
  out << "| payload | quiver-blocking | ÷ futex | ÷ (futex + fill) | ÷ uds | ÷ pipe | "
         "quiver-default ÷ futex | quiver-spin ÷ spin | quiver-spin ÷ uds | goal |\n";
  out << "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
  for (size_t size : kSizes) {
    auto get = [&](Kind k) {
      std::optional<Summary> s = Summarize(placement, size, k);
      return s ? s->p50 : NAN;
    };
    const double qb = get(Kind::kQuiverBlocking), fx = get(Kind::kFutex), uds = get(Kind::kUds);
    const double pipe = get(Kind::kPipe), qd = get(Kind::kQuiverDefault);
    const double qs = get(Kind::kQuiverSpin), spin = get(Kind::kSpin);
    std::string goal = "–";
    if (!std::isnan(qb) && !std::isnan(fx) && !std::isnan(uds)) {
      const bool futex_ok = qb <= 3 * fx, uds_ok = qb < uds;
      goal = futex_ok && uds_ok
                 ? "met"
                 : std::string("missed (") + (futex_ok ? "" : "> 3× futex") +
                       (!futex_ok && !uds_ok ? ", " : "") + (uds_ok ? "" : "≥ uds") + ")";
    }
    out << "| " << SizeName(size) << " | " << Fixed(qb) << " | " << Ratio(qb, fx) << " | "
        << Ratio(qb, fx + FillP50(size)) << " | " << Ratio(qb, uds) << " | " << Ratio(qb, pipe)
        << " | " << Ratio(qd, fx) << " | " << Ratio(qs, spin) << " | " << Ratio(qs, uds) << " | "
        << goal << " |\n";
  }
}

void CostTable(std::ostringstream& out, Placement placement) {
  TransportColumns(out);
  for (size_t size : kSizes) {
    out << "| " << SizeName(size) << " |";
    for (Kind k : kKinds) {
      std::optional<Summary> s = Summarize(placement, size, k);
      out << " "
          << (s ? Fixed(s->cpu, 1) + " / " + Fixed(s->csw, 2) + " / " + Fixed(s->same_cpu, 0) : "–")
          << " |";
    }
    out << "\n";
  }
}

}  // namespace

std::string SummaryMarkdown() {
  std::ostringstream out;
  size_t runs = 0;
  for (const auto& [key, v] : Results()) runs = std::max(runs, v.size());
  out << "# W3 ping-pong, one-way latency in µs\n\n";
  out << "Machine: " << MachineLine() << ". "
      << (runs > 1 ? "Each figure is the median over " + std::to_string(runs) + " runs"
                   : std::string("One run"))
      << "; every ratio compares figures of the same run.\n";
  for (Placement placement : kPlacements) {
    bool any = false;
    for (const auto& [key, v] : Results()) any = any || std::get<0>(key) == placement;
    if (!any) continue;
    out << "\n## " << PlacementTitle(placement) << "\n\n";
    out << "p50 / p99 / p99.9:\n\n";
    LatencyTable(out, placement);
    out << "\nRatios of p50 (goal: quiver-blocking ≤ 3× futex and < uds):\n\n";
    RatioTable(out, placement);
    out << "\nPer round trip: parent CPU µs / parent voluntary context switches / % of "
           "samples with both processes on one CPU:\n\n";
    CostTable(out, placement);
  }
  if (!FillResults().empty()) {
    out << "\nfill (writing the payload once, one process), p50 µs:";
    for (size_t size : kSizes)
      out << " " << SizeName(size) << " " << Fixed(FillP50(size), 3) << ";";
    out << "\n";
  }
  if (!IdleResults().empty()) {
    out << "\nIdle receiver (a subscriber blocked in Receive() with no traffic), CPU %: ";
    bool first = true;
    for (const auto& [kind, v] : IdleResults()) {
      out << (first ? "" : ", ") << KindName(kind) << " " << Fixed(Median(v), 3);
      first = false;
    }
    out << "\n";
  }
  return out.str();
}

}  // namespace quiver::bench::pingpong
