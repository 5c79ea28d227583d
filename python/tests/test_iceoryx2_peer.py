"""W3's native iceoryx2 peer (bench/iceoryx2_peer, Rust): every mode moves every payload size
and reports it, nothing of iceoryx2's is left behind, and a dead echo child is an error, not
a hang. It is built by `make bench-setup` when cargo is installed (CI does not), so these
tests skip without it."""

import importlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
PEER = REPO / "build-release" / "iceoryx2_peer"
sys.path.insert(0, str(REPO / "bench"))
# The workload itself, for its sizes, modes and leftover check (bench/ is a directory of
# scripts, not a package the type checker knows: imported by name at run time).
w3_frames = importlib.import_module("w3_frames")

pytestmark = pytest.mark.skipif(
    not os.access(PEER, os.X_OK),
    reason=f"{PEER.relative_to(REPO)} is not built: `make bench-setup` builds it when cargo "
           f"(Rust) is installed")

SIZES = w3_frames.SIZES


@pytest.mark.parametrize("mode", w3_frames.IOX2_MODES)
def test_every_mode_reports_every_size_and_leaves_nothing_behind(mode, tmp_path):
    before = w3_frames._iox2_files()
    out = tmp_path / "entries.json"
    proc = subprocess.run([str(PEER), "--mode", mode, "--sizes", ",".join(map(str, SIZES)),
                           "--placement", "sched", "--rounds", "100", "--json", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    entries = json.loads(out.read_text())
    assert [e["payload_bytes"] for e in entries] == list(SIZES)
    for e in entries:
        assert e["transport"] == mode and e["placement"] == "sched", e
        assert e["p999_us"] >= e["p99_us"] >= e["median_us"] > 0, e
        assert e["mean_us"] > 0 and e["runs"] == 1 and e["round_trips_per_run"] >= 100, e
        assert e["iceoryx2"].count(".") == 2, e
    assert len(proc.stderr.splitlines()) == len(SIZES), proc.stderr  # one line per size
    w3_frames._check_iox2_leftovers(before, "the native peer")


def children(pid):
    """The process ids of `pid`'s children."""
    try:
        text = pathlib.Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


@pytest.mark.parametrize("mode", w3_frames.IOX2_MODES)
def test_a_killed_echo_child_is_an_error_not_a_hang(mode):
    before = w3_frames._iox2_files()
    # Enough round trips to be still running when the child is killed.
    proc = subprocess.Popen([str(PEER), "--mode", mode, "--sizes", "64", "--rounds",
                             "1000000000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 10
        while not children(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert children(proc.pid), "the echo child never started"
        time.sleep(0.3)  # past its start: in the middle of the round trips
        os.kill(children(proc.pid)[0], signal.SIGKILL)
        _, stderr = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    # "the echo child is gone (signal: 9 (SIGKILL))", or on a slow machine "... failed to
    # start (...)" if the kill came first.
    assert "echo child" in stderr and "SIGKILL" in stderr, stderr
    # The parent's node removes what the dead child's node left.
    w3_frames._check_iox2_leftovers(before, "the native peer")
