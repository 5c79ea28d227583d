"""`quiver serve` and `quiver bridge` driven by the unmodified pyarrow.flight client."""
import json
import os
import pathlib
import shutil
import signal
import subprocess
import threading
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as flight
import pytest

import quiver
from flight_serve import Serve

SCHEMA = pa.schema([("id", pa.int64()), ("amount", pa.int64()), ("memo", pa.string())])  # type: ignore[arg-type]


def batch(start: int, rows: int = 1000) -> pa.RecordBatch:
    ids = np.arange(start, start + rows, dtype=np.int64)
    return pa.record_batch([pa.array(ids), pa.array(ids * 3 + 1),
                            pa.array([f"row {i}" for i in ids])], schema=SCHEMA)


def checksum(batches) -> tuple:
    """(rows, sum(amount), sum of memo lengths): what both ends must agree on."""
    rows = sum(b.num_rows for b in batches)
    amount = sum(int(pc.sum(b.column("amount")).as_py() or 0) for b in batches)
    memo = sum(int(pc.sum(pc.utf8_length(b.column("memo"))).as_py() or 0)
               for b in batches)
    return rows, amount, memo


@pytest.fixture
def quiver_bin(build_dir) -> pathlib.Path:
    binary = build_dir / "quiver"
    if not binary.exists():
        pytest.fail(f"{binary} is missing: run `make build`")
    return binary


@pytest.fixture
def serve(build_dir):
    server = Serve(build_dir)
    yield server
    server.stop()


def wait_for(predicate, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def live_subscribers(channel: quiver.Channel) -> int:
    return sum(1 for s in channel.stats()["subscribers"] if s["alive"])


class Tail(threading.Thread):
    """Reads a DoGet stream to its end (or `limit` batches) in the background."""

    def __init__(self, client: flight.FlightClient, ticket: bytes, limit: int = 0,
                 delay: float = 0.0, options=None) -> None:
        super().__init__(daemon=True)
        self.client, self.ticket, self.limit, self.delay = client, ticket, limit, delay
        self.options = options
        self.batches: list = []
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            reader = self.client.do_get(flight.Ticket(self.ticket), options=self.options)
            while True:
                try:
                    chunk = reader.read_chunk()
                except StopIteration:
                    return
                self.batches.append(chunk.data)
                if self.delay:
                    time.sleep(self.delay)
                if self.limit and len(self.batches) >= self.limit:
                    reader.cancel()
                    return
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e


def test_list_flights_and_info(serve, name):
    channel = quiver.Channel.create(name, "4MiB", schema=SCHEMA)
    raw = quiver.Channel.create(name + "-raw", "1MiB")
    client = serve.client()
    flights = {f.descriptor.path[0].decode(): f for f in client.list_flights()}
    assert name in flights and name + "-raw" not in flights  # one flight per Arrow channel
    info = flights[name]
    assert info.schema.equals(SCHEMA)
    assert info.total_records == -1 and info.endpoints[0].ticket.ticket == name.encode()
    counters = json.loads(info.app_metadata)
    assert counters["name"] == name and counters["capacity"] == 4 << 20
    assert counters["overflow"] == "block"

    same = client.get_flight_info(flight.FlightDescriptor.for_path(name))
    assert same.schema.equals(SCHEMA)
    assert client.get_schema(flight.FlightDescriptor.for_path(name)).schema.equals(SCHEMA)
    with pytest.raises(pa.ArrowKeyError, match="NOT_FOUND.*does not exist"):
        client.get_flight_info(flight.FlightDescriptor.for_path(name + "-missing"))
    with pytest.raises(pa.ArrowInvalid, match="carries no Arrow"):
        client.get_flight_info(flight.FlightDescriptor.for_path(name + "-raw"))
    with pytest.raises(pa.ArrowInvalid, match="one element"):
        client.get_flight_info(flight.FlightDescriptor.for_path(name, "more"))
    # A command descriptor is a compute ticket (test_flight_compute.py).
    with pytest.raises(pa.ArrowInvalid, match="compute ticket"):
        client.get_flight_info(flight.FlightDescriptor.for_command(b"x"))
    del channel, raw


def test_do_get_is_a_live_tail_that_ends_with_the_publisher(serve, name):
    channel = quiver.Channel.create(name, "16MiB", schema=SCHEMA)
    publisher = channel.publisher()
    publisher.publish(batch(-1000))  # before the DoGet attached: not part of its tail
    tail = Tail(serve.client(), name.encode() + b"?from=latest")
    tail.start()
    wait_for(lambda: live_subscribers(channel) == 1, "the DoGet to attach")
    sent = [batch(i * 1000) for i in range(50)]
    for b in sent:
        publisher.publish(b)
    del publisher  # the stream ends once everything published was sent
    tail.join(timeout=20)
    assert not tail.is_alive() and tail.error is None, tail.error
    assert len(tail.batches) == 50
    assert checksum(tail.batches) == checksum(sent)
    wait_for(lambda: live_subscribers(channel) == 0, "the DoGet to detach")


def test_do_get_from_oldest_starts_with_the_backlog_a_local_reader_holds(serve, name):
    channel = quiver.Channel.create(name, "16MiB", schema=SCHEMA)
    publisher = channel.publisher()
    slow = channel.subscriber()  # reads nothing yet: what it queues is the backlog
    early = [batch(i * 1000) for i in range(5)]
    for b in early:
        publisher.publish(b)
    tail = Tail(serve.client(), name.encode() + b"?from=oldest")
    tail.start()
    wait_for(lambda: live_subscribers(channel) == 2, "the DoGet to attach")
    late = [batch(i * 1000) for i in range(5, 10)]
    for b in late:
        publisher.publish(b)
    del publisher
    tail.join(timeout=20)
    assert not tail.is_alive() and tail.error is None, tail.error
    assert len(tail.batches) == 10
    assert checksum(tail.batches) == checksum(early + late)
    assert [b.column(0)[0].as_py() for b in tail.batches] == [i * 1000 for i in range(10)]
    assert slow.receive(timeout=1).sequence == 0, "the local reader lost nothing"


def test_do_get_errors(serve, name):
    client = serve.client()
    with pytest.raises(pa.ArrowKeyError, match="NOT_FOUND.*does not exist"):
        client.do_get(flight.Ticket(name.encode())).read_all()
    quiver_channel = quiver.Channel.create(name, "1MiB", schema=SCHEMA)
    with pytest.raises(pa.ArrowInvalid, match="from= given twice"):
        client.do_get(flight.Ticket(name.encode() + b"?from=oldest&from=latest")).read_all()
    with pytest.raises(pa.ArrowInvalid, match="unknown option 'limit=3'"):
        client.do_get(flight.Ticket(name.encode() + b"?limit=3")).read_all()
    with pytest.raises(pa.ArrowInvalid, match="no channel name"):
        client.do_get(flight.Ticket(b"?from=latest")).read_all()
    del quiver_channel


def test_cancelled_do_get_frees_its_subscriber_slot(serve, name):
    channel = quiver.Channel.create(name, "16MiB", schema=SCHEMA)
    publisher = channel.publisher()
    tail = Tail(serve.client(), name.encode(), limit=3)
    tail.start()
    wait_for(lambda: live_subscribers(channel) == 1, "the DoGet to attach")
    for i in range(3):
        publisher.publish(batch(i * 1000))
    tail.join(timeout=10)
    assert tail.error is None and len(tail.batches) == 3
    # The client cancelled: the server notices within its poll interval and lets go.
    wait_for(lambda: live_subscribers(channel) == 0, "the cancelled DoGet to detach")
    publisher.publish(batch(0))  # no one to deliver to: nothing is held
    assert channel.stats()["samples_in_use"] == 0


def test_do_put_publishes_into_an_existing_channel(serve, name):
    channel = quiver.Channel.create(name, "16MiB", schema=SCHEMA)
    subscriber = channel.subscriber()
    sent = [batch(i * 1000) for i in range(20)]
    writer, _ = serve.client().do_put(flight.FlightDescriptor.for_path(name), SCHEMA)
    for b in sent:
        writer.write_batch(b)
    writer.close()
    got = [subscriber.receive(timeout=5).to_arrow() for _ in sent]
    assert checksum(got) == checksum(sent)
    assert channel.stats()["publisher_alive"] is False  # the put's publisher let go


def test_do_put_creates_a_missing_channel(serve, name):
    writer, _ = serve.client().do_put(flight.FlightDescriptor.for_path(name), SCHEMA)
    writer.write_batch(batch(0))
    channel = wait_for(lambda: _open(name), "the DoPut to create the channel")
    assert channel.schema.equals(SCHEMA)
    subscriber = channel.subscriber()
    writer.write_batch(batch(1000))
    writer.close()
    got = []  # batch 0 too if the server published it after we subscribed: the schema
    while True:  # arrives (and creates the channel) before the first batch
        try:
            got.append(subscriber.receive(timeout=5).to_arrow())
        except quiver.PeerGone:
            break
    assert 1 <= len(got) <= 2 and checksum(got[-1:]) == checksum([batch(1000)])
    del subscriber, channel  # the last participant out removes the segment


def _open(name):
    try:
        return quiver.Channel.open(name)
    except quiver.NotFound:
        return None


def test_do_put_checks_the_schema(serve, name):
    channel = quiver.Channel.create(name, "4MiB", schema=SCHEMA, evolution="add-nullable")
    wrong = pa.schema([("id", pa.int64()), ("amount", pa.float64()), ("memo", pa.string())])  # type: ignore[arg-type]
    writer, _ = serve.client().do_put(flight.FlightDescriptor.for_path(name), wrong)
    with pytest.raises(pa.ArrowInvalid, match="SCHEMA_MISMATCH.*amount"):
        writer.write_batch(pa.record_batch([pa.array([1]), pa.array([1.5]), pa.array(["x"])],
                                           schema=wrong))
        writer.close()
    assert channel.schema_versions == 1  # nothing registered
    # A compatible change (a nullable field added) is a new schema version, as locally.
    evolved = SCHEMA.append(pa.field("note", pa.string()))
    writer, _ = serve.client().do_put(flight.FlightDescriptor.for_path(name), evolved)
    writer.write_batch(pa.record_batch([pa.array([1]), pa.array([2]), pa.array(["x"]),
                                        pa.array(["n"])], schema=evolved))
    writer.close()
    assert channel.schema_versions == 2


def test_do_put_into_a_strict_channel_takes_only_its_schema(serve, name):
    """The channel's evolution rule holds for Flight clients too: a misspelt column is
    refused, naming the field it probably meant."""
    channel = quiver.Channel.create(name, "4MiB", schema=SCHEMA)
    typo = pa.schema([pa.field(f.name if f.name != "amount" else "amuont", f.type)
                      for f in SCHEMA])
    writer, _ = serve.client().do_put(flight.FlightDescriptor.for_path(name), typo)
    with pytest.raises(pa.ArrowInvalid, match="'amuont' looks like a misspelling of 'amount'"):
        writer.write_batch(pa.record_batch([pa.array([1]), pa.array([2]), pa.array(["x"])],
                                           schema=typo))
        writer.close()
    assert channel.schema_versions == 1


def test_do_put_of_nullable_fields_into_non_nullable_ones(serve, name):
    """Flight clients (Go's, Java's) declare every field nullable: accepted without nulls."""
    strict = pa.schema([pa.field("id", pa.int64(), nullable=False),  # type: ignore[arg-type]
                        pa.field("memo", pa.string(), nullable=False)])
    loose = pa.schema([("id", pa.int64()), ("memo", pa.string())])  # type: ignore[arg-type]
    channel = quiver.Channel.create(name, "4MiB", schema=strict)
    subscriber = channel.subscriber()
    writer, _ = serve.client().do_put(flight.FlightDescriptor.for_path(name), loose)
    writer.write_batch(pa.record_batch([pa.array([1, 2]), pa.array(["a", "b"])], schema=loose))
    writer.close()
    got = subscriber.receive(timeout=5).to_arrow()
    assert got.schema.equals(strict) and got.column("id").to_pylist() == [1, 2]
    assert channel.schema_versions == 1
    del subscriber
    writer, _ = serve.client().do_put(flight.FlightDescriptor.for_path(name), loose)
    with pytest.raises(pa.ArrowInvalid, match="'id' is non-nullable in the channel, but the "
                                              "batch holds 1 nulls"):
        writer.write_batch(pa.record_batch([pa.array([1, None]), pa.array(["a", "b"])],
                                           schema=loose))
        writer.close()


# What other producers send: strings in the large layout (polars, Go), every field nullable.
LOOSE = pa.schema([("id", pa.int64()), ("memo", pa.large_string())])  # type: ignore[arg-type]
STRICT = pa.schema([pa.field("id", pa.int64(), nullable=False), ("memo", pa.string())])  # type: ignore[arg-type]
FITS = pa.record_batch([pa.array([1, 2]), pa.array(["a", "b"], pa.large_string())],
                       schema=LOOSE)
HOLDS_NULL = pa.record_batch([pa.array([1, None]), pa.array(["a", "b"], pa.large_string())],
                             schema=LOOSE)
NULL_REFUSED = "'id' is non-nullable in the channel, but the batch holds 1 nulls"


def test_every_door_conforms_batches_by_one_rule(serve, quiver_bin, name):
    """A Python publish, a DoPut and a bridge accept the same batches (the channel's values
    in another layout; nullable fields that hold no null), stored in the channel's schema,
    and refuse the same ones with the same words."""
    retyped_schema = pa.schema([("id", pa.float64()), ("memo", pa.large_string())])  # type: ignore[arg-type]
    retyped = pa.record_batch([pa.array([1.5]), pa.array(["c"], pa.large_string())],
                              schema=retyped_schema)

    local = quiver.Channel.create(name + "-py", "4MiB", schema=STRICT)
    subscriber = local.subscriber()
    publisher = local.publisher()
    publisher.publish(FITS)
    got = subscriber.receive(timeout=5).to_arrow()
    assert got.schema.equals(STRICT) and got.column("memo").to_pylist() == ["a", "b"]
    with pytest.raises(quiver.SchemaMismatchError, match=NULL_REFUSED):
        publisher.publish(HOLDS_NULL)
    with pytest.raises(quiver.SchemaMismatchError, match="'id'.*double"):
        publisher.publish(retyped)
    assert local.schema_versions == 1
    del publisher, subscriber, local

    put = quiver.Channel.create(name + "-put", "4MiB", schema=STRICT)
    subscriber = put.subscriber()
    writer, _ = serve.client().do_put(flight.FlightDescriptor.for_path(name + "-put"), LOOSE)
    writer.write_batch(FITS)
    writer.close()
    got = subscriber.receive(timeout=5).to_arrow()
    assert got.schema.equals(STRICT) and got.column("memo").to_pylist() == ["a", "b"]
    writer, _ = serve.client().do_put(flight.FlightDescriptor.for_path(name + "-put"), LOOSE)
    with pytest.raises(pa.ArrowInvalid, match=NULL_REFUSED):
        writer.write_batch(HOLDS_NULL)
        writer.close()
    writer, _ = serve.client().do_put(flight.FlightDescriptor.for_path(name + "-put"),
                                      retyped_schema)
    with pytest.raises(pa.ArrowInvalid, match="SCHEMA_MISMATCH.*'id'.*double"):
        writer.write_batch(retyped)
        writer.close()
    assert put.schema_versions == 1
    del subscriber, put

    source = quiver.Channel.create(name, "4MiB", schema=LOOSE)
    remote = source.publisher()
    bridged = quiver.Channel.create(name + "-local", "4MiB", schema=STRICT)
    subscriber = bridged.subscriber()
    bridge = subprocess.Popen([str(quiver_bin), "bridge", f"{serve.location}/{name}",
                               "--to", name + "-local"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: live_subscribers(source) == 1, "the bridge's DoGet to attach")
        remote.publish(FITS)
        got = subscriber.receive(timeout=10).to_arrow()
        assert got.schema.equals(STRICT) and got.column("memo").to_pylist() == ["a", "b"]
        remote.publish(HOLDS_NULL)
        assert bridge.wait(timeout=20) == 1
        assert NULL_REFUSED in bridge.stderr.read()
    finally:
        if bridge.poll() is None:
            bridge.kill()
            bridge.wait()
    del remote, source, subscriber, bridged


def test_do_put_into_a_raw_channel_or_past_the_capacity_is_refused(serve, name):
    raw = quiver.Channel.create(name + "-raw", "1MiB")
    writer, _ = serve.client().do_put(flight.FlightDescriptor.for_path(name + "-raw"), SCHEMA)
    with pytest.raises(pa.ArrowInvalid, match="carries no Arrow schema"):
        writer.write_batch(batch(0))
        writer.close()
    small = quiver.Channel.create(name, "1MiB", schema=SCHEMA)
    subscriber = small.subscriber()
    writer, _ = serve.client().do_put(flight.FlightDescriptor.for_path(name), SCHEMA)
    with pytest.raises(pa.ArrowInvalid, match="CAPACITY_EXCEEDED"):
        writer.write_batch(batch(0, rows=100_000))  # ~2.5 MB: more than the channel holds
        writer.close()
    del subscriber, small, raw


def test_second_do_put_into_a_busy_channel_is_refused(serve, name):
    channel = quiver.Channel.create(name, "4MiB", schema=SCHEMA)
    publisher = channel.publisher()
    writer, _ = serve.client().do_put(flight.FlightDescriptor.for_path(name), SCHEMA)
    with pytest.raises(flight.FlightUnavailableError, match="already has a live publisher"):
        writer.write_batch(batch(0))
        writer.close()
    del publisher


def test_actions(serve, name):
    channel = quiver.Channel.create(name, "4MiB", schema=SCHEMA)
    client = serve.client()
    assert {a.type for a in client.list_actions()} == {"list-channels", "stats"}
    listed = json.loads(next(iter(client.do_action(flight.Action("list-channels", b"")))).body
                        .to_pybytes())
    mine = [c for c in listed if c["name"] == name]
    assert len(mine) == 1 and mine[0]["schema_versions"] == 1 and "amount: int64" in mine[0]["schema"]
    stats = json.loads(next(iter(client.do_action(flight.Action("stats", name.encode())))).body
                       .to_pybytes())
    assert stats["name"] == name and stats["published"] == 0
    with pytest.raises(pa.ArrowNotImplementedError, match="unknown action 'nope'"):
        list(client.do_action(flight.Action("nope", b"")))
    with pytest.raises(pa.ArrowInvalid, match="must name a channel"):
        list(client.do_action(flight.Action("stats", b"")))
    del channel


def test_slow_remote_reader_under_block_loses_nothing(serve, name):
    """Backpressure crosses the wire: the publisher waits for the slow reader."""
    channel = quiver.Channel.create(name, "2MiB", schema=SCHEMA, max_samples=8)
    publisher = channel.publisher()
    tail = Tail(serve.client(), name.encode(), delay=0.005)
    tail.start()
    wait_for(lambda: live_subscribers(channel) == 1, "the DoGet to attach")
    sent = [batch(i * 1000) for i in range(200)]
    for b in sent:
        publisher.publish(b)
    stalls = channel.stats()["publisher_stalls"]
    del publisher
    tail.join(timeout=60)
    assert tail.error is None and len(tail.batches) == 200
    assert checksum(tail.batches) == checksum(sent)
    assert stalls > 0  # the publisher did wait for the remote reader


def test_slow_remote_reader_under_drop_oldest_misses_and_server_stays_bounded(serve, name):
    """Under drop-oldest the remote reader skips what it could not keep up with, and the
    server holds no more than gRPC's window: its RSS does not grow with what was published."""
    big = pa.schema([("blob", pa.binary())])
    channel = quiver.Channel.create(name, "32MiB", schema=big, overflow="drop-oldest")
    publisher = channel.publisher()
    tail = Tail(serve.client(), name.encode(), delay=0.05)
    tail.start()
    wait_for(lambda: live_subscribers(channel) == 1, "the DoGet to attach")
    rss_before = serve.rss_kib()
    payload = pa.record_batch([pa.array([os.urandom(1 << 20)], pa.binary())], schema=big)
    for _ in range(400):  # 400 MiB through a 32 MiB channel to a reader taking ~20 batches/s
        publisher.publish(payload)
    rss_grew_mib = (serve.rss_kib() - rss_before) / 1024
    stats = channel.stats()  # while the DoGet's subscriber is still attached
    del publisher
    tail.join(timeout=60)
    assert tail.error is None
    assert 0 < len(tail.batches) < 400
    assert stats["dropped"] > 0 and sum(s["missed"] for s in stats["subscribers"]) > 0
    assert rss_grew_mib < 64, f"quiver serve grew by {rss_grew_mib:.0f} MiB"


def test_bearer_token(build_dir, tmp_path, name):
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    server = Serve(build_dir, "--token-file", str(token), listen="grpc://127.0.0.1:0")
    try:
        channel = quiver.Channel.create(name, "1MiB", schema=SCHEMA)
        client = server.client()
        with pytest.raises(flight.FlightUnauthenticatedError, match="needs a bearer token"):
            list(client.list_flights())
        wrong = flight.FlightCallOptions(headers=[(b"authorization", b"Bearer guess")])  # type: ignore[list-item]
        with pytest.raises(flight.FlightUnauthenticatedError, match="wrong bearer token"):
            list(client.list_flights(options=wrong))
        right = flight.FlightCallOptions(headers=[(b"authorization", b"Bearer s3cret-token")])  # type: ignore[list-item]
        assert name in [f.descriptor.path[0].decode()
                        for f in client.list_flights(options=right)]
        del channel
    finally:
        server.stop()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_tls(build_dir, tmp_path, name):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    server = Serve(build_dir, "--tls-cert", str(cert), "--tls-key", str(key),
                   listen="grpc://127.0.0.1:0")
    try:
        assert server.location.startswith("grpc+tls://")
        channel = quiver.Channel.create(name, "1MiB", schema=SCHEMA)
        client = server.client(tls_root_certs=cert.read_bytes())
        assert name in [f.descriptor.path[0].decode() for f in client.list_flights()]
        plain = flight.connect(f"grpc://127.0.0.1:{server.port}")
        with pytest.raises(flight.FlightError):
            list(plain.list_flights())  # a plain-text client cannot talk to it
        del channel
    finally:
        server.stop()


def test_serve_refuses_bad_listen_addresses(quiver_bin, tmp_path):
    def serve(*args):
        return subprocess.run([str(quiver_bin), "serve", *args], capture_output=True, text=True,
                              timeout=30)

    remote = serve("--listen", "grpc://0.0.0.0:0")
    assert remote.returncode == 1 and "not a loopback address" in remote.stderr
    assert "--allow-insecure-remote" in remote.stderr
    for listen, why in [("http://127.0.0.1:1", "unknown scheme 'http'"),
                        ("grpc://127.0.0.1", "no port"),
                        ("grpc://127.0.0.1:70000", "is not 0 to 65535"),
                        ("grpc+tls://127.0.0.1:0", "give --tls-cert and --tls-key")]:
        result = serve("--listen", listen)
        assert result.returncode == 1 and why in result.stderr, (listen, result.stderr)
    empty = tmp_path / "empty"
    empty.write_text("\n")
    result = serve("--token-file", str(empty))
    assert result.returncode == 2 and "is empty" in result.stderr
    taken = serve("--listen", "grpc://127.0.0.1:0", "--capacity", "lots")
    assert taken.returncode == 2 and "--capacity" in taken.stderr


def test_bridge_subscribes_a_remote_channel_into_a_local_one(serve, quiver_bin, name):
    source = quiver.Channel.create(name, "16MiB", schema=SCHEMA)
    publisher = source.publisher()
    bridge = subprocess.Popen([str(quiver_bin), "bridge", f"{serve.location}/{name}",
                               "--to", name + "-local", "--capacity", "8MiB"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        local = wait_for(lambda: _open(name + "-local"), "the bridge to create its channel")
        subscriber = local.subscriber()
        wait_for(lambda: live_subscribers(source) == 1, "the bridge's DoGet to attach")
        sent = [batch(i * 1000) for i in range(100)]
        for b in sent:
            publisher.publish(b)
        del publisher  # the remote stream ends, then the bridge
        got = [subscriber.receive(timeout=10).to_arrow() for _ in sent]
        assert checksum(got) == checksum(sent)
        assert bridge.wait(timeout=20) == 0, bridge.stderr.read()
        assert "done after 100 batches, 100000 rows" in bridge.stderr.read()
        with pytest.raises(quiver.PeerGone):
            subscriber.receive(timeout=5)
        del subscriber, local
    finally:
        if bridge.poll() is None:
            bridge.kill()
            bridge.wait()


def test_bridge_from_oldest_carries_the_remote_backlog_over(serve, quiver_bin, name):
    source = quiver.Channel.create(name, "16MiB", schema=SCHEMA)
    publisher = source.publisher()
    slow = source.subscriber()  # a remote reader that is behind: its queue is the backlog
    sent = [batch(i * 1000) for i in range(40)]
    for b in sent[:20]:
        publisher.publish(b)
    local = quiver.Channel.create(name + "-local", "8MiB", schema=SCHEMA)
    subscriber = local.subscriber()  # there before the bridge: it sees every batch
    bridge = subprocess.Popen([str(quiver_bin), "bridge", f"{serve.location}/{name}?from=oldest",
                               "--to", name + "-local"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: live_subscribers(source) == 2, "the bridge's DoGet to attach")
        for b in sent[20:]:
            publisher.publish(b)
        del publisher
        got = [subscriber.receive(timeout=10).to_arrow() for _ in sent]
        assert [b.column(0)[0].as_py() for b in got] == [i * 1000 for i in range(40)]
        assert checksum(got) == checksum(sent)
        assert bridge.wait(timeout=20) == 0, bridge.stderr.read()
        assert slow.receive(timeout=1).sequence == 0
        del subscriber, local, slow
    finally:
        if bridge.poll() is None:
            bridge.kill()
            bridge.wait()


def test_bridge_errors(serve, quiver_bin, name):
    def bridge(*args):
        return subprocess.run([str(quiver_bin), "bridge", *args], capture_output=True, text=True,
                              timeout=30)

    missing = bridge(f"{serve.location}/{name}", "--to", name + "-local")
    assert missing.returncode == 1 and "NOT_FOUND" in missing.stderr
    assert bridge(f"{serve.location}", "--to", "x").returncode == 1
    nobody = bridge(f"grpc://127.0.0.1:1/{name}", "--to", name + "-local")
    assert nobody.returncode == 1 and "127.0.0.1:1" in nobody.stderr


def test_bridge_into_a_channel_of_another_schema_is_refused(serve, quiver_bin, name):
    source = quiver.Channel.create(name, "4MiB", schema=SCHEMA)
    publisher = source.publisher()
    other = quiver.Channel.create(name + "-local", "4MiB",
                                  schema=pa.schema([("id", pa.string())]))
    result = subprocess.run([str(quiver_bin), "bridge", f"{serve.location}/{name}",
                             "--to", name + "-local"], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 1 and "SCHEMA_MISMATCH" in result.stderr, result.stderr
    del publisher, source, other


def test_bridge_fails_clearly_when_the_server_dies(build_dir, quiver_bin, name):
    server = Serve(build_dir)
    source = quiver.Channel.create(name, "4MiB", schema=SCHEMA)
    publisher = source.publisher()
    bridge = subprocess.Popen([str(quiver_bin), "bridge", f"{server.location}/{name}",
                               "--to", name + "-local"], stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: live_subscribers(source) == 1, "the bridge's DoGet to attach")
        server.proc.kill()  # the remote host goes away mid-stream
        server.proc.wait()
        assert bridge.wait(timeout=30) == 1
        err = bridge.stderr.read()
        # The server may die before its first message (the schema) reached the bridge: then
        # the DoGet itself fails, else the stream does. Both name the channel and the cause.
        assert ("stream of '" + name + "'" in err or "DoGet '" + name + "'" in err), err
        assert "IO_ERROR" in err and server.unix_socket.rsplit("/", 1)[0] in err, err
    finally:
        if bridge.poll() is None:
            bridge.kill()
            bridge.wait()
        server.stop(check=False)
    publisher = source = None  # noqa: F841


def test_bridge_stops_on_sigint(serve, quiver_bin, name):
    source = quiver.Channel.create(name, "4MiB", schema=SCHEMA)
    publisher = source.publisher()
    bridge = subprocess.Popen([str(quiver_bin), "bridge", f"{serve.location}/{name}",
                               "--to", name + "-local"], stderr=subprocess.PIPE, text=True)
    wait_for(lambda: live_subscribers(source) == 1, "the bridge's DoGet to attach")
    publisher.publish(batch(0))
    local = wait_for(lambda: _open(name + "-local"), "the bridge to create its channel")
    wait_for(lambda: local.stats()["published"] == 1, "the bridge to publish the batch")
    local = None  # noqa: F841 - let go of the channel
    bridge.send_signal(signal.SIGINT)
    assert bridge.wait(timeout=10) == 0
    assert "stopped after 1 batches" in bridge.stderr.read()
    wait_for(lambda: live_subscribers(source) == 0, "the server to let go of the bridge's tail")
    publisher = source = None  # noqa: F841
