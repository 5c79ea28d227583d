// W3 "frames": one-way latency of a payload ping-ponged between two processes (one-way =
// round trip / 2), Quiver channels against the bare limits and the kernel's copying peers.
//
// Transports, all measured in the same run, one forked echo child per case:
//   futex            two 32-bit words in a MAP_SHARED mapping, FUTEX_WAIT/FUTEX_WAKE, no
//                    spin and no payload: the floor of a blocking wake-up across processes
//   spin             two cache lines busy-polled, no payload: the floor of busy-polling
//   uds              AF_UNIX stream socketpair, the full payload written and read each way
//   pipe             two pipes, the full payload each way
//   quiver-blocking  two channels (ping, pong); Loan + fill + Publish, Receive with spin = 0
//   quiver-default   the same with the default SubscriberOptions (20 us spin, then futex)
//   quiver-spin      the same, the receiver busy-polls TryReceive()
// Every sender producing a payload writes all of its bytes for every message (memset, then
// the sequence number in the first 8 bytes): the socket and pipe peers write into their user
// buffer and the kernel copies it twice; Quiver writes into the loan and copies nothing. The
// receiver checks the sequence number and the last byte.
//
// Every case runs in three placements: ".../sched" (nothing pinned: what a user gets),
// ".../apart" (parent and child pinned to two CPUs) and ".../together" (both pinned to one
// CPU). On a small machine they differ in kind, not degree: on one CPU a blocking wake-up is
// a context switch and a busy-poller starves the very process it waits for; on two CPUs every
// blocking wake-up is a cross-CPU wake-up of a sleeping CPU. Left alone, the scheduler moves
// between the two, so each case also reports how often both processes sat on one CPU.
//
// Also measured: "fill", writing the payload once in one process (memset, as the senders do),
// since the bare futex and spin move no payload and a zero-copy transport still pays for it.
//
// Environment:
//   QUIVER_BENCH_ROUNDS        round trips per case for payloads up to 4 KiB (default 20000;
//                              64 KiB runs half as many, 1 MiB a tenth, 8 MiB a hundredth,
//                              never under 100)
//   QUIVER_BENCH_IDLE_MS       how long the idle-receiver cases leave a subscriber waiting
//   QUIVER_BENCH_SUMMARY_MD    also write the summary tables to this file
//   QUIVER_BENCH_SUMMARY_JSON  also write the workload-shaped result file (docs/benchmarks.md)
//   QUIVER_BENCH_PIN=P,C       CPUs of the parent and of the child when pinned apart
//                              (default 0,1; pinned together, both use P)
// With --benchmark_repetitions=N the summary reports the median over the N runs of each
// statistic (the median of the medians for p50).
//
// The pieces live in bench/pingpong/: the case harness (harness, echo_child, placement,
// cleanup), one file per transport family (floor_transports: futex and spin;
// kernel_transports: uds and pipe; quiver_transport), the fill and idle cases, and the
// reports (markdown_report, json_report). This file registers the cases and runs them.

#include <benchmark/benchmark.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

#include "pingpong/cases.h"
#include "pingpong/cleanup.h"
#include "pingpong/fill.h"
#include "pingpong/harness.h"
#include "pingpong/idle_receiver.h"
#include "pingpong/json_report.h"
#include "pingpong/markdown_report.h"
#include "pingpong/placement.h"

namespace quiver::bench::pingpong {
namespace {

void RegisterAll() {
  // Sizes outside, transports inside: the cases of one size run back to back, so the
  // machine's drift hits every transport of a comparison alike.
  for (Placement placement : kPlacements) {
    for (size_t size : kSizes) {
      for (Kind kind : kKinds) {
        // iceoryx2's own method is compared pinned apart and as scheduled, as its peer runs.
        if (kind == Kind::kQuiverSpinOwnMethod && placement == Placement::kTogether) continue;
        const std::string name = "pingpong/" + std::string(KindName(kind)) + "/" +
                                 std::to_string(size) + "/" + std::string(PlacementName(placement));
        benchmark::RegisterBenchmark(name.c_str(), BM_PingPong, kind, size, placement)
            ->Iterations(RoundsFor(size))
            ->UseManualTime()
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
  for (size_t size : kSizes) {
    const std::string name = "fill/" + std::to_string(size);
    benchmark::RegisterBenchmark(name.c_str(), BM_Fill, size)
        ->Iterations(RoundsFor(size))
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
  }
  for (Kind kind : {Kind::kQuiverBlocking, Kind::kQuiverDefault}) {
    const std::string name = "idle/" + std::string(KindName(kind));
    benchmark::RegisterBenchmark(name.c_str(), BM_IdleReceiver, kind)
        ->Iterations(1)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  }
}

// Writes `text` to the file named by the environment variable `env`, if it is set.
void WriteFile(const char* env, const std::string& text) {
  const char* path = std::getenv(env);
  if (path == nullptr || *path == '\0') return;
  std::ofstream file(path);
  file << text;
  if (!file) std::fprintf(stderr, "pingpong: could not write %s (%s)\n", path, env);
}

}  // namespace
}  // namespace quiver::bench::pingpong

int main(int argc, char** argv) {
  namespace pingpong = quiver::bench::pingpong;
  // The summary follows the benchmark's own output; keep it off stdout when stdout is JSON
  // or CSV for a machine to read.
  bool console = true;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.rfind("--benchmark_format=", 0) == 0 && arg != "--benchmark_format=console") {
      console = false;
    }
  }
  pingpong::InstallSignalCleanup();
  signal(SIGPIPE, SIG_IGN);  // a dead peer is an EPIPE, reported, not a silent exit
  if (!pingpong::MapCpuBoard()) return 1;

  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  pingpong::RegisterAll();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();

  const std::string summary = pingpong::SummaryMarkdown();
  std::fprintf(console ? stdout : stderr, "\n%s", summary.c_str());
  pingpong::WriteFile("QUIVER_BENCH_SUMMARY_MD", summary);
  pingpong::WriteFile("QUIVER_BENCH_SUMMARY_JSON", pingpong::SummaryJson());
  return pingpong::SweepLeftovers() == 0 ? 0 : 2;
}
