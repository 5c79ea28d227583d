#include "pingpong/idle_receiver.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "pingpong/cleanup.h"
#include "pingpong/echo_child.h"
#include "pingpong/endpoint.h"
#include "pingpong/fd_io.h"
#include "pingpong/quiver_transport.h"
#include "pingpong/results.h"
#include "pingpong/stats.h"
#include "quiver/channel.h"
#include "quiver/status.h"

namespace quiver::bench::pingpong {

using std::chrono::milliseconds;

// The child measures its own CPU time across the wait and reports it through a pipe.
void BM_IdleReceiver(benchmark::State& state, Kind kind) {
  const long idle_ms = EnvLong("QUIVER_BENCH_IDLE_MS", 1000);
  const std::string name = NamePrefix() + "idle-" + std::string(KindName(kind));
  RememberShmPaths(name, name);
  int go[2], report[2];
  if (pipe2(go, O_CLOEXEC) != 0 || pipe2(report, O_CLOEXEC) != 0) {
    state.SkipWithError(Errno("pipe2").c_str());
    return;
  }
  Fd go_rx(go[0]), go_tx(go[1]), report_rx(report[0]), report_tx(report[1]);
  const pid_t parent = getpid();
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    state.SkipWithError(Errno("fork").c_str());
    return;
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    go_tx.Reset();
    report_rx.Reset();
    auto body = [&]() -> int {
      std::string error;
      char byte;
      if (getppid() != parent ||
          !ReadAll(go_rx.get(), reinterpret_cast<std::byte*>(&byte), 1, &error)) {
        return 0;
      }
      auto channel = quiver::Channel::Open(name);
      if (!channel.ok()) return 2;
      auto subscriber = channel->CreateSubscriber(SubscriberOptionsFor(kind));
      if (!subscriber.ok()) return 2;
      rusage before{}, after{};
      getrusage(RUSAGE_SELF, &before);
      const Clock::time_point start = Clock::now();
      const char ready = 'R';
      if (!WriteAll(report_tx.get(), reinterpret_cast<const std::byte*>(&ready), 1, &error)) {
        return 2;
      }
      auto sample = subscriber->Receive(std::chrono::seconds(30));
      const double wall = std::chrono::duration<double>(Clock::now() - start).count();
      getrusage(RUSAGE_SELF, &after);
      if (!sample.ok()) return 3;
      const double cpu_pct = (CpuSeconds(after) - CpuSeconds(before)) / wall * 100;
      return WriteAll(report_tx.get(), reinterpret_cast<const std::byte*>(&cpu_pct),
                      sizeof(cpu_pct), &error)
                 ? 0
                 : 2;
    };
    _exit(body());
  }
  ChildProcess child(pid);
  go_rx.Reset();
  report_tx.Reset();

  std::string error;
  double cpu_pct = 0;
  {
    auto channel = quiver::Channel::Create(name, {.capacity = 1 << 20});
    std::optional<quiver::Publisher> publisher;
    if (!channel.ok()) {
      error = channel.status().ToString();
    } else if (auto p = channel->CreatePublisher(); !p.ok()) {
      error = p.status().ToString();
    } else {
      publisher.emplace(std::move(*p));
    }
    const char go_byte = 'G';
    char ready = 0;
    if (error.empty() &&
        (!WriteAll(go_tx.get(), reinterpret_cast<const std::byte*>(&go_byte), 1, &error) ||
         !ReadAll(report_rx.get(), reinterpret_cast<std::byte*>(&ready), 1, &error))) {
      error = "the idle child failed to start: " + child.Finish(milliseconds(1000));
    }
    for (auto _ : state) {
      if (!error.empty()) break;
      const Clock::time_point t0 = Clock::now();
      std::this_thread::sleep_for(milliseconds(idle_ms));
      const std::byte one[8] = {};
      quiver::Status published = publisher->PublishCopy(one);
      if (!published.ok()) {
        error = published.ToString();
        break;
      }
      if (!ReadAll(report_rx.get(), reinterpret_cast<std::byte*>(&cpu_pct), sizeof(cpu_pct),
                   &error)) {
        break;
      }
      state.SetIterationTime(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    go_tx.Reset();  // a child still waiting for its go exits now
    const std::string end = child.Finish(milliseconds(5000));
    if (error.empty()) error = end;
  }
  ForgetShmPaths();
  if (!error.empty()) {
    if (!state.error_occurred()) state.SkipWithError(error.c_str());
    return;
  }
  IdleResults()[kind].push_back(cpu_pct);
  state.counters["idle_cpu_pct"] = cpu_pct;
  state.counters["idle_ms"] = static_cast<double>(idle_ms);
}

}  // namespace quiver::bench::pingpong
