"""Who gets into `quiver serve`, and what it lets in: the secure defaults (a private Unix
socket; a token for every TCP listener), full validation of every batch from the network
(DoPut and the bridge), a bounded message size, and a bounded budget of channels that DoPut
streams may create. Hostile second users: tests/test_hostile_user.py."""
import os
import pathlib
import stat
import subprocess
import tempfile
import threading
import time

import numpy as np
import pyarrow as pa
import pyarrow.flight as flight
import pytest

import quiver
import quiver.flight
from conftest import named_channels
from flight_serve import Serve

SCHEMA = pa.schema([("id", pa.int64()), ("memo", pa.string())])  # type: ignore[arg-type]


def good_batch(rows: int = 4) -> pa.RecordBatch:
    return pa.record_batch([pa.array(range(rows), pa.int64()),
                            pa.array([f"row {i}" for i in range(rows)])], schema=SCHEMA)


def bogus_offsets_batch() -> pa.RecordBatch:
    """Structurally valid (every buffer is large enough, the last offset is inside the data),
    content invalid: the string offsets go backwards. A reader that trusts them reads
    outside the value buffer."""
    offsets = pa.py_buffer(np.array([0, 5, 1, 5], dtype=np.int32).tobytes())
    memo = pa.Array.from_buffers(pa.string(), 3, [None, offsets, pa.py_buffer(b"hello")])
    return pa.record_batch([pa.array([1, 2, 3], pa.int64()), memo], schema=SCHEMA)


def bad_utf8_batch() -> pa.RecordBatch:
    offsets = pa.py_buffer(np.array([0, 2], dtype=np.int32).tobytes())
    memo = pa.Array.from_buffers(pa.string(), 1, [None, offsets, pa.py_buffer(b"\xff\xfe")])
    return pa.record_batch([pa.array([1], pa.int64()), memo], schema=SCHEMA)


def await_channels(*names: str) -> None:
    """Until the server has made each of these channels (a DoPut makes its channel when its
    schema arrives, on the server's own time)."""
    deadline = time.monotonic() + 10
    while not set(names) <= set(named_channels()):
        assert time.monotonic() < deadline, f"the server never made {names}"
        time.sleep(0.01)


def sanitized(build_dir: pathlib.Path) -> bool:
    """An ASan build: its allocator keeps freed memory in quarantine, so RSS says nothing."""
    out = subprocess.run(["ldd", str(build_dir / "quiver")], capture_output=True, text=True)
    return "libasan" in out.stdout


def test_default_is_a_unix_socket_only_this_user_reaches(build_dir, tmp_path):
    runtime = tempfile.mkdtemp(prefix="qv-xdg-")
    env = {**os.environ, "XDG_RUNTIME_DIR": runtime}
    proc = subprocess.Popen([str(build_dir / "quiver"), "serve"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        socket_path = f"{runtime}/quiver/flight.sock"
        assert line.strip() == f"quiver serve: listening on grpc+unix://{socket_path}", line
        assert stat.S_IMODE(os.stat(f"{runtime}/quiver").st_mode) == 0o700
        assert stat.S_IMODE(os.stat(socket_path).st_mode) == 0o600
        # The client side of the default: no argument at all.
        os.environ["XDG_RUNTIME_DIR"], saved = runtime, os.environ.get("XDG_RUNTIME_DIR")
        try:
            assert quiver.flight.default_location() == f"grpc+unix://{socket_path}"
            assert isinstance(list(quiver.flight.connect().list_flights()), list)
        finally:
            if saved is None:
                del os.environ["XDG_RUNTIME_DIR"]
            else:
                os.environ["XDG_RUNTIME_DIR"] = saved
        # A second server on the default socket is refused rather than stealing it.
        second = subprocess.run([str(build_dir / "quiver"), "serve"], env=env,
                                capture_output=True, text=True, timeout=30)
        assert second.returncode == 1 and "already listens on" in second.stderr, second.stderr
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0, proc.stderr.read()
    assert not os.path.exists(f"{runtime}/quiver/flight.sock")


def test_a_tcp_listener_makes_a_token_and_refuses_calls_without_it(build_dir, name):
    server = Serve(build_dir, listen="grpc://127.0.0.1:0")
    try:
        token_file = server.token_file
        assert token_file and stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
        assert len(server.token) == 64  # 32 random bytes, hex
        channel = quiver.Channel.create(name, "1MiB", schema=SCHEMA)
        anyone = flight.connect(server.location)  # loopback is not a user boundary
        with pytest.raises(flight.FlightUnauthenticatedError, match="needs a bearer token"):
            list(anyone.list_flights())
        with pytest.raises(flight.FlightUnauthenticatedError):
            anyone.do_get(flight.Ticket(name.encode())).read_all()
        with pytest.raises(flight.FlightUnauthenticatedError):
            writer, _ = anyone.do_put(flight.FlightDescriptor.for_path(name), SCHEMA)
            writer.write_batch(good_batch())
            writer.close()
        assert channel.stats()["published"] == 0
        with_token = quiver.flight.connect(server.location, token_file=token_file)
        assert name in [f.descriptor.path[0].decode() for f in with_token.list_flights()]
        padded = pathlib.Path(token_file).with_suffix(".padded")
        padded.write_text(f"  {server.token}\t\nanother line\n")  # read as serve reads it
        again = quiver.flight.connect(server.location, token_file=padded)
        assert name in [f.descriptor.path[0].decode() for f in again.list_flights()]
        padded.write_text(" \n")
        with pytest.raises(quiver.InvalidArgumentError, match="is empty"):
            quiver.flight.connect(server.location, token_file=padded)
        padded.unlink()
        del channel
    finally:
        server.stop()
    assert not os.path.exists(token_file), "the generated token file is removed at exit"


@pytest.mark.parametrize("make_batch,why", [(bogus_offsets_batch, "offset"),
                                            (bad_utf8_batch, "UTF8")],
                         ids=["bogus-offsets", "bad-utf8"])
def test_do_put_validates_every_batch_before_it_reaches_shared_memory(build_dir, name,
                                                                      make_batch, why):
    server = Serve(build_dir)
    try:
        channel = quiver.Channel.create(name, "1MiB", schema=SCHEMA)
        subscriber = channel.subscriber()  # a default local reader: structure checks only
        writer, _ = server.client().do_put(flight.FlightDescriptor.for_path(name), SCHEMA)
        writer.write_batch(good_batch())
        with pytest.raises(pa.ArrowInvalid, match=f"INVALID_ARGUMENT.*column 'memo'.*{why}"):
            writer.write_batch(make_batch())
            writer.close()
        assert subscriber.receive(timeout=5).to_arrow().equals(good_batch())
        with pytest.raises(quiver.PeerGone):  # the stream failed: its publisher left
            subscriber.receive(timeout=5)    # and the bad batch never arrived
        assert channel.stats()["published"] == 1
        del subscriber, channel
    finally:
        server.stop()


class HostileServer(flight.FlightServerBase):
    """A remote `quiver serve` look-alike whose DoGet streams a good batch, then a bad one."""

    def __init__(self, location: str, bad: pa.RecordBatch) -> None:
        super().__init__(location)
        self.bad = bad

    def do_get(self, context, ticket):
        return flight.GeneratorStream(SCHEMA, iter([good_batch(), self.bad]))


def test_the_bridge_validates_what_a_remote_server_sends(build_dir, name):
    hostile = HostileServer("grpc://127.0.0.1:0", bogus_offsets_batch())
    thread = threading.Thread(target=hostile.serve, daemon=True)
    thread.start()
    local = quiver.Channel.create(name, "1MiB", schema=SCHEMA)
    subscriber = local.subscriber()
    try:
        run = subprocess.run([str(build_dir / "quiver"), "bridge",
                              f"grpc://127.0.0.1:{hostile.port}/anything", "--to", name],
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 1, run.stderr
        assert "INVALID_ARGUMENT" in run.stderr and "column 'memo'" in run.stderr, run.stderr
        assert subscriber.receive(timeout=5).to_arrow().equals(good_batch())
        with pytest.raises(quiver.PeerGone):
            subscriber.receive(timeout=5)  # the bridge published nothing more, and left
    finally:
        hostile.shutdown()
        thread.join(timeout=10)
    del subscriber, local


def test_a_message_over_the_limit_is_refused_and_memory_comes_back(build_dir, name):
    server = Serve(build_dir, "--capacity", "8MiB")  # limit: 8 MiB + 1 MiB
    try:
        writer, _ = server.client().do_put(flight.FlightDescriptor.for_path(name), SCHEMA)
        writer.write_batch(good_batch())  # a call first: gRPC's own start-up memory
        writer.close()
        baseline = server.rss_kib()
        big = pa.record_batch([pa.array(np.zeros(32 << 20, dtype=np.int64)),  # 256 MiB
                               pa.array([""] * (32 << 20))], schema=SCHEMA)
        writer, _ = server.client().do_put(flight.FlightDescriptor.for_path(name), SCHEMA)
        with pytest.raises(pa.ArrowInvalid, match="resource exhausted.*larger than max"):
            writer.write_batch(big)
            writer.close()
        del big
        # The server is fine and serves the next call.
        writer, _ = server.client().do_put(flight.FlightDescriptor.for_path(name), SCHEMA)
        writer.write_batch(good_batch())
        writer.close()
        if not sanitized(build_dir):
            deadline = time.monotonic() + 10
            while server.rss_kib() - baseline > 64 << 10 and time.monotonic() < deadline:
                time.sleep(0.2)  # quiver serve gives freed heap back once a second
            grown_mib = (server.rss_kib() - baseline) / 1024
            print(f"RSS after refusing a 256 MiB message: {grown_mib:+.0f} MiB")
            assert grown_mib < 64, f"RSS stayed {grown_mib:.0f} MiB above its baseline"
    finally:
        server.stop()


def test_do_put_streams_may_create_only_so_many_channels(build_dir, name):
    server = Serve(build_dir, "--put-max-channels", "2", "--put-max-bytes", "5MiB",
                   "--capacity", "2MiB")
    try:
        client = server.client()
        streams = []
        for i in range(2):  # schema-only streams: each holds a channel it created
            writer, _ = client.do_put(flight.FlightDescriptor.for_path(f"{name}-{i}"), SCHEMA)
            writer.write_batch(good_batch())
            streams.append(writer)
        await_channels(f"{name}-0", f"{name}-1")  # the server has taken both shares
        third, _ = client.do_put(flight.FlightDescriptor.for_path(f"{name}-2"), SCHEMA)
        with pytest.raises(flight.FlightUnavailableError, match="RESOURCE_EXHAUSTED.*put-max-channels"):
            third.write_batch(good_batch())
            third.close()
        assert f"{name}-2" not in named_channels()
        # Into a channel that exists, a DoPut creates nothing and needs no budget.
        existing = quiver.Channel.create(f"{name}-x", "1MiB", schema=SCHEMA)
        writer, _ = client.do_put(flight.FlightDescriptor.for_path(f"{name}-x"), SCHEMA)
        writer.write_batch(good_batch())
        writer.close()
        # A stream that ends gives its share back.
        streams.pop().close()
        deadline = time.monotonic() + 10
        while True:
            writer, _ = client.do_put(flight.FlightDescriptor.for_path(f"{name}-3"), SCHEMA)
            try:
                writer.write_batch(good_batch())
                writer.close()
                break
            except flight.FlightUnavailableError:
                assert time.monotonic() < deadline, "the ended stream's share never came back"
                time.sleep(0.1)
        # Bytes: 2 MiB held, 2 MiB more fits 5 MiB, a third 2 MiB does not.
        for stream in streams:
            stream.close()
        del existing
    finally:
        server.stop()


def test_do_put_streams_may_create_only_so_many_bytes(build_dir, name):
    server = Serve(build_dir, "--put-max-bytes", "5MiB", "--capacity", "2MiB")
    try:
        client = server.client()
        held = []
        for i in range(2):
            writer, _ = client.do_put(flight.FlightDescriptor.for_path(f"{name}-{i}"), SCHEMA)
            writer.write_batch(good_batch())
            held.append(writer)
        await_channels(f"{name}-0", f"{name}-1")
        writer, _ = client.do_put(flight.FlightDescriptor.for_path(f"{name}-2"), SCHEMA)
        with pytest.raises(flight.FlightUnavailableError, match="RESOURCE_EXHAUSTED.*put-max-bytes"):
            writer.write_batch(good_batch())
            writer.close()
        for writer in held:
            writer.close()
    finally:
        server.stop()
