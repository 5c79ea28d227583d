"""W3 frames, Python <-> Python: the transports of the ping-pong, the parent's timed loop and
the echo child (this file run as a script).

The method is the C++ one (bench/pingpong_benchmark.cc): the parent sends message n, the
child echoes it, one-way latency = round trip / 2, every round trip timed with
time.perf_counter_ns(), a warm-up first. Every sender writes all bytes of every message (a
numpy fill of the buffer, then the sequence number in the first 8 bytes); every receiver
checks the sequence number and the last byte, and a wrong value raises common.BenchError.

Transports (one child process per transport, placement and run, echoing every payload
size in turn):
  py-quiver-blocking   two quiver channels (ping, pong); Publisher.loan_ndarray written in
                       place, Subscriber.receive() with spin_us=0 (futex wait)
  py-quiver-default    the same with the default spin_us (20 us, then futex)
  py-quiver-spin       the same, the receiver busy-polls Subscriber.try_receive()
  py-uds               socket.socketpair(AF_UNIX, SOCK_STREAM), sendall / recv_into
  py-pipe              two os.pipe()s, os.write / os.readv
  py-iceoryx2-spin     iceoryx2 publish-subscribe of a u8 slice (loan_slice_uninit written
                       in place), the receiver busy-polls Subscriber.receive()
  py-iceoryx2-blocking the same plus an iceoryx2 event service per direction: the sender
                       notifies after each send, the receiver waits in Listener.timed_wait()
The busy-pollers yield the CPU (os.sched_yield) after 20 us without a message, as the C++
ones do: on two CPUs shared by both processes a pure busy-poll can starve its own peer.

The child:  python bench/w3_python_peer.py --transport T --parent PID --ctl-rx FD
            --ctl-tx FD --cpu-board FD [--stream-rx FD --stream-tx FD] [--cpu N]
            [--writer loan|bytes]
It reads commands ("case SIZE TAG", "exit") from ctl-rx and answers ("hello", "ready",
"done") on ctl-tx, stores its CPU number in the cpu-board memfd after every reply, pins
itself to --cpu if given, dies with its parent (PR_SET_PDEATHSIG) and exits if the parent
goes.
"""

from __future__ import annotations

import argparse
import ctypes
import mmap
import os
import pathlib
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

if str(pathlib.Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402
from common import BenchError  # noqa: E402

TRANSPORTS = ("py-quiver-blocking", "py-quiver-default", "py-quiver-spin", "py-uds", "py-pipe",
              "py-iceoryx2-blocking", "py-iceoryx2-spin")
ICEORYX2 = ("py-iceoryx2-blocking", "py-iceoryx2-spin")

STOP = (1 << 64) - 1
SEQ = struct.Struct("<Q")
SILENCE_NS = 10_000_000_000      # a receiver that hears nothing this long gives up
LIVENESS_NS = 100_000_000        # waits come back this often to check the peer lives
SPIN_BEFORE_YIELD_NS = 20_000    # busy-pollers yield after this long without a message
CHANNEL_PREFIX = "w3-py-"        # quiver channels: quiver-<uid>-w3-py-<pid>-...


class PeerGone(BenchError):
    """The other process ended (or stopped answering) in the middle of a case."""


# Where the two processes run: the child stores its CPU number in a shared page after every
# reply (off the parent's timed path), the parent compares it with its own every 16 round
# trips, as the C++ benchmark does (same_cpu_pct).
CPU = struct.Struct("<i")
try:
    _sched_getcpu = ctypes.CDLL(None, use_errno=True).sched_getcpu
    _sched_getcpu.restype = ctypes.c_int
except (OSError, AttributeError):
    _sched_getcpu = None


def getcpu() -> int:
    return _sched_getcpu() if _sched_getcpu is not None else -1


class CpuBoard:
    """A page shared with the child through a memfd it inherits."""

    def __init__(self, fd: Optional[int] = None) -> None:
        if fd is None:
            fd = os.memfd_create("w3-cpu-board", 0)
            os.ftruncate(fd, mmap.PAGESIZE)
        self.fd = fd
        self.map = mmap.mmap(fd, mmap.PAGESIZE)
        CPU.pack_into(self.map, 0, -1)

    def store(self) -> None:
        CPU.pack_into(self.map, 0, getcpu())

    def child_cpu(self) -> int:
        return CPU.unpack_from(self.map, 0)[0]

    def close(self) -> None:
        self.map.close()
        os.close(self.fd)


def fill(array: np.ndarray, seq: int) -> None:
    """Writes every byte of the message, as a producer of fresh bytes would."""
    array.fill(seq & 0xFF)
    SEQ.pack_into(array, 0, seq)


def check(buf, size: int) -> int:
    """The message's sequence number; BenchError if its size or last byte is wrong."""
    if len(buf) != size:
        raise BenchError(f"message of {len(buf)} bytes, expected {size}")
    seq = SEQ.unpack_from(buf, 0)[0]
    if buf[size - 1] != seq & 0xFF:
        raise BenchError(f"payload corrupted: message {seq} ends in {int(buf[size - 1])}")
    return seq


class Endpoint:
    """One side of a ping-pong of `size`-byte messages."""

    def __init__(self, size: int, peer_alive: Callable[[], bool]) -> None:
        self.size = size
        self.peer_alive = peer_alive

    def send(self, seq: int) -> None:
        raise NotImplementedError

    def recv(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def keep_waiting(self, since_ns: int) -> None:
        if not self.peer_alive():
            raise PeerGone("the peer process is gone")
        if time.perf_counter_ns() - since_ns > SILENCE_NS:
            raise PeerGone(f"no message for {SILENCE_NS // 10**9} s")

    def busy_poll(self, poll: Callable[[], object]) -> object:
        """Calls poll() until it returns something, yielding the CPU every 20 us."""
        item = poll()
        if item is not None:
            return item
        start = last_yield = last_check = time.perf_counter_ns()
        n = 0
        while item is None:
            n += 1
            if n & 15 == 0:
                now = time.perf_counter_ns()
                if now - last_yield >= SPIN_BEFORE_YIELD_NS:
                    os.sched_yield()
                    last_yield = time.perf_counter_ns()
                if now - last_check >= LIVENESS_NS:
                    last_check = now
                    self.keep_waiting(start)
            item = poll()
        return item


# ---- quiver -----------------------------------------------------------------------------

class QuiverEndpoint(Endpoint):
    """Two channels, ping and pong, each of capacity max(4 MiB, 4 x size), as in C++. The
    parent creates both (its subscriber exists before the child can publish); the child
    opens them."""

    def __init__(self, role: str, mode: str, size: int, tag: str,
                 peer_alive: Callable[[], bool], writer: str) -> None:
        super().__init__(size, peer_alive)
        import quiver
        self._quiver = quiver
        spin_us = 0.0 if mode == "blocking" else 20.0
        if role == "parent":
            capacity = max(4 << 20, 4 * size)
            self._ping = quiver.Channel.create(tag + "-ping", capacity=capacity)
            self._pong = quiver.Channel.create(tag + "-pong", capacity=capacity)
            self._pub = self._ping.publisher()
            self._sub = self._pong.subscriber(spin_us=spin_us)
        else:
            self._ping = quiver.Channel.open(tag + "-ping")
            self._pong = quiver.Channel.open(tag + "-pong")
            self._sub = self._ping.subscriber(spin_us=spin_us)
            self._pub = self._pong.publisher()
        self._busy = mode == "spin"
        self._loan = writer == "loan"
        self._buf = bytearray(size)
        self._array = np.frombuffer(self._buf, np.uint8)

    def send(self, seq: int) -> None:
        if self._loan:
            with self._pub.loan_ndarray(self.size, np.uint8) as frame:
                fill(frame, seq)
        else:
            fill(self._array, seq)
            self._pub.publish_bytes(self._buf)

    def recv(self) -> int:
        if self._busy:
            sample = self.busy_poll(self._sub.try_receive)
        else:
            sample = self._receive_blocking()
        return check(sample.to_numpy(), self.size)

    def _receive_blocking(self):
        try:
            return self._sub.receive(timeout=0.1)
        except self._quiver.Timeout:
            pass
        start = time.perf_counter_ns()
        while True:
            self.keep_waiting(start)
            try:
                return self._sub.receive(timeout=0.1)
            except self._quiver.Timeout:
                pass

    def close(self) -> None:
        self._pub = self._sub = self._ping = self._pong = None


# ---- uds and pipe -----------------------------------------------------------------------

class StreamEndpoint(Endpoint):
    """The whole payload through the kernel each way: written from a user buffer, read into
    one (two copies per message). A dead peer reads as end of file."""

    def __init__(self, rx_fd: int, tx_fd: int, size: int, is_socket: bool) -> None:
        super().__init__(size, lambda: True)
        self._rx, self._tx = rx_fd, tx_fd
        self._sock = socket.socket(fileno=os.dup(rx_fd)) if is_socket else None
        self._txbuf = bytearray(size)
        self._txarray = np.frombuffer(self._txbuf, np.uint8)
        self._txview = memoryview(self._txbuf)
        self._rxbuf = bytearray(size)
        self._rxview = memoryview(self._rxbuf)

    def send(self, seq: int) -> None:
        fill(self._txarray, seq)
        if self._sock is not None:
            self._sock.sendall(self._txbuf)
            return
        view, off = self._txview, 0
        while off < self.size:
            off += os.write(self._tx, view[off:])

    def recv(self) -> int:
        view, got, size = self._rxview, 0, self.size
        sock = self._sock
        while got < size:
            n = sock.recv_into(view[got:], size - got) if sock is not None else \
                os.readv(self._rx, [view[got:]])
            if n == 0:
                raise PeerGone("the peer closed its end")
            got += n
        return check(self._rxbuf, size)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()   # the dup; the session owns the original fd
            self._sock = None


# ---- iceoryx2 ---------------------------------------------------------------------------

def iceoryx2_status() -> tuple:
    """(module, version, None) if the iceoryx2 package imports, else (None, None, reason)."""
    try:
        import iceoryx2
    except Exception as e:  # ImportError, or a broken native module
        return None, None, f"cannot import iceoryx2 ({type(e).__name__}: {e}); " \
                           f"`pip install iceoryx2` into the venv"
    try:
        from importlib.metadata import version
        v = version("iceoryx2")
    except Exception:
        v = getattr(iceoryx2, "__version__", "unknown")
    return iceoryx2, v, None


class Iceoryx2Session:
    """One iceoryx2 node per process, kept across the payload sizes."""

    def __init__(self) -> None:
        iox2, _, reason = iceoryx2_status()
        if iox2 is None:
            raise BenchError(reason)
        self.iox2 = iox2
        iox2.set_log_level(iox2.LogLevel.Error)
        # No signal handlers of iceoryx2's own: Ctrl-C stays Python's KeyboardInterrupt.
        self.node = (iox2.NodeBuilder.new()
                     .signal_handling_mode(iox2.SignalHandlingMode.Disabled)
                     .create(iox2.ServiceType.Ipc))

    def close(self) -> None:
        self.node = None


class Iceoryx2Endpoint(Endpoint):
    """A publish-subscribe service of u8 slices per direction (one publisher, one subscriber:
    the data segment holds a few samples of `size` bytes, as a quiver channel of 4 x size
    does), written in place through loan_slice_uninit. Blocking: an event service per
    direction too, notified after each send; the receiver waits in Listener.timed_wait()."""

    def __init__(self, session: Iceoryx2Session, role: str, mode: str, size: int, tag: str,
                 peer_alive: Callable[[], bool]) -> None:
        super().__init__(size, peer_alive)
        iox2, node = session.iox2, session.node
        self._iox2 = iox2
        parent = role == "parent"

        def pubsub(name: str):
            builder = (node.service_builder(iox2.ServiceName.new(name))
                       .publish_subscribe(iox2.Slice[ctypes.c_uint8])
                       .max_publishers(1).max_subscribers(1))
            return builder.create() if parent else builder.open()

        def event(name: str):
            builder = node.service_builder(iox2.ServiceName.new(name)).event()
            return builder.create() if parent else builder.open()

        ping, pong = pubsub(tag + "/ping"), pubsub(tag + "/pong")
        tx, rx = (ping, pong) if parent else (pong, ping)
        self._services = [ping, pong]
        self._pub = tx.publisher_builder().initial_max_slice_len(size).create()
        self._sub = rx.subscriber_builder().create()
        self._notifier = self._listener = None
        self._busy = mode == "spin"
        if not self._busy:
            ev_ping, ev_pong = event(tag + "/ping"), event(tag + "/pong")
            ev_tx, ev_rx = (ev_ping, ev_pong) if parent else (ev_pong, ev_ping)
            self._services += [ev_ping, ev_pong]
            self._notifier = ev_tx.notifier_builder().create()
            self._listener = ev_rx.listener_builder().create()
            self._slice = iox2.Duration.from_millis(LIVENESS_NS // 1_000_000)
        self._bytes = ctypes.c_uint8 * size

    def send(self, seq: int) -> None:
        sample = self._pub.loan_slice_uninit(self.size)
        fill(np.frombuffer(self._bytes.from_address(sample.payload_ptr), np.uint8), seq)
        sample.assume_init().send()
        if self._notifier is not None:
            self._notifier.notify()

    def recv(self) -> int:
        sample = self._sub.receive()
        if sample is None:
            sample = self.busy_poll(self._sub.receive) if self._busy else self._wait()
        payload = sample.payload()
        if payload.number_of_elements != self.size:
            raise BenchError(f"slice of {payload.number_of_elements} bytes, expected {self.size}")
        seq = check(self._bytes.from_address(payload.data_ptr), self.size)
        sample.delete()
        return seq

    def _wait(self):
        start = time.perf_counter_ns()
        while True:
            events = self._listener.timed_wait(self._slice)
            sample = self._sub.receive()
            if sample is not None:
                return sample
            if not events:
                self.keep_waiting(start)

    def close(self) -> None:
        for port in (self._pub, self._sub, self._notifier, self._listener):
            if port is not None:
                port.delete()
        self._pub = self._sub = self._notifier = self._listener = None
        self._services = []


# ---- A process's side of one transport --------------------------------------------------

class Session:
    """What one process keeps for one transport across the payload sizes: the stream fds,
    the iceoryx2 node. endpoint() makes the side of one case."""

    def __init__(self, transport: str, role: str, writer: str = "loan",
                 stream_fds: Optional[tuple] = None) -> None:
        if transport not in TRANSPORTS:
            raise BenchError(f"unknown transport {transport}")
        self.transport, self.role, self.writer = transport, role, writer
        self.stream_fds = stream_fds
        self.iceoryx2 = Iceoryx2Session() if transport in ICEORYX2 else None

    def endpoint(self, size: int, tag: str, peer_alive: Callable[[], bool]) -> Endpoint:
        t = self.transport
        mode = t.rsplit("-", 1)[1]
        if t.startswith("py-quiver-"):
            return QuiverEndpoint(self.role, mode, size, tag, peer_alive, self.writer)
        if t in ICEORYX2:
            return Iceoryx2Endpoint(self.iceoryx2, self.role, mode, size, tag, peer_alive)
        rx, tx = self.stream_fds
        return StreamEndpoint(rx, tx, size, is_socket=t == "py-uds")

    def close(self) -> None:
        if self.iceoryx2 is not None:
            self.iceoryx2.close()
        for fd in set(self.stream_fds or ()):
            os.close(fd)
        self.stream_fds = None


# ---- What a sender costs in Python ------------------------------------------------------

def writer_costs(sizes: Sequence[int], budget_s: float = 0.1) -> Dict[int, dict]:
    """Median us of one message written and read back in one process (no second process,
    no wake-up): fill + send + receive + check, per sender API. Shows what the Python layer
    of each API costs next to the copy it saves."""
    import quiver
    iox2, _, _ = iceoryx2_status()
    out: Dict[int, dict] = {}
    node = None
    if iox2 is not None:
        iox2.set_log_level(iox2.LogLevel.Error)
        node = (iox2.NodeBuilder.new().signal_handling_mode(iox2.SignalHandlingMode.Disabled)
                .create(iox2.ServiceType.Ipc))
    for size in sizes:
        name = f"{CHANNEL_PREFIX}{os.getpid()}-writer-{size}"
        channel = quiver.Channel.create(name, capacity=max(4 << 20, 4 * size))
        pub, sub = channel.publisher(), channel.subscriber()
        buf = bytearray(size)
        array = np.frombuffer(buf, np.uint8)

        def loan(seq: int) -> None:
            with pub.loan_ndarray(size, np.uint8) as frame:
                fill(frame, seq)
            if check(sub.try_receive().to_numpy(), size) != seq:
                raise BenchError("writer_costs: wrong message")

        def copy(seq: int) -> None:
            fill(array, seq)
            pub.publish_bytes(buf)
            if check(sub.try_receive().to_numpy(), size) != seq:
                raise BenchError("writer_costs: wrong message")

        apis = {"quiver loan_ndarray": loan, "quiver publish_bytes": copy}
        if node is not None:
            svc = (node.service_builder(iox2.ServiceName.new(name))
                   .publish_subscribe(iox2.Slice[ctypes.c_uint8])
                   .max_publishers(1).max_subscribers(1).create())
            ipub = svc.publisher_builder().initial_max_slice_len(size).create()
            isub = svc.subscriber_builder().create()
            raw = ctypes.c_uint8 * size

            def iceoryx2_loan(seq: int) -> None:
                sample = ipub.loan_slice_uninit(size)
                fill(np.frombuffer(raw.from_address(sample.payload_ptr), np.uint8), seq)
                sample.assume_init().send()
                got = isub.receive()
                if check(raw.from_address(got.payload().data_ptr), size) != seq:
                    raise BenchError("writer_costs: wrong message")
                got.delete()

            apis["iceoryx2 loan_slice_uninit"] = iceoryx2_loan
        out[size] = {}
        for api, fn in apis.items():
            times: List[float] = []
            end = time.perf_counter() + budget_s
            seq = 0
            while len(times) < 10 or (time.perf_counter() < end and len(times) < 5000):
                seq += 1
                t0 = time.perf_counter_ns()
                fn(seq)
                times.append((time.perf_counter_ns() - t0) / 1000.0)
            out[size][api] = round(common.percentile(times, 0.5), 3)
        if node is not None:
            ipub.delete()
            isub.delete()
            del svc, ipub, isub
        del pub, sub, channel
    return out


# ---- The parent -------------------------------------------------------------------------

class Control:
    """The parent's end of the command pipes to one child."""

    def __init__(self, tx_fd: int, rx_fd: int) -> None:
        self._tx, self._rx = tx_fd, rx_fd
        self._pending = b""

    def send(self, line: str) -> None:
        os.write(self._tx, (line + "\n").encode())

    def expect(self, word: str, timeout: float, child: subprocess.Popen) -> None:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise PeerGone(f"the child did not say '{word}' within {timeout:.0f} s")
            ready, _, _ = select.select([self._rx], [], [], min(left, 0.1))
            if ready:
                chunk = os.read(self._rx, 4096)
                if not chunk:
                    raise PeerGone(f"the child exited before saying '{word}'")
                self._pending += chunk
            elif child.poll() is not None:
                raise PeerGone(f"the child exited (status {child.returncode}) before "
                               f"saying '{word}'")
        line, self._pending = self._pending.split(b"\n", 1)
        if line.decode().strip() != word:
            raise BenchError(f"the child said {line!r}, expected '{word}'")

    def close(self) -> None:
        for fd in (self._tx, self._rx):
            try:
                os.close(fd)
            except OSError:
                pass


def _summarize_run(one_way_us: List[float], same_cpu: List[bool]) -> dict:
    return {"p50": common.percentile(one_way_us, 0.5),
            "p99": common.percentile(one_way_us, 0.99),
            "p999": common.percentile(one_way_us, 0.999),
            "mean": sum(one_way_us) / len(one_way_us),
            "same_cpu_pct": 100.0 * sum(same_cpu) / len(same_cpu) if same_cpu else None,
            "rounds": len(one_way_us)}


def _timed_loop(ep: Endpoint, seq: int, warmup: int, rounds: int, cap_ns: int,
                warmup_cap_ns: int, board: CpuBoard) -> tuple:
    """Warm-up, then up to `rounds` timed round trips (fewer once cap_ns has passed).
    Returns (one-way latencies in us, same-CPU samples, last sequence number)."""
    clock = time.perf_counter_ns
    end = clock() + warmup_cap_ns
    for i in range(warmup):
        seq += 1
        ep.send(seq)
        if ep.recv() != seq:
            raise BenchError("echo out of order (warm-up)")
        if i & 7 == 7 and clock() > end:
            break
    samples: List[float] = []
    same_cpu: List[bool] = []
    append = samples.append
    end = clock() + cap_ns
    for _ in range(rounds):
        seq += 1
        t0 = clock()
        ep.send(seq)
        got = ep.recv()
        t1 = clock()
        if got != seq:
            raise BenchError(f"echo out of order: sent {seq}, got {got}")
        append((t1 - t0) / 2000.0)
        if seq & 15 == 0:
            same_cpu.append(board.child_cpu() == getcpu())
        if t1 > end:
            break
    return samples, same_cpu, seq


def pinning(placement: str) -> tuple:
    """(parent CPU, child CPU) of a placement, None for unpinned: "sched" pins nothing,
    "apart" puts the two on QUIVER_BENCH_PIN=P,C (default 0,1), "together" both on P."""
    try:
        parent, child = (int(x) for x in os.environ.get("QUIVER_BENCH_PIN", "0,1").split(","))
    except ValueError:
        parent, child = 0, 1
    if placement == "sched":
        return None, None
    if placement == "apart":
        return parent, child
    if placement == "together":
        return parent, parent
    raise BenchError(f"unknown placement {placement}")


def run_transport(transport: str, sizes: Sequence[int], rounds_for: Callable[[int], int],
                  cap_s: float, run: int, writer: str = "loan",
                  progress: Callable[[str], None] = lambda _: None,
                  placement: str = "sched") -> Dict[int, dict]:
    """One run of every payload size over one transport, with one echo child. Returns
    {size: {"p50", "p99", "p999", "mean" (one-way, us), "same_cpu_pct", "rounds"}}."""
    parent_cpu, child_cpu = pinning(placement)
    saved_affinity = os.sched_getaffinity(0)
    if parent_cpu is not None:
        try:
            os.sched_setaffinity(0, {parent_cpu})
        except OSError as e:
            raise BenchError(f"cannot pin to CPU {parent_cpu}: {e}") from e
    try:
        return _run_transport(transport, sizes, rounds_for, cap_s, run, writer, progress,
                              placement, child_cpu)
    finally:
        os.sched_setaffinity(0, saved_affinity)


def _run_transport(transport: str, sizes: Sequence[int], rounds_for: Callable[[int], int],
                   cap_s: float, run: int, writer: str, progress: Callable[[str], None],
                   placement: str, child_cpu: Optional[int]) -> Dict[int, dict]:
    stream_parent: tuple = ()
    stream_child: tuple = ()
    if transport == "py-uds":
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        stream_parent, stream_child = (a.detach(),) * 2, (b.detach(),) * 2
    elif transport == "py-pipe":
        ping_rx, ping_tx = os.pipe()
        pong_rx, pong_tx = os.pipe()
        stream_parent, stream_child = (pong_rx, ping_tx), (ping_rx, pong_tx)
    ctl_down_rx, ctl_down_tx = os.pipe()
    ctl_up_rx, ctl_up_tx = os.pipe()
    board = CpuBoard()
    child_fds = [ctl_down_rx, ctl_up_tx, *set(stream_child)]
    args = [sys.executable, str(pathlib.Path(__file__).resolve()), "--transport", transport,
            "--parent", str(os.getpid()), "--ctl-rx", str(ctl_down_rx), "--ctl-tx",
            str(ctl_up_tx), "--cpu-board", str(board.fd), "--writer", writer]
    if child_cpu is not None:
        args += ["--cpu", str(child_cpu)]
    if stream_child:
        args += ["--stream-rx", str(stream_child[0]), "--stream-tx", str(stream_child[1])]
    log = tempfile.TemporaryFile()
    child: Optional[subprocess.Popen] = None
    session: Optional[Session] = None
    control = Control(ctl_down_tx, ctl_up_rx)
    results: Dict[int, dict] = {}
    try:
        try:
            child = subprocess.Popen(args, pass_fds=[*child_fds, board.fd],
                                     stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log, close_fds=True)
        finally:
            for fd in child_fds:  # the child's ends: closed here, so its exit reads as EOF
                os.close(fd)
        session = Session(transport, "parent", writer, stream_parent or None)
        stream_parent = ()
        control.expect("hello", 60, child)
        alive = lambda: child.poll() is None  # noqa: E731
        seq = 0
        for size in sizes:
            progress(f"python {transport} {common.size_name(size)} {placement} (run {run + 1})")
            tag = f"{CHANNEL_PREFIX}{os.getpid()}-{run}-{transport[3:]}-{size}-{placement}"
            ep = session.endpoint(size, tag, alive)
            try:
                control.send(f"case {size} {tag}")
                control.expect("ready", 30, child)
                rounds = rounds_for(size)
                samples, same_cpu, seq = _timed_loop(ep, seq, max(rounds // 10, 20), rounds,
                                                     int(cap_s * 1e9), int(cap_s * 0.25e9),
                                                     board)
                ep.send(STOP)
                control.expect("done", 30, child)
            except BaseException:
                # The child first: a quiver channel is removed by the last process to close
                # it, so the parent must close after a child that will never close its side.
                _kill(child)
                raise
            finally:
                ep.close()
            results[size] = _summarize_run(samples, same_cpu)
        control.send("exit")
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            raise PeerGone("the echo child did not exit")
        if child.returncode != 0:
            raise PeerGone(f"the echo child exited with status {child.returncode}")
    except Exception as e:  # a BenchError, or quiver/iceoryx2/OS errors: with the child's log
        raise BenchError(f"{transport}: {type(e).__name__}: {e}{_child_log(log, child)}") from e
    finally:
        _kill(child)
        if session is not None:
            session.close()
        for fd in set(stream_parent):
            os.close(fd)
        control.close()
        board.close()
        log.close()
    return results


def _kill(child: Optional[subprocess.Popen]) -> None:
    if child is not None and child.poll() is None:
        child.kill()
        child.wait()


def _child_log(log, child: Optional[subprocess.Popen]) -> str:
    _kill(child)
    try:
        log.seek(0)
        text = log.read().decode(errors="replace").strip()
    except OSError:
        return ""
    return f"\n  child output:\n{text[-3000:]}" if text else ""


# ---- The child --------------------------------------------------------------------------

def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def child_main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="W3 Python echo child (run by w3_frames.py)")
    ap.add_argument("--transport", required=True, choices=TRANSPORTS)
    ap.add_argument("--parent", type=int, required=True)
    ap.add_argument("--ctl-rx", type=int, required=True)
    ap.add_argument("--ctl-tx", type=int, required=True)
    ap.add_argument("--stream-rx", type=int)
    ap.add_argument("--stream-tx", type=int)
    ap.add_argument("--cpu-board", type=int, required=True)
    ap.add_argument("--cpu", type=int, help="pin to this CPU")
    ap.add_argument("--writer", choices=("loan", "bytes"), default="loan")
    a = ap.parse_args(argv)
    _die_with_parent()
    if os.getppid() != a.parent:
        return 1
    if a.cpu is not None:
        os.sched_setaffinity(0, {a.cpu})
    stream = (a.stream_rx, a.stream_tx) if a.stream_rx is not None else None
    board = CpuBoard(a.cpu_board)
    session = Session(a.transport, "child", a.writer, stream)
    alive = lambda: os.getppid() == a.parent  # noqa: E731
    commands = os.fdopen(a.ctl_rx, "r")
    replies = os.fdopen(a.ctl_tx, "w", buffering=1)
    replies.write("hello\n")
    try:
        for line in commands:
            words = line.split()
            if not words or words[0] == "exit":
                break
            if words[0] != "case" or len(words) != 3:
                raise BenchError(f"unknown command {line!r}")
            ep = session.endpoint(int(words[1]), words[2], alive)
            try:
                replies.write("ready\n")
                while True:
                    seq = ep.recv()
                    if seq == STOP:
                        break
                    ep.send(seq)
                    board.store()  # after the reply, off the parent's timed path
            finally:
                ep.close()
            replies.write("done\n")
    finally:
        session.close()
    return 0


if __name__ == "__main__":
    sys.exit(child_main())
