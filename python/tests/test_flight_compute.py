"""Compute tickets: a Flight client asks `quiver serve` to run a request on a worker that
serves a named service (quiver.control.Service), and reads the worker's result batches.
The worker runs in a process of its own, as it would in a pipeline; each bad case (unknown
service, malformed ticket, the worker's own error, a worker that dies mid-stream, a client
that stops reading) ends with a clear gRPC status and nothing buffered without bound."""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as fl
import pytest

import quiver.control
import quiver.flight
from flight_serve import Serve

SCHEMA = pa.schema([("id", pa.int64()), ("amount", pa.int64())])

WORKER = textwrap.dedent('''
    import os, signal, sys
    import pyarrow as pa
    import pyarrow.compute as pc
    import quiver.control

    SCHEMA = pa.schema([("id", pa.int64()), ("amount", pa.int64())])

    def ledger(request, inputs=None):
        """request: {"batches": B, "rows": R} -> B batches, ids 0.., amount = id % 7;
        {"fail": TEXT} raises; {"die_after": N} dies (SIGKILL) after N batches."""
        if "fail" in request:
            raise ValueError(request["fail"])
        if inputs is not None:  # an exchange: each batch back with amount scaled
            for batch in inputs:
                if batch["id"][0].as_py() == request.get("fail_at", -1):
                    raise ValueError(f"cannot scale batch {request['fail_at']}")
                yield pa.record_batch([batch["id"], pc.multiply(batch["amount"],
                                                                request["scale"])],
                                      schema=SCHEMA)
            return
        rows = request.get("rows", 100)
        for b in range(request.get("batches", 1)):
            if b == request.get("die_after", -1):
                os.kill(os.getpid(), signal.SIGKILL)
            if "progress" in request:  # how many batches it has made so far
                with open(request["progress"], "w") as out:
                    out.write(str(b))
            ids = range(b * rows, (b + 1) * rows)
            yield pa.record_batch([pa.array(ids, pa.int64()),
                                   pa.array([i % 7 for i in ids], pa.int64())], schema=SCHEMA)

    service = quiver.control.Service(sys.argv[1], ledger, SCHEMA, description="ledger rows")
    service.start()
    print("serving", flush=True)
    sys.stdin.read()   # until the test closes our stdin
    service.close()
''')


@pytest.fixture
def worker(tmp_path, name):
    """A worker process serving service `name` until the test ends."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    procs = []

    def start():
        proc = subprocess.Popen([sys.executable, str(script), name], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "serving"
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.stdin.close()
            proc.wait(timeout=10)


@pytest.fixture
def server(build_dir):
    s = Serve(build_dir)
    yield s
    s.stop()


def ticket(service, request=None):
    body = {"service": service}
    if request is not None:
        body["request"] = request
    return fl.Ticket(json.dumps(body).encode())


def test_a_compute_ticket_streams_the_workers_batches(server, worker, name):
    worker()
    client = server.client()
    table = client.do_get(ticket(name, {"batches": 5, "rows": 1000})).read_all()
    assert table.schema == SCHEMA
    assert table.num_rows == 5000
    assert table["id"].to_pylist() == list(range(5000))
    assert pc.sum(table["amount"]).as_py() == sum(i % 7 for i in range(5000))

    # Listed beside the channels: a CMD descriptor, the result schema, the description.
    services = [f for f in client.list_flights()
                if f.descriptor.descriptor_type == fl.DescriptorType.CMD]
    mine = [f for f in services if json.loads(f.descriptor.command)["service"] == name]
    assert len(mine) == 1 and mine[0].schema == SCHEMA
    info = client.get_flight_info(fl.FlightDescriptor.for_command(
        json.dumps({"service": name, "request": {"batches": 2}})))
    assert json.loads(info.endpoints[0].ticket.ticket) == {"service": name,
                                                           "request": {"batches": 2}}
    assert client.do_get(info.endpoints[0].ticket).read_all().num_rows == 200
    assert name in quiver.control.list_services()


def test_do_exchange_sends_batches_in_and_gets_the_services_results_back(server, worker, name):
    worker()
    client = server.client()
    descriptor = fl.FlightDescriptor.for_command(
        json.dumps({"service": name, "request": {"scale": 3}}))
    writer, reader = client.do_exchange(descriptor)
    writer.begin(SCHEMA)
    for b in range(4):
        ids = list(range(b * 10, b * 10 + 10))
        writer.write_batch(pa.record_batch([pa.array(ids, pa.int64()),
                                            pa.array(ids, pa.int64())], schema=SCHEMA))
        back = reader.read_chunk().data  # each answer before the next batch goes in
        assert back["id"].to_pylist() == ids
        assert back["amount"].to_pylist() == [3 * i for i in ids]
    writer.done_writing()
    with pytest.raises(StopIteration):
        reader.read_chunk()
    writer.close()

    # The worker fails on the third batch: the client, waiting for that batch's answer,
    # gets a metadata-only message saying why, and the call's status once it ends its side.
    writer, reader = client.do_exchange(fl.FlightDescriptor.for_command(
        json.dumps({"service": name, "request": {"scale": 2, "fail_at": 20}})))
    writer.begin(SCHEMA)
    for b in range(3):
        ids = list(range(b * 10, b * 10 + 10))
        writer.write_batch(pa.record_batch([pa.array(ids, pa.int64())] * 2, schema=SCHEMA))
        chunk = reader.read_chunk()
        if b < 2:
            assert chunk.data["amount"].to_pylist() == [2 * i for i in ids]
    assert chunk.data is None
    assert "cannot scale batch 20" in json.loads(chunk.app_metadata.to_pybytes())["error"]["message"]
    writer.done_writing()
    with pytest.raises(pa.ArrowInvalid, match="cannot scale batch 20"):
        reader.read_chunk()


def test_the_workers_error_is_the_calls_status(server, worker, name):
    worker()
    client = server.client()
    with pytest.raises(pa.ArrowInvalid, match="plan 9 does not exist") as error:
        client.do_get(ticket(name, {"fail": "plan 9 does not exist"})).read_all()
    assert f"service '{name}' failed" in str(error.value)
    # The service goes on serving.
    assert client.do_get(ticket(name, {"batches": 1})).read_all().num_rows == 100


def test_a_worker_that_dies_mid_stream_ends_it_unavailable_naming_the_service(server, worker,
                                                                                name):
    proc = worker()
    client = server.client()
    reader = client.do_get(ticket(name, {"batches": 10, "die_after": 3}))
    with pytest.raises(fl.FlightUnavailableError, match=name):
        reader.read_all()
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    # Its socket stays behind, listed but unreachable, until `quiver clean` removes it.
    assert not any(json.loads(f.descriptor.command)["service"] == name
                   for f in client.list_flights()
                   if f.descriptor.descriptor_type == fl.DescriptorType.CMD)
    time.sleep(2)  # clean spares sockets younger than 2 s (a service starting up)
    clean = subprocess.run([str(server.quiver), "clean"], capture_output=True, text=True)
    assert clean.returncode == 0, clean.stderr
    assert f"{name}.sock (its service's worker died)" in clean.stdout, clean.stdout
    assert name not in quiver.control.list_services()


def test_bad_tickets_are_clear_errors(server, worker, name):
    worker()
    client = server.client()
    with pytest.raises(KeyError, match="no service 'nobody-serves-this'"):
        client.do_get(ticket("nobody-serves-this")).read_all()
    with pytest.raises(pa.ArrowInvalid, match="not valid JSON"):
        client.do_get(fl.Ticket(b'{"service": ')).read_all()
    with pytest.raises(pa.ArrowInvalid, match="service name"):
        client.do_get(ticket("../etc/passwd")).read_all()
    with pytest.raises(fl.FlightError, match="compute ticket may be"):
        client.do_get(ticket(name, {"pad": "x" * 70000})).read_all()


def test_a_client_that_stops_reading_holds_the_worker_back_not_the_servers_memory(
        server, worker, name, tmp_path):
    worker()
    client = server.client()
    baseline = server.rss_kib()
    progress = tmp_path / "progress"
    # 400 MiB of results (100 batches of 4 MiB) through a 64 MiB channel to a client that
    # reads one batch and then nothing for a while.
    reader = client.do_get(ticket(name, {"batches": 100, "rows": 512 * 1024,
                                         "progress": str(progress)}))
    first = reader.read_chunk().data
    assert first.num_rows == 512 * 1024
    time.sleep(3)
    grown_mib = (server.rss_kib() - baseline) / 1024
    assert grown_mib < 64 + 32, f"the server buffered {grown_mib:.0f} MiB for a stopped reader"
    held_back_at = int(progress.read_text())
    assert held_back_at < 40, f"the worker made {held_back_at} batches for a stopped reader"
    reader.cancel()
    # The cancelled call's handler stops at its next batch instead of making all 100.
    time.sleep(1.5)
    stopped_at = int(progress.read_text())
    assert stopped_at <= held_back_at + 2, f"the handler went on to batch {stopped_at}"
    # The worker is released and serves the next call.
    assert client.do_get(ticket(name, {"batches": 1})).read_all().num_rows == 100


def test_the_readme_compute_example_runs(server, name, monkeypatch, capsys):
    """The README's compute example, run as written against this test's server (for the
    default socket) and service name, and what its comment claims."""
    import pathlib
    import re
    readme = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "Service(" in b]
    assert len(blocks) == 1, "the README has one compute example"
    code = blocks[0]
    assert code.count('"totals"') == 2  # the service's name, and the ticket's
    code = code.replace('"totals"', f'"{name}"')
    client = server.client()  # connect() with no argument means the default socket: this server
    monkeypatch.setattr(quiver.flight, "connect", lambda *a, **k: client)
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out.strip()
    claimed = re.search(r"^print\(.*\)\s+# (.*)$", code, re.M).group(1)
    assert printed == claimed


def test_a_service_that_answers_garbage_is_a_clear_error_not_a_hang(server, name):
    """A process of this user that listens under a service's name but does not speak the
    protocol (answers garbage, or nothing and hangs up)."""
    import socket
    import threading

    def schema(request):
        return None
    probe = quiver.control.Service(name + "-probe", schema, SCHEMA)  # where services live
    directory = os.path.dirname(probe.path)
    probe.close()

    for answer in (b"this is not an envelope\n", b""):
        path = os.path.join(directory, f"{name}.sock")
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(path)
        listener.listen()

        def serve():
            conn, _ = listener.accept()
            conn.recv(65536)
            if answer:
                conn.sendall(answer)
            conn.close()
        thread = threading.Thread(target=serve)
        thread.start()
        try:
            started = time.monotonic()
            with pytest.raises(fl.FlightUnavailableError) as error:
                server.client().do_get(ticket(name)).read_all()
            assert time.monotonic() - started < 15
            assert re.search(f"worker '{name}' is gone with CMD_SERVICE_INFO .* unanswered",
                             str(error.value)), str(error.value)
        finally:
            thread.join(timeout=5)
            listener.close()
            os.unlink(path)
