"""Stalled and interrupted peers from Python: Ctrl-C reaches a publisher blocked on a full
channel, the stall policy evicts a stopped reader, and errors name the timeout asked for."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import quiver

# A publisher that blocks on a channel whose only subscriber never receives: after printing
# "blocking", it calls OP, which waits for room until Ctrl-C.
# (A child of a background job inherits SIGINT ignored: it installs Python's handler itself.)
BLOCKED_PUBLISHER = textwrap.dedent("""
    import signal, sys, numpy as np, pyarrow as pa, quiver
    signal.signal(signal.SIGINT, signal.default_int_handler)
    name, op = sys.argv[1], sys.argv[2]
    schema = pa.schema([("x", pa.int64())]) if op == "publish" else None
    ch = quiver.Channel.create(name, "64KiB", schema=schema, max_samples=8)
    held = ch.subscriber()
    pub = ch.publisher()
    def fill():
        if op == "publish":
            pub.publish(pa.record_batch([pa.array(np.zeros(2048, np.int64))], schema=schema))
        elif op == "publish_bytes":
            pub.publish_bytes(bytes(16 << 10))
        else:
            with pub.loan_ndarray((16 << 10,), np.uint8) as a:
                a[:] = 1
    for _ in range(3):
        fill()                     # what fits
    print("blocking", flush=True)
    try:
        while True:
            fill()                 # the channel is full now: waits for room
    except KeyboardInterrupt:
        print("interrupted", flush=True)
""")


@pytest.mark.parametrize("op", ["publish", "publish_bytes", "loan_ndarray"])
def test_ctrl_c_interrupts_a_publisher_blocked_on_a_full_channel(name, op):
    proc = subprocess.Popen([sys.executable, "-c", BLOCKED_PUBLISHER, name, op],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "blocking\n", proc.stderr.read()
        time.sleep(0.3)  # well inside the wait
        assert proc.poll() is None, "it did not block"
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        line = proc.stdout.readline()
        took = time.monotonic() - sent
        assert line == "interrupted\n", proc.stderr.read()
        # Slices of 100 ms; a loaded 2-CPU machine adds scheduling delay, never a second.
        assert took < 0.5, f"KeyboardInterrupt came {took * 1000:.0f} ms after SIGINT"
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_loan_timeout_is_the_time_asked_for(name):
    ch = quiver.Channel.create(name, "16KiB", max_samples=8)
    held = ch.subscriber()
    pub = ch.publisher(loan_timeout=0.3)
    with pytest.raises(quiver.Timeout, match="within 0.3 s|within 300 ms"):
        for _ in range(8):
            pub.publish_bytes(bytes(8 << 10))
    with pytest.raises(quiver.Timeout, match=f"no sample on channel '{name}' within 250 ms"):
        ch.subscriber().receive(timeout=0.25)
    del held


STOPPED_READER = textwrap.dedent("""
    import os, signal, sys, quiver
    sub = quiver.Channel.open(sys.argv[1]).subscriber()
    print("joined", flush=True)
    os.kill(os.getpid(), signal.SIGSTOP)
    try:
        sub.receive(timeout=1.0)
        print("received")
    except quiver.Evicted as e:
        print("evicted:", e)
""")


def test_stall_timeouts_follow_the_channels_rule(name):
    for bad in (0, -1, 86400.5):
        with pytest.raises(quiver.InvalidArgumentError, match="more than 0 and at most 86400 s"):
            quiver.Channel.create(name, "64KiB", stall_timeout=bad)
    ch = quiver.Channel.create(name, "64KiB", stall_timeout=0.0001)
    assert ch.stats()["stall_timeout_s"] == 0.001  # at least 1 ms


def test_the_stall_policy_evicts_a_stopped_reader(name):
    ch = quiver.Channel.create(name, "64KiB", max_samples=16, stall_timeout=0.2)
    live = ch.subscriber()
    pub = ch.publisher(loan_timeout=10)
    proc = subprocess.Popen([sys.executable, "-c", STOPPED_READER, name],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "joined\n", proc.stderr.read()
        deadline = time.monotonic() + 10
        while open(f"/proc/{proc.pid}/stat").read().rsplit(")", 1)[1].split()[0] != "T":
            assert time.monotonic() < deadline, "it did not stop"
            time.sleep(0.01)
        start = time.monotonic()
        for i in range(40):  # 320 KiB through 64 KiB
            pub.publish_bytes(bytes([i]) * (8 << 10))
            assert bytes(np.asarray(live.receive(timeout=5).to_numpy())[:1]) == bytes([i])
        assert time.monotonic() - start < 3
        stats = ch.stats()
        assert stats["evicted_subscribers"] == 1 and stats["stall_timeout_s"] == 0.2
        assert any(s["evicted_after_s"] for s in stats["subscribers"])
        os.kill(proc.pid, signal.SIGCONT)
        out, err = proc.communicate(timeout=10)
        assert out.startswith("evicted: EVICTED:") and "stall_timeout 200 ms" in out, out + err
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
            proc.wait()


PRODUCER = textwrap.dedent("""
    import os, signal, sys, time, quiver
    name, first, end = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    ch = quiver.Channel.create(name, "64KiB")   # a restart takes the name of a dead one
    pub = ch.publisher()
    while pub.subscriber_count == 0:
        time.sleep(0.002)
    for i in range(5):
        pub.publish_bytes(bytes([first + i]) * 64)
    if end == "die":
        os.kill(os.getpid(), signal.SIGKILL)
""")


def test_iteration_survives_a_producer_crash_and_restart(name):
    """A long-lived consumer written as `for sample in sub:` needs no code for a producer that
    crashes and is restarted; a producer that closes ends the iteration."""
    first = subprocess.Popen([sys.executable, "-c", PRODUCER, name, "10", "die"])
    deadline = time.monotonic() + 10
    while True:
        try:
            sub = quiver.Channel.open(name).subscriber()
            break
        except quiver.NotFound:
            assert time.monotonic() < deadline, "the producer never made its channel"
            time.sleep(0.01)
    samples = iter(sub)
    got = [int(next(samples).to_numpy()[0]) for _ in range(5)]
    assert first.wait(timeout=10) == -signal.SIGKILL
    second = subprocess.Popen([sys.executable, "-c", PRODUCER, name, "20", "close"])
    try:
        got += [int(next(samples).to_numpy()[0]) for _ in range(5)]
        assert got == [10, 11, 12, 13, 14, 20, 21, 22, 23, 24]
        assert sub.restarts_followed == 1
        assert second.wait(timeout=10) == 0
        assert list(samples) == []  # the restarted producer closed: the stream ends
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()
    del samples, sub


HOLDER = textwrap.dedent("""
    import signal, sys, time, quiver
    if sys.argv[2] == "own-handler-later":
        ch = quiver.Channel.create(sys.argv[1], "64KiB")
        def mine(signum, frame):
            print("mine", flush=True)
            quiver.release_named_channels()
            sys.exit(0)
        signal.signal(signal.SIGTERM, mine)
    else:
        ch = quiver.Channel.create(sys.argv[1], "64KiB")
    print("ready", flush=True)
    time.sleep(60)
""")


@pytest.mark.parametrize("how", ["default", "own-handler-later"])
def test_a_plain_sigterm_leaves_no_named_channel_behind(name, how):
    """`kill` or `docker stop` used to leave the segment in RAM until the name was opened
    again; a process killed with -9 still does (`quiver clean`, or the next open)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, name, how],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "ready\n", proc.stderr.read()
        assert os.path.exists(quiver.Channel.named_path(name))
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
        if how == "default":
            assert code == -signal.SIGTERM, proc.stderr.read()  # it still dies of the signal
        else:
            assert code == 0 and proc.stdout.read() == "mine\n"
        assert not os.path.exists(quiver.Channel.named_path(name))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
