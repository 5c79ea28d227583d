"""The Ledger demo (examples/ledger.toml) end to end under `quiver run`: every example runs in
the test suite, so the README's pipeline never rots."""

import os
import pathlib
import subprocess
import sys

from conftest import named_channels

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_ledger_demo_pipeline_moves_every_row_and_reports(build_dir, name):
    env = {**os.environ, "PATH": f"{pathlib.Path(sys.executable).parent}:{os.environ['PATH']}",
           "ARROW_DEFAULT_MEMORY_POOL": "system"}
    run = subprocess.run([sys.executable, str(REPO / "examples/ledger/demo.py"),
                          "--build", str(build_dir)], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "pipeline completed" in run.stdout + run.stderr
    assert "both match the producer's sum" in run.stdout
    assert "faster than JSON over stdio" in run.stdout
    leftovers = [f for f in named_channels() if f.startswith("ledger")]
    assert not leftovers


def test_failing_node_stops_the_pipeline_and_is_named(build_dir, tmp_path, name):
    pipeline = tmp_path / "fails.toml"
    pipeline.write_text(f"""
[[channel]]
name = "{name}"
capacity = "1MiB"

[[node]]
name = "writer"
command = "sleep"
args = ["60"]
publishes = ["{name}"]

[[node]]
name = "broken"
command = "sh"
args = ["-c", "echo about to fail >&2; exit 3"]
subscribes = ["{name}"]
""")
    run = subprocess.run([str(build_dir / "quiver"), "run", str(pipeline), "--grace", "0.5"],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode != 0
    assert "node 'broken' failed: exit code 3" in run.stderr, run.stderr
    assert "about to fail" in run.stderr


def test_malformed_pipeline_file_names_the_line(build_dir, tmp_path, name):
    pipeline = tmp_path / "bad.toml"
    pipeline.write_text('[[channel]]\nname = "x"\ncapacity = "lots"\n')
    run = subprocess.run([str(build_dir / "quiver"), "run", str(pipeline)],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 2
    assert "bad.toml:3" in run.stderr, run.stderr


def test_ls_sees_a_running_pipelines_channels(build_dir, tmp_path, name):
    import json
    import time

    pipeline = tmp_path / "holds.toml"
    pipeline.write_text(f"""
[[channel]]
name = "{name}"
capacity = "1MiB"

[[node]]
name = "holder"
command = "sleep"
args = ["30"]
publishes = ["{name}"]
""")
    run = subprocess.Popen([str(build_dir / "quiver"), "run", str(pipeline)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        found = None
        for _ in range(100):
            rows = json.loads(subprocess.run([str(build_dir / "quiver"), "ls", "--json"],
                                             capture_output=True, text=True).stdout)
            found = next((r for r in rows if r["name"] == name), None)
            if found:
                break
            time.sleep(0.05)
        assert found is not None, "the pipeline's memfd channel was not listed"
        assert found["pipeline"].startswith("@quiver-")
        assert found["capacity"] == 1 << 20
    finally:
        run.terminate()
        assert run.wait(timeout=10) == 143  # stopped by SIGTERM, nodes with it
