"""The benchmark suite (bench/suite.py) runs every workload's transports end to end and checks
their answers. Here in --smoke mode: tiny counts, the C++ peers of the test build; what is
tested is that each transport moves the right data and the result files have the documented
shape, not any number."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
SUITE = REPO / "bench" / "suite.py"


def run_suite(build_dir, results, *args, timeout=600):
    return subprocess.run([sys.executable, str(SUITE), "--smoke", "--build", str(build_dir),
                           "--results", str(results), *args],
                          capture_output=True, text=True, timeout=timeout)


def shm_names():
    """The suite's channels (its names start with w1-..w4- or pingpong-)."""
    prefixes = tuple(f"quiver-{os.getuid()}-{p}" for p in ("w1-", "w2-", "w3-", "w4-", "pingpong-"))
    return {n for n in os.listdir("/dev/shm") if n.startswith(prefixes)}


@pytest.mark.parametrize("workload,module", [("w1", "w1_ledger"), ("w2", "w2_image"),
                                             ("w3", "w3_frames"), ("w4", "w4_ingest")])
def test_workload_runs_checks_answers_and_writes_results(build_dir, tmp_path, workload, module):
    before = shm_names()
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
    assert shm_names() <= before, "the benchmark left channels behind"


def test_unknown_workload_is_a_clear_error(tmp_path, build_dir):
    proc = run_suite(build_dir, tmp_path, "--workload", "w2,nope")
    assert proc.returncode != 0
    assert "unknown workload 'nope'" in proc.stderr


def test_missing_peer_binaries_fail_the_workload_with_the_fix(tmp_path):
    proc = run_suite(tmp_path / "no-build", tmp_path, "--workload", "w2", "--no-plots")
    assert proc.returncode == 1
    assert "w2_image_peer is missing" in proc.stdout + proc.stderr
    assert "make bench" in proc.stdout + proc.stderr
