"""Interop: the Go Flight client of examples/go (Apache Arrow's Go implementation) against
`quiver serve`, with Python on the channel side. The Go program prints
{"batches", "rows", "checksum"} (checksum: the sum of the int64 column "amount"), which is
compared with what Python published or received.

Skipped when Go is not installed, or when its modules cannot be downloaded for want of a
network; any other build failure fails."""

import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import time

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from conftest import named_channels

import quiver
from flight_serve import Serve

REPO = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "go"

# The schema of examples/go's `put` batches: id = b*R + r, amount = (id*37) % 1001 - 500.
SCHEMA = pa.schema([("id", pa.int64()), ("amount", pa.int64()), ("name", pa.string())])  # type: ignore[arg-type]

# What a module download failing for want of a network looks like (as opposed to a
# compile error, which must fail the test).
OFFLINE = re.compile(r"dial tcp|no such host|network is unreachable|connection refused|"
                     r"i/o timeout|TLS handshake timeout|proxyconnect|connection reset|"
                     r"temporary failure in name resolution|module lookup disabled", re.IGNORECASE)


def find_go():
    found = shutil.which("go")
    if found:
        return found
    default = pathlib.Path("/usr/local/go/bin/go")
    return str(default) if os.access(default, os.X_OK) else None


@pytest.fixture(scope="session")
def flightclient(tmp_path_factory) -> str:
    """examples/go built once per session."""
    go = find_go()
    if go is None:
        pytest.skip("Go is not installed (looked for `go` in PATH and /usr/local/go/bin/go): "
                    "the Go Flight client interop tests need it")
    binary = tmp_path_factory.mktemp("go") / "flightclient"
    env = {**os.environ, "GOFLAGS": "-mod=readonly -buildvcs=false"}
    build = subprocess.run([go, "build", "-o", str(binary), "."], cwd=EXAMPLE, env=env,
                           capture_output=True, text=True, timeout=900)
    if build.returncode != 0:
        if OFFLINE.search(build.stderr):
            first = next(line for line in build.stderr.splitlines() if OFFLINE.search(line))
            pytest.skip(f"cannot download the Go modules of examples/go (no network?): {first}")
        pytest.fail(f"`go build` of examples/go failed:\n{build.stderr[-4000:]}")
    return str(binary)


@pytest.fixture
def serve(build_dir):
    servers = []

    def start(*args: str, **kwargs) -> Serve:
        servers.append(Serve(build_dir, *args, **kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def run_client(client, addr, *args, timeout=60):
    return subprocess.run([client, "-addr", addr, *args], capture_output=True, text=True,
                          timeout=timeout)


def wait_for(condition, what, timeout=30.0, proc=None):
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the Go client ended while waiting for {what}: "
                        f"{proc.stdout.read()} {proc.stderr.read()}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def live_subscribers(channel) -> int:
    return sum(1 for s in channel.stats()["subscribers"] if s["alive"])


def segments(name):
    return [f for f in named_channels() if f == name]


def wait_segments_gone(name, timeout=10.0):
    """The server lets go of a channel shortly after its call ends (it polls for that)."""
    import gc

    gc.collect()
    deadline = time.monotonic() + timeout
    while segments(name) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not segments(name), f"segments left behind: {segments(name)}"


def ledger_batch(first_id, rows):
    ids = pa.array(range(first_id, first_id + rows), pa.int64())
    amounts = pa.array([(i * 37) % 1001 - 500 for i in range(first_id, first_id + rows)],
                       pa.int64())
    names = pa.array([f"row-{i}" for i in range(first_id, first_id + rows)])
    return pa.RecordBatch.from_arrays([ids, amounts, names], schema=SCHEMA)


@pytest.mark.parametrize("until_eos", [False, True], ids=["n-batches", "until-eos"])
def test_go_get_tails_what_python_publishes(flightclient, serve, name, until_eos):
    server = serve()
    channel = quiver.Channel.create(name, "8MiB", schema=SCHEMA)
    publisher = channel.publisher()
    batches = [ledger_batch(1000 * b, 50 + 10 * b) for b in range(5)]
    expected = {"batches": 5, "rows": sum(b.num_rows for b in batches),
                "checksum": sum(pc.sum(b["amount"]).as_py() for b in batches)}

    go = subprocess.Popen([flightclient, "-addr", server.location, "-timeout", "60s", "get",
                           "-channel", name, "-batches", "0" if until_eos else "5"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # The DoGet is a live tail: it sees only what is published after it attached.
        wait_for(lambda: live_subscribers(channel) == 1, "the DoGet to attach", proc=go)
        for batch in batches:
            publisher.publish(batch)
        if until_eos:
            del publisher  # the publisher goes away: the stream ends after the last batch
        out, err = go.communicate(timeout=60)
    finally:
        if go.poll() is None:
            go.kill()
            go.communicate()
    assert go.returncode == 0, err
    assert json.loads(out) == expected
    # The cancelled (or ended) DoGet gives its subscriber slot back.
    wait_for(lambda: live_subscribers(channel) == 0, "the server's subscriber to detach", 10)
    publisher = channel = None
    wait_segments_gone(name)


def test_go_put_reaches_a_python_subscriber(flightclient, serve, name):
    server = serve()
    channel = quiver.Channel.create(name, "8MiB", schema=SCHEMA)
    subscriber = channel.subscriber()
    run = run_client(flightclient, server.location, "put", "-channel", name, "-batches", "4",
                     "-rows", "100")
    assert run.returncode == 0, run.stderr
    sent = json.loads(run.stdout)
    ids = range(400)
    assert sent == {"batches": 4, "rows": 400,
                    "checksum": sum((i * 37) % 1001 - 500 for i in ids)}

    received = {"batches": 0, "rows": 0, "checksum": 0}
    got_ids = []
    for _ in range(4):
        batch = subscriber.receive(timeout=10).to_arrow()
        received["batches"] += 1
        received["rows"] += batch.num_rows
        received["checksum"] += pc.sum(batch["amount"]).as_py()
        got_ids += batch["id"].to_pylist()
        assert batch.schema.names == ["id", "amount", "name"]
        assert batch["name"][0].as_py() == f"row-{batch['id'][0].as_py()}"
    assert received == sent
    assert got_ids == list(ids)
    with pytest.raises((quiver.Timeout, quiver.PeerGone)):  # nothing more than was put
        subscriber.receive(timeout=0.3)
    batch = subscriber = channel = None  # a batch holds its sample, hence the channel
    wait_segments_gone(name)


def test_go_put_with_a_mismatched_schema_is_refused(flightclient, serve, name):
    server = serve()
    channel = quiver.Channel.create(name, "1MiB", schema=pa.schema([("amount", pa.float64())]))
    run = run_client(flightclient, server.location, "put", "-channel", name, "-batches", "2",
                     "-rows", "10")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "invalid argument" in run.stderr, run.stderr
    assert channel.stats()["published"] == 0
    channel = None
    wait_segments_gone(name)


def test_go_list_shows_the_channel(flightclient, serve, name):
    server = serve()
    channel = quiver.Channel.create(name, "1MiB", schema=SCHEMA)
    publisher = channel.publisher()
    publisher.publish(ledger_batch(0, 10))
    publisher.publish(ledger_batch(10, 10))

    run = run_client(flightclient, server.location, "list", "-json")
    assert run.returncode == 0, run.stderr
    flights = {f["name"]: f for f in map(json.loads, run.stdout.splitlines())}
    assert name in flights, run.stdout
    assert flights[name]["schema"] == ["id: int64", "amount: int64", "name: utf8"]
    assert flights[name]["counters"]["published"] == 2

    text = run_client(flightclient, server.location, "list")
    assert text.returncode == 0, text.stderr
    assert re.search(rf"^{re.escape(name)}\n  schema: +id: int64, amount: int64, name: utf8$",
                     text.stdout, re.MULTILINE), text.stdout
    publisher = channel = None
    wait_segments_gone(name)


def test_go_client_needs_the_right_token(flightclient, serve, name, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    server = serve("--token-file", str(token_file), listen="grpc://127.0.0.1:0")
    channel = quiver.Channel.create(name, "1MiB", schema=SCHEMA)

    for token in ([], ["-token", "wrong"]):
        run = run_client(flightclient, server.location, *token, "list")
        assert run.returncode == 1, run.stdout + run.stderr
        assert "authentication failed" in run.stderr, run.stderr
        run = run_client(flightclient, server.location, *token, "put", "-channel", name)
        assert run.returncode == 1 and "authentication failed" in run.stderr, run.stderr

    run = run_client(flightclient, server.location, "-token", "s3cret-token", "list", "-json")
    assert run.returncode == 0, run.stderr
    assert name in [json.loads(line)["name"] for line in run.stdout.splitlines()]
    assert channel.stats()["published"] == 0
    channel = None
    wait_segments_gone(name)


def test_go_client_reads_the_token_quiver_serve_made(flightclient, serve, name):
    """A TCP listener without a token gets one in a 0600 file; -token-file is all the Go
    client needs (the one documented extra argument)."""
    server = serve(listen="grpc://127.0.0.1:0")
    assert server.token_file and os.stat(server.token_file).st_mode & 0o777 == 0o600
    channel = quiver.Channel.create(name, "1MiB", schema=SCHEMA)
    run = run_client(flightclient, server.location, "list")
    assert run.returncode == 1 and "authentication failed" in run.stderr, run.stderr
    run = run_client(flightclient, server.location, "-token-file", server.token_file,
                     "list", "-json")
    assert run.returncode == 0, run.stderr
    assert name in [json.loads(line)["name"] for line in run.stdout.splitlines()]
    channel = None
    wait_segments_gone(name)


def test_go_client_errors_are_clear(flightclient, serve, name):
    server = serve()
    run = run_client(flightclient, server.location, "get", "-channel", name, "-batches", "1")
    assert run.returncode == 1 and "not found" in run.stderr, run.stderr
    assert name in run.stderr

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = run_client(flightclient, f"127.0.0.1:{port}", "list")
    assert run.returncode == 1 and "cannot reach the server" in run.stderr, run.stderr

    run = run_client(flightclient, server.location, "get")
    assert run.returncode == 2 and "-channel" in run.stderr, run.stderr
    assert not segments(name)


# ---- call: compute services -------------------------------------------------------------
# The worker of test_flight_compute.py serves `name`: {"batches": B, "rows": R} yields B
# batches of {id, amount}, ids 0.., amount = id % 7; {"fail": TEXT} raises ValueError(TEXT).
from test_flight_compute import worker  # noqa: E402,F401  (a fixture)


def test_go_call_runs_a_python_service(flightclient, serve, worker, name):  # noqa: F811
    worker()
    server = serve()
    run = run_client(flightclient, server.location, "call", "-service", name,
                     "-request", '{"batches": 3, "rows": 1000}')
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"batches": 3, "rows": 3000,
                                      "checksum": sum(i % 7 for i in range(3000))}

    # Batches of 9.6 MB, over grpc-go's default 4 MiB limit for a received message.
    rows = 600_000
    run = run_client(flightclient, server.location, "call", "-service", name,
                     "-request", json.dumps({"batches": 2, "rows": rows}), "-sum-column", "id")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"batches": 2, "rows": 2 * rows,
                                      "checksum": (2 * rows) * (2 * rows - 1) // 2}

    # No -request: {}, the handler's defaults (one batch of 100 rows); no checksum.
    run = run_client(flightclient, server.location, "call", "-service", name,
                     "-sum-column", "")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"batches": 1, "rows": 100, "checksum": 0}

    # list shows the service beside the channels.
    run = run_client(flightclient, server.location, "list", "-json")
    assert run.returncode == 0, run.stderr
    services = [f for f in map(json.loads, run.stdout.splitlines()) if f.get("service")]
    assert {"name": name, "service": True, "schema": ["id: int64", "amount: int64"],
            "description": "ledger rows"} in services, run.stdout
    run = run_client(flightclient, server.location, "list")
    assert re.search(rf"^{re.escape(name)} \(compute service\)\n  schema: +id: int64, amount: "
                     rf"int64\n  about: +ledger rows$", run.stdout, re.MULTILINE), run.stdout


def test_go_call_errors_are_clear(flightclient, serve, worker, name):  # noqa: F811
    worker()
    server = serve()
    run = run_client(flightclient, server.location, "call", "-service", "nobody-serves-this")
    assert run.returncode == 1 and "not found" in run.stderr, run.stderr
    assert "nobody-serves-this" in run.stderr

    run = run_client(flightclient, server.location, "call", "-service", name,
                     "-request", '{"fail": "plan 9 does not exist"}')
    assert run.returncode == 1, run.stdout + run.stderr
    assert "invalid argument" in run.stderr and "plan 9 does not exist" in run.stderr, run.stderr
    assert run.stdout == ""

    run = run_client(flightclient, server.location, "call", "-service", name,
                     "-sum-column", "nope")
    assert run.returncode == 1 and 'no int64 column "nope"' in run.stderr, run.stderr

    for args in (["call"], ["call", "-service", name, "-request", '{"batches": ']):
        run = run_client(flightclient, server.location, *args)
        assert run.returncode == 2, run.stdout + run.stderr
    # The service goes on serving.
    run = run_client(flightclient, server.location, "call", "-service", name)
    assert run.returncode == 0 and json.loads(run.stdout)["rows"] == 100, run.stderr
