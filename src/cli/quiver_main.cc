// The `quiver` command: run pipelines, look at channels, clean up, benchmark, reach other hosts.
//   quiver run FILE | ls [--json] | top | echo CHANNEL | info CHANNEL | clean [--dry-run] |
//   bench [--workload W] [--quick]
//   [--json] | serve [--listen grpc://HOST:PORT] | bridge grpc://HOST:PORT/CHANNEL --to NAME
#include <arrow/util/config.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/channels.h"
#include "cli/commands.h"
#include "common/byte_size.h"
#include "discovery/discovery.h"
#include "quiver/control.h"
#include "supervisor/pipeline.h"

namespace quiver::cli {
namespace {

void Report(const std::vector<std::string>& problems) {
  for (const std::string& problem : problems) std::cerr << "quiver: " << problem << "\n";
}

int Ls(bool json) {
  std::vector<std::string> problems;
  const std::vector<discovery::ChannelEntry> rows = discovery::ListChannels(&problems);
  Report(problems);
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const discovery::ChannelEntry& row : rows) {
      out.push_back(nlohmann::json::parse(row.ToJson()));
    }
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << FormatTable(rows);
  }
  return 0;
}

int Clean(bool dry_run) {
  int kept = 0;
  Result<std::vector<discovery::Removal>> removals = discovery::RemoveStale(dry_run, &kept);
  if (!removals.ok()) {
    std::cerr << "quiver clean: " << removals.status().ToString() << "\n";
    return 1;
  }
  int removed = 0;
  for (const discovery::Removal& r : *removals) {
    if (!r.error.empty()) {
      std::cerr << "quiver clean: " << r.path << ": " << r.error << "\n";
    } else if (dry_run) {
      std::cout << "would remove " << r.path << " (every owner died)\n";
      ++removed;
    } else if (r.removed) {
      std::cout << "removed " << r.path << " (every owner died)\n";
      ++removed;
    }
  }
  std::cout << (dry_run ? "would remove " : "removed ") << removed << " stale segment"
            << (removed == 1 ? "" : "s") << "; " << kept << " in use left alone\n";
  // Service sockets whose worker died (compute services, quiver/control.h).
  Result<std::vector<std::string>> dead = control::RemoveDeadServices(dry_run);
  if (!dead.ok()) {
    std::cerr << "quiver clean: " << dead.status().ToString() << "\n";
    return 1;
  }
  for (const std::string& path : *dead) {
    std::cout << (dry_run ? "would remove " : "removed ") << path
              << " (its service's worker died)\n";
  }
  return 0;
}

}  // namespace
}  // namespace quiver::cli

namespace {

int Main(int argc, char** argv) {
  using namespace quiver::cli;
  CLI::App app{"quiver: zero-copy shared-memory channels between processes"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("quiver 0.1.0 (channel layout ") +
                                        std::to_string(quiver::Channel::LayoutVersion()) +
                                        ", Arrow " + ARROW_VERSION_STRING + ")");

  auto* run = app.add_subcommand("run",
                                 "Run a pipeline file: create its channels, start its "
                                 "nodes, stop them all when one fails");
  std::string pipeline_file;
  double grace = 2.0;
  run->add_option("file", pipeline_file, "Pipeline file (TOML)")
      ->required()
      ->check(CLI::ExistingFile);
  run->add_option("--grace", grace,
                  "Seconds stopped nodes get: on a stop (a node failed, Ctrl-C, SIGTERM) every "
                  "node gets SIGINT at once, SIGTERM after half of this, SIGKILL at its end; a "
                  "second Ctrl-C kills at once")
      ->capture_default_str();

  auto* ls = app.add_subcommand("ls",
                                "List channels: capacity, fill, publisher, subscribers, queued, "
                                "counters");
  bool ls_json = false;
  ls->add_flag("--json", ls_json, "Machine-readable output");

  auto* top = app.add_subcommand(
      "top",
      "Live view of the channels: rates per second and a line per subscriber (its lag: "
      "queued, held, missed); fits the terminal, colours unless NO_COLOR; q or Ctrl-C quits");
  double interval = 1.0;
  int iterations = 0;
  top->add_option("--interval", interval, "Seconds between refreshes")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  top->add_option("--iterations", iterations, "Stop after N refreshes (0: until q or Ctrl-C)")
      ->capture_default_str();

  auto* echo = app.add_subcommand(
      "echo",
      "Print a channel's samples as they arrive: Arrow batches as their first rows, tensors "
      "as dtype, shape, min/max/mean, frames as their format, raw samples as bytes");
  EchoOptions echo_options;
  echo->add_option("channel", echo_options.channel, "Channel name (see quiver ls)")->required();
  echo->add_option("-n,--count", echo_options.count,
                   "Stop after N samples (0: until Ctrl-C or the publisher is gone)")
      ->capture_default_str();
  echo->add_flag("--json", echo_options.json, "One JSON object per sample and line");
  echo->add_flag("--from-oldest", echo_options.from_oldest,
                 "Start with the samples the channel still holds for others");

  auto* info = app.add_subcommand(
      "info",
      "One channel in detail: schema versions, capacity and policy, the publisher's and each "
      "subscriber's pid, queued and held samples per subscriber, stalls");
  std::string info_channel;
  bool info_json = false;
  info->add_option("channel", info_channel, "Channel name (see quiver ls)")->required();
  info->add_flag("--json", info_json, "Machine-readable output");

  auto* clean = app.add_subcommand("clean", "Remove named segments whose owners all died");
  bool dry_run = false;
  clean->add_flag("--dry-run", dry_run, "Only say what would be removed");

  auto* bench = app.add_subcommand(
      "bench",
      "Run the benchmark suite (workloads W1-W6 of docs/benchmarks.md, each against real "
      "peers in one run); writes bench/results/<workload>.json and .png");
  BenchOptions bench_options;
  bench
      ->add_option("-w,--workload", bench_options.workload,
                   "Comma-separated workloads: all, w1 (ledger), w2 (image), w3 (frames "
                   "latency), w4 (ingest), w5 (flight), w6 (command/result)")
      ->capture_default_str();  // the suite checks the names: it owns the list
  bench->add_flag("--quick", bench_options.quick,
                  "Small repetition counts: every workload, the whole suite in under 2 minutes");
  bench->add_flag("--json", bench_options.json,
                  "Print every result file as one JSON document on stdout (progress: stderr)");
  bench->add_flag("--list", bench_options.list, "List the workloads and exit");
  bench->add_option("--build", bench_options.build,
                    "Build tree with the C++ peers (default: this binary's directory)");
  bench->add_option("--results", bench_options.results,
                    "Where the result files go (default: bench/results/ of the source tree)");

  auto* serve = app.add_subcommand(
      "serve",
      "Serve this user's Arrow channels over Arrow Flight (gRPC): ListFlights, "
      "GetFlightInfo, DoGet (live tail), DoPut (publish), DoAction list-channels/stats");
  serve->footer(
      "Who gets in:\n"
      "  By default quiver serve listens on a Unix socket in this user's private runtime\n"
      "  directory ($XDG_RUNTIME_DIR/quiver/flight.sock, or /tmp/quiver-<uid>/flight.sock),\n"
      "  so only this user reaches it:\n"
      "    pyarrow.flight.connect(\"grpc+unix:///run/user/1000/quiver/flight.sock\")\n"
      "  A TCP listener (--listen grpc://HOST:PORT, loopback included) requires a bearer\n"
      "  token on every call: --token-file FILE, or $QUIVER_FLIGHT_TOKEN; with neither, a\n"
      "  random token is written to a 0600 file in the runtime directory and its path is\n"
      "  printed. Clients send the header \"authorization: Bearer TOKEN\" (quiver bridge\n"
      "  --token-file FILE, the Go client -token, pyarrow.flight.FlightCallOptions(headers=)).\n"
      "  A non-loopback address also needs TLS (--tls-cert, --tls-key).\n"
      "What comes in is checked: every DoPut batch is fully validated before it reaches\n"
      "shared memory; a message over --max-message-size is refused (RESOURCE_EXHAUSTED)\n"
      "before it is buffered; DoPut streams may hold at most --put-max-channels channels\n"
      "and --put-max-bytes bytes of channels they created.");
  quiver::flight::ServerOptions serve_options;
  std::string serve_token_file, put_capacity = "64MiB", put_overflow = "block";
  std::string put_max_bytes = "1GiB", max_message = "";
  serve->add_option("--listen", serve_options.listen,
                    "grpc+unix:///PATH (a socket in a directory only you can enter), or "
                    "grpc://HOST:PORT (TCP, port 0: any free port; needs a token). Default: "
                    "grpc+unix://$XDG_RUNTIME_DIR/quiver/flight.sock");
  serve->add_option("--tls-cert", serve_options.tls_cert_file, "PEM certificate: serve TLS")
      ->check(CLI::ExistingFile);
  serve->add_option("--tls-key", serve_options.tls_key_file, "PEM private key of --tls-cert")
      ->check(CLI::ExistingFile);
  serve
      ->add_option("--token-file", serve_token_file,
                   "Require this bearer token (first line of the file) on every call; "
                   "default: $QUIVER_FLIGHT_TOKEN if set; a TCP listener without either gets a "
                   "generated token file")
      ->check(CLI::ExistingFile);
  serve->add_flag("--allow-insecure-remote", serve_options.allow_insecure_remote,
                  "Serve a non-loopback address without TLS (a token is still required)");
  serve->add_option("--max-message-size", max_message,
                    "Largest gRPC message accepted, e.g. a DoPut batch (default: --capacity + "
                    "1MiB)");
  serve
      ->add_option("--put-max-channels", serve_options.put_max_channels,
                   "Channels that DoPut streams may have created and hold at once")
      ->capture_default_str();
  serve
      ->add_option("--put-max-bytes", put_max_bytes,
                   "Bytes of channels that DoPut streams may have created and hold at once")
      ->capture_default_str();
  // serve's and bridge's options for the channels they create.
  auto add_channel_options = [](CLI::App* command, std::string* capacity, std::string* overflow,
                                const std::string& which) {
    command->add_option("--capacity", *capacity, "Capacity of " + which)->capture_default_str();
    command->add_option("--overflow", *overflow, "Overflow policy of " + which)
        ->check(CLI::IsMember({"block", "drop-oldest"}))
        ->capture_default_str();
  };
  add_channel_options(serve, &put_capacity, &put_overflow, "channels a DoPut creates");

  auto* bridge = app.add_subcommand(
      "bridge",
      "Subscribe a remote channel (a `quiver serve` elsewhere) into a local channel, until "
      "the remote publisher is gone or Ctrl-C");
  quiver::flight::BridgeOptions bridge_options;
  std::string bridge_token_file, bridge_capacity = "64MiB", bridge_overflow = "block";
  bool bridge_quiet = false;
  bridge
      ->add_option("remote", bridge_options.remote,
                   "grpc://HOST:PORT/CHANNEL, or .../CHANNEL?from=oldest to start with the "
                   "batches the remote channel still holds for its other readers")
      ->required();
  bridge->add_option("--to", bridge_options.to, "Local channel (created if it does not exist)")
      ->required();
  add_channel_options(bridge, &bridge_capacity, &bridge_overflow, "the local channel if created");
  bridge
      ->add_option("--token-file", bridge_token_file,
                   "Send this bearer token (first line of the file); default: "
                   "$QUIVER_FLIGHT_TOKEN if set")
      ->check(CLI::ExistingFile);
  bridge
      ->add_option("--tls-roots", bridge_options.tls_roots_file,
                   "PEM root certificates for a grpc+tls:// remote")
      ->check(CLI::ExistingFile);
  bridge->add_option("--batches", bridge_options.max_batches, "Stop after N batches (0: no limit)")
      ->capture_default_str();
  bridge->add_flag("-q,--quiet", bridge_quiet, "No progress or summary on stderr");

  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    for (const CLI::App* sub : app.get_subcommands({})) known |= sub->get_name() == argv[1];
    if (!known) {
      std::cerr << "quiver: unknown command '" << argv[1] << "' (see quiver --help)\n";
      return 2;
    }
  }
  CLI11_PARSE(app, argc, argv);
  if (*ls) return Ls(ls_json);
  if (*top) return Top(interval, iterations);
  if (*echo) return Echo(echo_options);
  if (*info) return Info(info_channel, info_json);
  if (*clean) return Clean(dry_run);
  if (*bench) return Bench(bench_options, argv[0]);
  if (*run) return Run(pipeline_file, grace);
  // serve's and bridge's --capacity (a byte size) and --overflow (checked by CLI11).
  auto channel_options = [](const char* command, const std::string& capacity_text,
                            const std::string& overflow, size_t* capacity,
                            quiver::OverflowPolicy* policy) {
    auto parsed = quiver::ParseByteSize(capacity_text);
    if (!parsed.ok()) {
      std::cerr << "quiver " << command << ": --capacity: " << parsed.status().message() << "\n";
      return false;
    }
    *capacity = *parsed;
    *policy = *quiver::ParseOverflowPolicy(overflow);  // CLI11 allowed only the two names
    return true;
  };
  if (*serve) {
    if (!channel_options("serve", put_capacity, put_overflow, &serve_options.put_capacity,
                         &serve_options.put_overflow)) {
      return 2;
    }
    for (auto [flag, text, value] :
         {std::tuple{"--put-max-bytes", &put_max_bytes, &serve_options.put_max_bytes},
          std::tuple{"--max-message-size", &max_message, &serve_options.max_message_bytes}}) {
      if (text->empty()) continue;
      auto parsed = quiver::ParseByteSize(*text);
      if (!parsed.ok()) {
        std::cerr << "quiver serve: " << flag << ": " << parsed.status().message() << "\n";
        return 2;
      }
      *value = *parsed;
    }
    return Serve(serve_options, serve_token_file);
  }
  if (*bridge) {
    if (!channel_options("bridge", bridge_capacity, bridge_overflow, &bridge_options.capacity,
                         &bridge_options.overflow)) {
      return 2;
    }
    return Bridge(bridge_options, bridge_token_file, bridge_quiet);
  }
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  // Library calls report failure through Status; this only catches what should never
  // happen (allocation failure, a library bug), so it prints instead of aborting.
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "quiver: internal error: " << e.what() << "\n";
    return 1;
  }
}
