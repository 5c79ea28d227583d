"""scripts/check_layers.py, the `layers` test of ctest, fails on what it is meant to catch."""
import json
import pathlib
import subprocess
import sys

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "check_layers.py"
LAYERS = {
    "common": {"deps": [], "public_headers": ["status.h"], "sealed": False},
    "channel": {"deps": ["common"], "public_headers": ["channel.h"], "sealed": True},
    "flight": {"deps": ["channel", "common"], "public_headers": [], "sealed": False},
}


def check(tmp_path: pathlib.Path, files: dict) -> subprocess.CompletedProcess:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "layers.json").write_text(json.dumps(LAYERS))
    return subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "layers.json"),
                           str(tmp_path)], capture_output=True, text=True)


BASE = {
    "include/quiver/status.h": "",
    "include/quiver/channel.h": '#include "quiver/status.h"\n',
    "src/common/unique_fd.h": "",
    "src/channel/layout.h": '#include "common/unique_fd.h"\n',
    "src/flight/server.cc": '#include "quiver/channel.h"\n#include "common/unique_fd.h"\n',
}


def test_a_tree_that_follows_its_layers_passes(tmp_path):
    result = check(tmp_path, BASE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_upward_include_fails_naming_file_line_and_layers(tmp_path):
    result = check(tmp_path, {**BASE, "src/channel/layout.h": '\n#include "flight/server.h"\n'})
    assert result.returncode == 1
    assert ("src/channel/layout.h:2: layer 'channel' includes \"flight/server.h\" of layer "
            "'flight', which is not below it (it may use: common)") in result.stdout


def test_a_sealed_layers_internals_are_refused_but_its_public_headers_are_not(tmp_path):
    result = check(tmp_path, {**BASE, "src/flight/server.cc": '#include "channel/layout.h"\n'})
    assert result.returncode == 1
    assert "\"channel/layout.h\" is internal to layer 'channel'" in result.stdout
    assert "quiver/channel.h" in result.stdout


def test_tests_may_reach_into_their_layer_and_unknown_folders_are_named(tmp_path):
    result = check(tmp_path, {**BASE, "src/flight/server_test.cc": '#include "channel/layout.h"\n',
                              "src/extra/thing.cc": ""})
    assert result.returncode == 1
    assert "src/extra/: not a layer" in result.stdout
    assert "server_test.cc" not in result.stdout
