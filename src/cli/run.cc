#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <iostream>

#include "cli/commands.h"
#include "supervisor/supervisor.h"

namespace quiver::cli {

int Run(const std::string& pipeline_file, double grace_seconds) {
  auto pipeline = supervisor::LoadPipeline(pipeline_file);
  if (!pipeline.ok()) {
    std::cerr << "quiver run: " << pipeline.status().message() << "\n";
    return 2;
  }
  supervisor::RunOptions options;
  options.grace_period = std::chrono::milliseconds(static_cast<int64_t>(grace_seconds * 1000));
  // The stop signals stay blocked for good: while the pipeline runs, RunPipeline reads them
  // from its signalfd; after it ended, a late Ctrl-C must not kill us before the report is
  // out (it was: exit by SIGINT with nothing said).
  sigset_t stop;
  sigemptyset(&stop);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&stop, sig);
  ::pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  // Main thread, no other threads yet: the nodes' PR_SET_PDEATHSIG and the blocked signals
  // are tied to this thread (see supervisor.h).
  auto report = supervisor::RunPipeline(*pipeline, options);
  if (!report.ok()) {
    std::cerr << "quiver run: " << report.status().ToString() << "\n";
    return 1;
  }
  std::cerr << "quiver run: " << report->ToString() << "\n";
  return report->exit_code;
}

}  // namespace quiver::cli
