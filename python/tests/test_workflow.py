"""The command/result workflow from Python (quiver.control, bound from quiver/control.h):
workers with handlers, clients with several commands in flight and asyncio, pools that retry a
dead worker's commands, streams made by CMD_STREAM_START, and safe handles resolved to the
very sample (zero-copy) or refused."""

import asyncio
import os
import socket
import threading

import numpy as np
import pyarrow as pa
import pytest

import quiver
from quiver import control
from quiver.control import CommandClient, HandleResolver, Streams, Worker, WorkerPool


class Served:
    """A Python Worker on a thread at one end of a socketpair, a CommandClient at the other."""

    def __init__(self, handlers, streams=None, name="w1"):
        a, b = socket.socketpair()
        self.worker = Worker(handlers, streams=streams)
        self.error = None
        fd = b.detach()

        def run():
            try:
                self.worker.serve_fd(fd)
            except Exception as exc:  # noqa: BLE001 - reported by the test
                self.error = exc
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        self.client = CommandClient.from_fd(a.detach(), name)

    def close(self):
        if self.client is not None and self.client._c is not None and self.client.connected:
            self.client.call("CMD_SHUTDOWN", timeout=10)
        if self.client is not None:
            self.client.close()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()
        self.worker = None  # its handlers hold what they publish on


@pytest.fixture
def served():
    made = []

    def make(handlers, streams=None, name="w1"):
        s = Served(handlers, streams, name)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()
    made.clear()


def test_application_commands_are_answered_and_matched_by_msg_id(served):
    s = served({"CMD_EXTRACT_EVIDENCE": lambda c: {"page": c.payload["page"]}})
    calls = [s.client.send("CMD_EXTRACT_EVIDENCE", {"file_path": "a.pdf", "page": p})
             for p in range(20)]
    for page, call in reversed(list(enumerate(calls))):
        answer = call.wait(timeout=10)
        assert answer.type == "RES_OK" and answer.payload == {"page": page}
        assert answer.msg_id == call.msg_id and call.worker == "w1"
    assert s.client.in_flight == 0


def test_two_pipes_carry_the_workflow_as_quiver_run_connects_it():
    to_worker, to_core = os.pipe(), os.pipe()
    worker = Worker({"CMD_ECHO": lambda c: c.payload})
    thread = threading.Thread(target=worker.serve_fds, args=(to_worker[0], to_core[1]))
    thread.start()
    client = CommandClient.from_fds(to_core[0], to_worker[1], "piped")
    calls = [client.send("CMD_ECHO", {"i": i}) for i in range(30)]
    assert [c.wait(10).payload["i"] for c in calls] == list(range(30))
    client.close()  # the worker reads the end of its commands and returns
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_asyncio_awaits_many_commands_at_once(served):
    s = served({"CMD_SQUARE": lambda c: {"y": c.payload["x"] ** 2}})

    async def main():
        return await asyncio.gather(*[s.client.call_async("CMD_SQUARE", {"x": x})
                                      for x in range(10)])
    assert [a.payload["y"] for a in asyncio.run(main())] == [x * x for x in range(10)]


def test_unknown_command_and_handler_errors_are_clear(served):
    def fail(c):
        raise control.ControlError("NOT_FOUND", f"page {c.payload['page']} does not exist")
    s = served({"CMD_FAIL": fail, "CMD_CRASH": lambda c: 1 / 0,
                "CMD_BAD": lambda c: quiver.Channel.open("wf-py-absent-channel")})
    with pytest.raises(quiver.QuiverError, match="UNKNOWN_TYPE.*CMD_PROCESS_PDF.*CMD_BAD"):
        s.client.call("CMD_PROCESS_PDF")
    with pytest.raises(quiver.NotFoundError, match="page 9 does not exist"):
        s.client.call("CMD_FAIL", {"page": 9})
    with pytest.raises(quiver.QuiverError, match="ZeroDivisionError"):
        s.client.call("CMD_CRASH")
    with pytest.raises(quiver.NotFoundError):
        s.client.call("CMD_BAD")
    assert s.client.connected  # the connection goes on after errors

def test_builtin_types_are_reserved_and_bad_names_refused():
    for bad in ("RES_EVIDENCE", "CMD_AUTH", "CMD_SHUTDOWN", "cmd_lower"):
        with pytest.raises(quiver.InvalidArgumentError):
            Worker({bad: lambda c: {}})


def test_a_dead_worker_fails_its_calls_naming_it():
    a, b = socket.socketpair()
    client = CommandClient.from_fd(a.detach(), "doomed")
    call = client.send("CMD_ANY")
    with pytest.raises(quiver.Timeout):
        call.wait(timeout=0.05)
    b.close()
    with pytest.raises(quiver.PeerGone, match="doomed"):
        call.wait(timeout=10)
    assert not client.connected


def test_the_pool_retries_a_dead_workers_command_exactly_once(served):
    answered = []
    good = served({"CMD_PAGE": lambda c: answered.append(c.payload["page"]) or  # type: ignore[func-returns-value]
                   {"page": c.payload["page"]}}, name="good")
    pool = WorkerPool("round-robin")
    a, b = socket.socketpair()
    pool.add(CommandClient.from_fd(a.detach(), "doomed"))
    pool.add(good.client)  # the pool owns it now

    def die_with_the_first_command():
        b.recv(65536)
        b.close()
    dying = threading.Thread(target=die_with_the_first_command)
    dying.start()
    results = [pool.call("CMD_PAGE", {"page": p}, timeout=10) for p in range(3)]
    dying.join()
    assert [r.payload["page"] for r in results] == [0, 1, 2]
    assert sorted(answered) == [0, 1, 2]  # each once
    assert pool.live_workers == 1 and list(pool.load()) == ["good"]
    with pytest.raises(quiver.QuiverError, match="closed"):
        good.client.call("CMD_PAGE")
    good.client = None
    del pool  # closes the good worker's connection: its loop ends


def test_with_every_worker_dead_the_call_names_them():
    pool = WorkerPool()
    ends = []
    for i in range(2):
        a, b = socket.socketpair()
        ends.append(b)
        pool.add(CommandClient.from_fd(a.detach(), f"dead{i}"))
    for b in ends:
        threading.Thread(target=lambda b=b: (b.recv(65536), b.close())).start()
    with pytest.raises(quiver.PeerGone) as info:
        pool.call("CMD_PAGE", timeout=10, retries=5)
    assert "dead0" in str(info.value) and "dead1" in str(info.value)
    with pytest.raises(quiver.InvalidArgumentError, match="round-robin"):
        WorkerPool("random")


def test_streams_and_safe_handles_resolve_to_the_sample_zero_copy(served, name):
    streams = Streams()

    def render(c):
        pub = streams.publisher(name)
        if c.payload["kind"] == "frame":
            pub.publish_image(np.full((1080, 1920, 4), 7, np.uint8), "RGBA8")
        elif c.payload["kind"] == "tensor":
            with pub.loan_ndarray((64, 3), np.float32) as t:
                t[:] = np.arange(192, dtype=np.float32).reshape(64, 3)
        else:
            pub.publish_bytes(b"x" * 100)
        return control.data_ready(pub, page=c.payload["page"])

    s = served({"CMD_RENDER": render}, streams=streams)
    started = s.client.call("CMD_STREAM_START", {"stream": name, "capacity": 64 << 20})
    assert started.payload["segment_id"] == name
    with pytest.raises(quiver.AlreadyExistsError):
        s.client.call("CMD_STREAM_START", {"stream": name})
    with pytest.raises(quiver.InvalidArgumentError, match="overflow"):
        s.client.call("CMD_STREAM_START", {"stream": name + "-x", "overflow": "sometimes"})
    channel = quiver.Channel.open(name)
    resolver = HandleResolver()
    resolver.watch(channel)
    frame = s.client.call("CMD_RENDER", {"kind": "frame", "page": 1})
    raw = s.client.call("CMD_RENDER", {"kind": "raw", "page": 2})
    assert frame.shm_handle.generation == started.payload["generation"]
    sample = resolver.resolve(frame.shm_handle)
    assert sample.image_info.width == 1920
    view = sample.to_numpy()
    assert view.shape == (1080, 1920, 4) and not view.flags.writeable and view[0, 0, 0] == 7
    with pytest.raises(quiver.StaleHandleError):
        resolver.resolve(frame.shm_handle)
    forged = control.ShmHandle(name, raw.shm_handle.offset, raw.shm_handle.size + 1, "raw",
                               raw.shm_handle.generation, raw.shm_handle.sequence)
    with pytest.raises(quiver.HandleOutOfRangeError):
        resolver.resolve(forged)
    other = control.ShmHandle(name, raw.shm_handle.offset, raw.shm_handle.size, "raw",
                              raw.shm_handle.generation ^ 1, raw.shm_handle.sequence)
    with pytest.raises(quiver.StaleHandleError, match="generation"):
        resolver.resolve(other)
    assert bytes(resolver.resolve(raw.shm_handle).to_numpy()) == b"x" * 100
    tensor = resolver.resolve(s.client.call("CMD_RENDER", {"kind": "tensor", "page": 3}).shm_handle)
    assert tensor.kind == "tensor"
    array = tensor.to_numpy()
    assert array.dtype == np.float32 and array.shape == (64, 3) and array[63, 2] == 191
    del array, tensor
    with pytest.raises(quiver.NotFoundError, match="does not watch"):
        resolver.resolve(control.ShmHandle("wf-elsewhere", 0, 1, "raw", 1, 0))
    del sample, view


def test_an_arrow_stream_resolves_to_a_record_batch(served, name):
    streams = Streams()
    batch = pa.record_batch({"id": pa.array(range(10_000), pa.int64()),
                             "code": pa.array([f"c{i}" for i in range(10_000)])})

    def ledger(c):
        pub = streams.publisher(name)
        pub.publish(batch)
        return control.data_ready(pub, "arrow_stream", rows=batch.num_rows)

    s = served({"CMD_LEDGER": ledger}, streams=streams)
    s.client.call("CMD_STREAM_START", {"stream": name, "capacity": 16 << 20, "schema": [
        {"name": "id", "type": "int64"}, {"name": "code", "type": "utf8"}]})
    resolver = HandleResolver()
    resolver.watch(quiver.Channel.open(name))
    answer = s.client.call("CMD_LEDGER")
    sample = resolver.resolve(answer.shm_handle)
    got = sample.to_arrow()
    assert got.equals(batch)
    del got, sample


def test_the_readme_workflow_example_runs(name):
    """The README's command/result example, run as written (on this test's channel name), and
    what its comment claims."""
    import pathlib
    import re
    readme = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S)
              if "CommandClient" in b]
    assert len(blocks) == 1, "the README has one workflow example"
    code = blocks[0]
    assert '"pages"' in code
    namespace: dict = {}
    before = set(threading.enumerate())
    exec(compile(code.replace('"pages"', repr(name)), "README.md", "exec"), namespace)
    claims = re.findall(r"^(\S.*?)\s+# (ImageFrameInfo\(.*\))$", code, re.M)
    assert len(claims) == 1
    for expression, claimed in claims:
        assert repr(eval(expression, namespace)) == claimed
    assert namespace["result"].type == "RES_DATA_READY"
    assert namespace["result"].payload["page"] == 3
    for t in set(threading.enumerate()) - before:  # the example's worker: ended by CMD_SHUTDOWN
        t.join(timeout=10)
        assert not t.is_alive()
    namespace.clear()
    import gc
    gc.collect()
