"""The benchmark suite (bench/suite.py) runs every workload's transports end to end and checks
their answers. Here in --smoke mode: tiny counts, the C++ peers of the test build; what is
tested is that each transport moves the right data and the result files have the documented
shape, not any number."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
SUITE = REPO / "bench" / "suite.py"
sys.path.insert(0, str(REPO / "bench"))
import common as bench_common  # type: ignore[import-not-found]  # noqa: E402  # bench/, no package


class SuiteRun(subprocess.CompletedProcess):
    """A finished suite run; `pid` is its run id, in the names of its channels."""

    pid: int


def run_suite(build_dir, results, *args, timeout=600) -> SuiteRun:
    """Runs the suite (--smoke) and waits for it."""
    with subprocess.Popen([sys.executable, str(SUITE), "--smoke", "--build", str(build_dir),
                           "--results", str(results), *args],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    done = SuiteRun(proc.args, proc.returncode, stdout, stderr)
    done.pid = proc.pid
    return done


def run_channels(pid):
    """The channels of the suite run with process id `pid` (bench/common.py's rule), so a
    benchmark running beside the tests is not counted."""
    return bench_common.run_channels(pid)


@pytest.mark.parametrize("workload,module", [("w1", "w1_ledger"), ("w2", "w2_image"),
                                             ("w3", "w3_frames"), ("w4", "w4_ingest"),
                                             ("w5", "w5_flight"), ("w6", "w6_command")])
def test_workload_runs_checks_answers_and_writes_results(build_dir, tmp_path, workload, module):
    proc = run_suite(build_dir, tmp_path, "--workload", workload, "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    document = json.loads(proc.stdout)
    assert document["failed"] == [] and len(document["workloads"]) == 1
    result = json.loads((tmp_path / f"{module}.json").read_text())
    assert result == document["workloads"][0]
    assert result["workload"] == module and result["mode"] == "smoke"
    assert result["machine"]["cpus"] >= 1 and result["machine"]["kernel"]
    assert result["results"], "no results"
    for entry in result["results"]:
        assert entry["transport"]
        if entry.get("available", True):
            assert entry["median_us"] > 0 and entry["p99_us"] >= entry["median_us"] * 0.999
            assert entry["runs"] >= 1
        else:
            assert entry["reason"], entry
    assert (tmp_path / f"{module}.png").stat().st_size > 1000
    assert not run_channels(proc.pid), "the benchmark left channels behind"


def test_the_leftover_check_counts_only_its_own_run():
    """Channels of another run (a benchmark beside this one) are not this run's leftovers."""
    import quiver

    run, other = os.getpid(), os.getppid()
    mine = quiver.Channel.create(f"w2-{run}-leftover-check", "64KiB")
    theirs = quiver.Channel.create(f"pingpong-{other}-beside", "64KiB")
    try:
        assert bench_common.run_channels(run) == {f"w2-{run}-leftover-check"}
        assert bench_common.run_channels(other) == {f"pingpong-{other}-beside"}
    finally:
        mine.close()
        theirs.close()
    assert not bench_common.run_channels(run) and not bench_common.run_channels(other)


def test_unknown_workload_is_a_clear_error(tmp_path, build_dir):
    proc = run_suite(build_dir, tmp_path, "--workload", "w2,nope")
    assert proc.returncode != 0
    assert "unknown workload 'nope'" in proc.stderr


def test_missing_peer_binaries_fail_the_workload_with_the_fix(tmp_path):
    proc = run_suite(tmp_path / "no-build", tmp_path, "--workload", "w2", "--no-plots")
    assert proc.returncode == 1
    assert "w2_image_peer is missing" in proc.stdout + proc.stderr
    assert "make bench" in proc.stdout + proc.stderr



def w5_namespaces(pid):
    """The network namespaces the W5 run with process id `pid` makes (qw5-PID-a/-b), if
    iproute2 is here."""
    if shutil.which("ip") is None:
        return set()
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    return {line.split()[0] for line in out.stdout.splitlines()
            if line.startswith(f"qw5-{pid}-")}


def test_w5_runs_both_servers_on_both_networks_and_cleans_up(build_dir, tmp_path):
    """W5 (Flight DoGet): the three cases (a tail, a compute ticket, pyarrow's server) on loopback, and across the veth pair of two network
    namespaces where scripts/netns.sh can make them (else those cases say why not); no
    namespace or channel is left behind."""
    proc = run_suite(build_dir, tmp_path, "--workload", "w5", "--no-plots")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "w5_flight.json").read_text())
    cases = {(e["transport"], e["network"]): e for e in result["results"]}
    assert set(cases) == {(s, n) for s in ("quiver-serve", "quiver-compute", "pyarrow-flight",
                                           "fanout-1-shard", "fanout-2-shards")
                          for n in ("loopback", "veth")}
    for (transport, network), e in cases.items():
        if network == "loopback":
            assert e.get("available", True), e  # loopback always runs
        if e.get("available", True):
            assert e["gbps"] > 0
            if not transport.startswith("fanout"):  # the fan-out sends an even count
                assert e["bytes"] == result["params"]["bytes_per_run"]
        else:
            assert "netns.sh" in e["reason"], e
    assert result["ratios"]["loopback"] > 0 and result["ratios"]["compute_loopback"] > 0
    assert result["ratios"]["fanout_loopback"] > 0
    # Two shards answer half the batches each (their totals are checked by the workload).
    assert cases[("fanout-2-shards", "loopback")]["batches"] == \
        2 * (result["params"]["batches"] // 2)
    assert not w5_namespaces(proc.pid), "the benchmark left network namespaces behind"
    assert not run_channels(proc.pid), "the benchmark left channels behind"


def test_w1_and_w2_record_cpu_seconds_per_gb(build_dir, tmp_path):
    """W1 and W2 record, for every transport that ran (memcpy baselines included), the CPU
    seconds of all its processes per GB moved (bench/cpu_usage.py)."""
    proc = run_suite(build_dir, tmp_path, "--workload", "w1,w2", "--no-plots")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for module in ("w1_ledger", "w2_image"):
        result = json.loads((tmp_path / f"{module}.json").read_text())
        available = [e for e in result["results"] if e.get("available", True)]
        assert available, module
        for entry in available:
            assert entry["cpu_s_per_gb"] > 0, (module, entry)
