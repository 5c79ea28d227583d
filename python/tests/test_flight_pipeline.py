"""`quiver serve` and `quiver run` compose: the gateway lists a running pipeline's channels
(memfds, reached through the supervisor's socket of the same user), a Flight client tails
one of them, and a DoPut feeds one that a node subscribes to. Checked with pyarrow.flight and
with the Go client of examples/go.

The pipeline: a Python node subscribes to `in` and publishes each batch to `out` with its
`amount` column doubled, so what a client reads from `out` proves the node got what the
client put into `in`."""

import json
import subprocess
import sys
import textwrap
import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as fl
import pytest

import quiver
from test_flight_go import SCHEMA, flightclient, ledger_batch, run_client, serve, wait_for  # noqa: F401

NODE = textwrap.dedent('''
    import sys
    import pyarrow.compute as pc
    import quiver
    # Under quiver run, Channel.open finds the pipeline's own channels.
    source = quiver.Channel.open(sys.argv[1]).subscriber()
    sink = quiver.Channel.open(sys.argv[2]).publisher()
    print("ready", flush=True)
    for sample in source:
        batch = sample.to_arrow()
        doubled = batch.set_column(1, "amount", pc.multiply(batch["amount"], 2))
        sink.publish(doubled)
''')


def write_ledger_schema(directory):
    """SCHEMA as the pipeline files' schema file, ledger.schema.json in `directory`."""
    (directory / "ledger.schema.json").write_text(json.dumps(
        [{"name": "id", "type": "int64"}, {"name": "amount", "type": "int64"},
         {"name": "name", "type": "utf8"}]))


class Pipeline:
    """`quiver run` of a two-channel pipeline with the doubling node, until stop()."""

    def __init__(self, build_dir, tmp_path, name):
        self.inp, self.out = f"{name}-in", f"{name}-out"
        (tmp_path / "double.py").write_text(NODE)
        write_ledger_schema(tmp_path)
        (tmp_path / "pipeline.toml").write_text(textwrap.dedent(f'''
            [[channel]]
            name = "{self.inp}"
            capacity = "8MiB"
            schema = "ledger.schema.json"
            external = true   # fed by a DoPut through quiver serve

            [[channel]]
            name = "{self.out}"
            capacity = "8MiB"
            schema = "ledger.schema.json"

            [[node]]
            name = "double"
            command = "{sys.executable}"
            args = ["double.py", "{self.inp}", "{self.out}"]
            subscribes = ["{self.inp}"]
            publishes = ["{self.out}"]
        '''))
        self.proc = subprocess.Popen([str(build_dir / "quiver"), "run", "pipeline.toml"],
                                     cwd=tmp_path, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline()
        if "ready" not in line:
            self.stop()
            pytest.fail(f"the pipeline did not start: {line}{self.output}")
        # The node subscribes before it says ready: a DoPut from now on reaches it.
        wait_for(lambda: self.live_subscribers(self.inp) == 1, "the node's subscriber")

    @staticmethod
    def live_subscribers(channel):
        for entry in quiver.list_channels():
            if entry["name"] == channel and entry["state"] == "live":
                return sum(1 for s in entry["subscribers"] if s["alive"])
        return -1

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(2)  # Ctrl-C
        self.output = self.proc.communicate(timeout=30)[0]
        return self.proc.returncode


@pytest.fixture
def pipeline(build_dir, tmp_path, name):
    p = Pipeline(build_dir, tmp_path, name)
    yield p
    code = p.stop()
    # 0: the node ended when the DoPut's publisher closed its input, and with it the
    # pipeline; 130: stopped by the Ctrl-C above. Never 1: no node failed.
    assert code in (0, 130), p.output
    # Nothing of the pipeline is left: its channels were memfds, gone with their holders.
    wait_for(lambda: all(e["name"] not in (p.inp, p.out) for e in quiver.list_channels()),
             "the pipeline's channels to go", timeout=10)


def doubled_checksum(batches):
    return sum(2 * pc.sum(b["amount"]).as_py() for b in batches)


def test_pyarrow_flight_tails_a_pipeline_channel_and_feeds_another(pipeline, serve):
    server = serve()
    client = server.client()
    listed = {info.descriptor.path[0].decode(): info for info in client.list_flights()
              if info.descriptor.descriptor_type == fl.DescriptorType.PATH}
    assert pipeline.inp in listed and pipeline.out in listed, list(listed)
    assert listed[pipeline.out].schema == SCHEMA
    info = client.get_flight_info(fl.FlightDescriptor.for_path(pipeline.inp))
    assert info.schema == SCHEMA
    assert info.endpoints[0].ticket.ticket == pipeline.inp.encode()

    reader = client.do_get(fl.Ticket(pipeline.out.encode()))
    wait_for(lambda: pipeline.live_subscribers(pipeline.out) == 1, "the DoGet to attach")

    batches = [ledger_batch(100 * b, 100) for b in range(4)]
    writer, _ = client.do_put(fl.FlightDescriptor.for_path(pipeline.inp), SCHEMA)
    for batch in batches:
        writer.write_batch(batch)
    writer.close()

    received = [reader.read_chunk().data for _ in batches]
    assert [b.num_rows for b in received] == [100] * 4
    assert [b["id"].to_pylist() for b in received] == [b["id"].to_pylist() for b in batches]
    assert sum(pc.sum(b["amount"]).as_py() for b in received) == doubled_checksum(batches)
    reader.cancel()
    client.close()


def test_go_client_tails_a_pipeline_channel_and_feeds_another(pipeline, serve, flightclient):
    server = serve()
    listing = run_client(flightclient, server.location, "list")
    assert listing.returncode == 0, listing.stderr
    assert pipeline.inp in listing.stdout and pipeline.out in listing.stdout, listing.stdout

    get = subprocess.Popen([flightclient, "-addr", server.location, "-timeout", "60s", "get",
                            "-channel", pipeline.out, "-batches", "4"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: pipeline.live_subscribers(pipeline.out) == 1, "the Go DoGet to attach",
                 proc=get)
        put = run_client(flightclient, server.location, "put", "-channel", pipeline.inp,
                         "-batches", "4", "-rows", "100")
        assert put.returncode == 0, put.stderr
        sent = json.loads(put.stdout)
        out, err = get.communicate(timeout=60)
    finally:
        if get.poll() is None:
            get.kill()
            get.communicate()
    assert get.returncode == 0, err
    assert json.loads(out) == {"batches": 4, "rows": 400, "checksum": 2 * sent["checksum"]}


HISTORY_NODE = textwrap.dedent('''
    import signal, sys
    import pyarrow as pa
    import quiver
    pub = quiver.Channel.open(sys.argv[1]).publisher()
    for b in range(5):
        ids = pa.array(range(10 * b, 10 * b + 10), pa.int64())
        pub.publish(pa.record_batch([ids, ids, pa.array(["x"] * 10)],
                                    names=["id", "amount", "name"]))
    print("published", flush=True)
    signal.pause()   # until the stop's SIGINT
''')


def test_a_pipeline_channels_history_reaches_a_doget_that_comes_later(build_dir, tmp_path,
                                                                     name, serve):
    """`history = 3`: quiver run keeps the last 3 batches held, so a DoGet with
    ?from=oldest made after they were published, with no subscriber ever attached, starts
    with them."""
    (tmp_path / "node.py").write_text(HISTORY_NODE)
    write_ledger_schema(tmp_path)
    (tmp_path / "pipeline.toml").write_text(textwrap.dedent(f'''
        [[channel]]
        name = "{name}"
        capacity = "4MiB"
        schema = "ledger.schema.json"
        history = 3

        [[node]]
        name = "feed"
        command = "{sys.executable}"
        args = ["node.py", "{name}"]
        publishes = ["{name}"]
    '''))
    proc = subprocess.Popen([str(build_dir / "quiver"), "run", "pipeline.toml"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "published" in proc.stdout.readline()
        client = serve().client()
        reader = client.do_get(fl.Ticket(f"{name}?from=oldest".encode()))
        got = [reader.read_chunk().data["id"][0].as_py() for _ in range(3)]
        assert got == [20, 30, 40]
        reader.cancel()
    finally:
        proc.send_signal(2)
        out = proc.communicate(timeout=30)[0]
    assert proc.returncode == 130, out
