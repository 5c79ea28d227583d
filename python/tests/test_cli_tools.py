"""`quiver echo`, `quiver info` and `quiver top` as a user runs them: the real binary against
channels this test publishes on; `top` in a pseudo-terminal of a given width, quit with `q`."""

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import textwrap
import time

import numpy as np
import pyarrow as pa
import pytest

import quiver

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string())])  # type: ignore[arg-type]


def batch(first, rows=10):
    return pa.record_batch([pa.array(range(first, first + rows), pa.int64()),
                            pa.array([f"n{i}" for i in range(first, first + rows)])],
                           schema=SCHEMA)


def live_subscribers(channel):
    return sum(1 for s in channel.stats()["subscribers"] if s["alive"])


def wait_for(condition, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def quiver_cmd(build_dir, *args, **kwargs):
    return subprocess.run([str(build_dir / "quiver"), *args], capture_output=True, text=True,
                          timeout=30, **kwargs)


def echo(build_dir, channel, *args):
    """`quiver echo` started and subscribed to `channel`."""
    proc = subprocess.Popen([str(build_dir / "quiver"), "echo", channel.name, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: live_subscribers(channel) >= 1, "quiver echo to subscribe")
    return proc


def test_echo_prints_every_kind_of_sample(build_dir, name):
    arrow_channel = quiver.Channel.create(name + "-a", "1MiB", schema=SCHEMA)
    raw_channel = quiver.Channel.create(name + "-r", "1MiB")
    text = echo(build_dir, arrow_channel, "--count", "1")
    arrow_channel.publisher().publish(batch(100, rows=8))
    out, err = text.communicate(timeout=30)
    assert text.returncode == 0, err
    lines = out.splitlines()
    assert re.match(r"#0  arrow batch, schema v1, 8 rows × 2 columns, \d+ B", lines[0]), out
    assert lines[1].split() == ["id", "name"]
    assert lines[2].split() == ["100", "n100"]
    assert lines[-1].strip() == "(3 more rows)"

    js = echo(build_dir, raw_channel, "--json", "-n", "4")
    pub = raw_channel.publisher()
    with pub.loan_ndarray((3, 4), np.float32) as a:
        a[:] = np.arange(12, dtype=np.float32).reshape(3, 4)
    pub.publish_bytes(b"hello, raw world")
    with pub.loan_image(4, 2, "RGB8") as pixels:
        pixels[:] = 7
    with pub.loan_audio(480, 48000, 2, "S16") as pcm:
        pcm[:] = 1
    out, err = js.communicate(timeout=30)
    assert js.returncode == 0, err
    tensor, raw, image, audio = [json.loads(line) for line in out.splitlines()]
    assert tensor == {"sequence": 0, "bytes": tensor["bytes"], "kind": "tensor",
                      "dtype": "float32", "shape": [3, 4], "min": 0.0, "max": 11.0, "mean": 5.5}
    assert raw == {"sequence": 1, "bytes": 16, "kind": "raw",
                   "head_hex": " ".join(f"{b:02x}" for b in b"hello, raw world")}
    assert (image["kind"], image["width"], image["height"], image["format"]) == \
        ("image_frame", 4, 2, "RGB8")
    assert (audio["kind"], audio["channels"], audio["sample_rate"], audio["frames"],
            audio["format"]) == ("audio_frame", 2, 48000, 480, "S16")


def test_echo_from_oldest_and_to_the_publishers_end(build_dir, name):
    channel = quiver.Channel.create(name, "1MiB", schema=SCHEMA)
    holder = channel.subscriber()  # keeps the backlog alive
    pub = channel.publisher()
    for b in range(3):
        pub.publish(batch(10 * b))
    proc = subprocess.Popen([str(build_dir / "quiver"), "echo", name, "--from-oldest", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: live_subscribers(channel) == 2, "quiver echo to subscribe")
    pub.publish(batch(30))
    del pub  # the publisher goes: echo ends, exit 0
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert [json.loads(line)["head"][0]["id"] for line in out.splitlines()] == [0, 10, 20, 30]
    assert "the publisher is gone" in err and "after 4 samples" in err, err
    holder = None


def test_echo_and_info_name_an_unknown_channel_and_say_where_to_look(build_dir, name):
    for tool in ("echo", "info"):
        run = quiver_cmd(build_dir, tool, name)
        assert run.returncode == 1
        assert "NOT_FOUND" in run.stderr and "quiver ls" in run.stderr, run.stderr


PEER = textwrap.dedent('''
    import sys, time, pyarrow as pa, quiver
    channel = quiver.Channel.open(sys.argv[1])
    pub = channel.publisher()
    print("ready", flush=True)
    sys.stdin.readline()
    pub.publish(pa.record_batch([pa.array([1], pa.int64()), pa.array(["a"])],
                                names=["id", "name"]))
    # A field added: the channel's schema version 2.
    pub.publish(pa.record_batch([pa.array([2], pa.int64()), pa.array(["b"]),
                                 pa.array([0.5])], names=["id", "name", "score"]))
    print("published", flush=True)
    sys.stdin.readline()
''')


def test_info_names_the_holders_schemas_and_per_subscriber_lag(build_dir, name, tmp_path):
    channel = quiver.Channel.create(name, "1MiB", schema=SCHEMA, stall_timeout=2.0,
                                    evolution="add-nullable")
    sub = channel.subscriber()
    script = tmp_path / "peer.py"
    script.write_text(PEER)
    peer = subprocess.Popen([sys.executable, str(script), name], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert peer.stdout.readline().strip() == "ready"
        peer.stdin.write("\n")
        peer.stdin.flush()
        assert peer.stdout.readline().strip() == "published"
        held = sub.receive(timeout=5)  # one received and held, one still queued

        run = quiver_cmd(build_dir, "info", name, "--json")
        assert run.returncode == 0, run.stderr
        info = json.loads(run.stdout)
        assert info["publisher_pid"] == peer.pid
        assert info["publisher_alive"] is True
        assert info["backing"] == "named"
        assert info["overflow"] == "block" and info["stall_timeout_s"] == 2.0
        [me] = info["subscribers"]
        assert (me["pid"], me["queued"], me["held"], me["received"]) == (os.getpid(), 1, 1, 1)
        assert sorted(info["processes"]) == sorted([os.getpid(), peer.pid])
        assert len(info["schemas"]) == 2 and "score: double" in info["schemas"][1]
        assert info["evolution"] == "add-nullable"
        # Python's stats() has the same counters under the same names.
        assert channel.stats()["subscribers"][0]["held"] == 1

        text = quiver_cmd(build_dir, "info", name)
        assert text.returncode == 0, text.stderr
        assert f"publisher    pid {peer.pid} (python" in text.stdout, text.stdout
        assert "v1: id: int64" in text.stdout and "v2: id: int64" in text.stdout
        assert "evolution    add-nullable (nullable fields may be added" in text.stdout
        assert re.search(rf"slot 0  pid {os.getpid()} \(\S+\)  received 1  queued 1  held 1",
                         text.stdout), text.stdout
        assert "stall timeout 2000 ms" in text.stdout
        held = None
    finally:
        peer.stdin.close()
        peer.wait(timeout=10)


def run_top_in_a_pty(build_dir, columns, env_extra=None, until=None):
    """`quiver top` in a terminal `columns` wide; reads its screens until `until(text)` holds,
    then presses `q`. Returns (raw output, exit code, seconds from `q` to its exit)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(str(build_dir / "quiver"), ["quiver", "top", "--interval", "0.2"],
                  {**os.environ, "TERM": "xterm-256color", **(env_extra or {})})
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    raw = b""
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                raw += os.read(fd, 65536)
                screens = raw.decode(errors="replace").split("\x1b[H\x1b[2J")
                if len(screens) > 2 and until(screens[-2]):  # a whole screen
                    break
        else:
            pytest.fail(f"quiver top never showed what was expected:\n{raw.decode()[-3000:]}")
        os.write(fd, b"q")
        pressed = time.monotonic()
        while True:
            try:
                ready, _, _ = select.select([fd], [], [], 0.1)
                if ready:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        break
                    raw += chunk
            except OSError:  # EIO: the terminal's other side closed
                break
            if time.monotonic() - pressed > 5:
                break
        _, status = os.waitpid(pid, 0)
        return raw.decode(errors="replace"), os.waitstatus_to_exitcode(status), \
            time.monotonic() - pressed
    finally:
        os.close(fd)
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def test_top_fits_the_terminal_colours_it_shows_each_subscriber_and_quits_on_q(build_dir, name):
    long_name = (name + "-with-a-name-far-longer-than-its-column")[:64]
    channel = quiver.Channel.create(long_name, "1MiB")
    pub = channel.publisher()
    sub = channel.subscriber()
    for _ in range(3):
        pub.publish_bytes(b"x" * 100)  # 3 queued for the subscriber: its lag

    def shows_it(screen):
        return "└ slot 0" in screen and "queued 3" in screen

    raw, code, quit_after = run_top_in_a_pty(build_dir, 70, until=shows_it)
    assert code == 0
    assert quit_after < 2, f"q took {quit_after:.1f} s"
    screen = raw.split("\x1b[H\x1b[2J")[-1]
    assert "\x1b[32m" in screen or "\x1b[33m" in screen, "no colours on a colour terminal"
    plain = ANSI.sub("", screen)
    lines = [line for line in plain.replace("\r", "").split("\n") if line]
    assert all(len(line) <= 70 for line in lines), "\n".join(lines)
    assert long_name not in plain and "…" in plain, plain  # shortened, not wrapped
    assert any("queued 3" in line and "held 0" in line for line in lines), plain

    raw, code, _ = run_top_in_a_pty(build_dir, 200, env_extra={"NO_COLOR": "1"},
                                    until=shows_it)
    assert code == 0
    colours = re.findall(r"\x1b\[[0-9;]*m", raw.split("\x1b[H\x1b[2J")[-1])
    assert colours == [], colours
    assert long_name in ANSI.sub("", raw)  # room enough: the whole name
    sub = pub = None


def test_top_into_a_pipe_has_no_escape_codes(build_dir, name):
    channel = quiver.Channel.create(name, "1MiB")
    pub = channel.publisher()
    run = quiver_cmd(build_dir, "top", "--iterations", "1", "--interval", "0.1")
    assert run.returncode == 0, run.stderr
    assert "\x1b" not in run.stdout
    assert name in run.stdout and "MSG/S" in run.stdout
    pub = None
