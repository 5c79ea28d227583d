"""W5's peer processes (bench/w5_flight.py drives them; JSON lines on stdin and stdout):

    w5_flight_server.py flight  --host H --rows R --distinct K --seed S
        pyarrow.flight's own server (a ``FlightServerBase``) on H, free port; prints
        {"port": P}. DoGet ticket "N": the stream's batch i is the generated batch i % K,
        served from memory as ``RecordBatchStream(Table.from_batches(...))`` (the stream is
        written by Arrow C++, no Python per batch). Stops when its stdin closes.
    w5_flight_server.py publish --rows R --distinct K --seed S --capacity BYTES
        The channel producer for ``quiver serve``: for each command {"channel", "batches"} it
        creates the channel (Ledger schema, block policy), prints {"ready": NAME}, waits for
        a live subscriber (the server's DoGet), publishes the N batches (i % K again), drops
        publisher and channel (the stream ends: EOS) and prints {"rows", "sum", "t0_ns",
        "done_ns"}. Exits at the end of its stdin.
    w5_flight_server.py get
        The pyarrow.flight client: for each command {"location", "ticket"[, "token"]} (the
        bearer token, sent as an authorization header) it DoGets to the
        end of the stream and prints what it got: {"batches", "rows", "bytes",
        "first_bytes", "sum", "start_ns", "first_ns", "end_ns"} (bytes: the Arrow body
        bytes, the sizes of the received batches' buffers; sum: sum(amount), batch by batch
        in stream order). One client per location, kept across commands.

Every time is time.monotonic_ns(): CLOCK_MONOTONIC, the same in every process and network
namespace. A failed command prints {"error": "..."}.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
import traceback

import pyarrow as pa
import pyarrow.compute as pc

_BENCH = str(pathlib.Path(__file__).resolve().parent)
if _BENCH not in sys.path:
    sys.path.insert(0, _BENCH)

SUBSCRIBER_TIMEOUT_S = 30.0


def ledger_batches(rows: int, distinct: int, seed: int) -> list:
    """The K distinct W1 Ledger batches a stream cycles through (seeds seed .. seed+K-1)."""
    from w1_ledger import _ledger_module  # the W1 generator (examples/ledger/ledger.py)
    ledger = _ledger_module()
    return [ledger.batch(rows, seed + i) for i in range(distinct)]


def body_bytes(batch: pa.RecordBatch) -> int:
    return sum(b.size for column in batch.columns for b in column.buffers() if b is not None)


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def commands():
    for line in sys.stdin:
        line = line.strip()
        if line:
            yield json.loads(line)


# --- pyarrow.flight's server ----------------------------------------------------------------

def serve_flight(args) -> int:
    import pyarrow.flight as flight

    batches = ledger_batches(args.rows, args.distinct, args.seed)

    class LedgerServer(flight.FlightServerBase):
        def do_get(self, context, ticket):
            n = int(ticket.ticket.decode())
            table = pa.Table.from_batches([batches[i % len(batches)] for i in range(n)])
            return flight.RecordBatchStream(table)

    server = LedgerServer(f"grpc://{args.host}:0")
    emit({"port": server.port})
    sys.stdin.read()  # until the driver closes our stdin
    server.shutdown()
    return 0


# --- the compute service --------------------------------------------------------------------

def serve_service(args) -> int:
    """A quiver compute service (quiver.control.Service) whose handler yields the stream's
    batches, request {"batches": N}: the worker of a compute ticket."""
    import quiver.control

    batches = ledger_batches(args.rows, args.distinct, args.seed)

    def ledger(request):
        for i in range(int(request["batches"])):
            yield batches[i % len(batches)]

    service = quiver.control.Service(args.name, ledger, batches[0].schema,
                                     description="W5 Ledger batches")
    service.start()
    emit({"service": args.name})
    sys.stdin.read()  # until the driver closes our stdin
    service.close()
    return 0


# --- the channel producer -------------------------------------------------------------------

def publish(args) -> int:
    import quiver

    batches = ledger_batches(args.rows, args.distinct, args.seed)
    sums = [pc.sum(b.column("amount")).as_py() for b in batches]
    for command in commands():
        try:
            emit(_publish_one(quiver, command["channel"], int(command["batches"]),
                              args.capacity, batches, sums))
        except Exception as e:  # noqa: BLE001 - reported to the driver
            emit({"error": f"{type(e).__name__}: {e}"})
    return 0


def _publish_one(quiver, name: str, n: int, capacity: int, batches: list, sums: list) -> dict:
    """One stream; returning (or raising) drops the publisher and the channel: EOS."""
    channel = quiver.Channel.create(name, capacity, schema=batches[0].schema, overflow="block")
    publisher = channel.publisher()
    emit({"ready": name})
    publisher.wait_for_subscribers(1, timeout=SUBSCRIBER_TIMEOUT_S)  # the server's DoGet
    total, rows = 0.0, 0
    t0 = time.monotonic_ns()
    for i in range(n):
        batch = batches[i % len(batches)]
        publisher.publish(batch)
        total += sums[i % len(batches)]
        rows += batch.num_rows
    done = time.monotonic_ns()
    return {"rows": rows, "sum": total, "t0_ns": t0, "done_ns": done}


# --- the client -----------------------------------------------------------------------------

def get(_args) -> int:
    import pyarrow.flight as flight

    clients: dict = {}
    for command in commands():
        try:
            if "fanout" in command:  # {"fanout": [{"location", "ticket", "token"}, ...]}
                emit(_fan_out(flight, clients, command["fanout"]))
            else:
                emit(_get_one(flight, _client(flight, clients, command), command["ticket"]))
        except Exception as e:  # noqa: BLE001 - reported to the driver
            emit({"error": f"{type(e).__name__}: {e}",
                  "trace": traceback.format_exc()[-1500:]})
    for client in clients.values():
        client.close()
    return 0


def _client(flight, clients: dict, command: dict):
    """One long-lived client per location; quiver serve over TCP wants its bearer token."""
    from quiver.flight import BearerToken

    location = command["location"]
    client = clients.get(location)
    if client is None:
        middleware = [BearerToken(command["token"])] if command.get("token") else []
        client = clients[location] = flight.connect(location, middleware=middleware)
        client.wait_for_available(timeout=10)
    return client


def _fan_out(flight, clients: dict, shards: list) -> dict:
    """The same DoGet on every shard at once, one thread each (pyarrow reads without the
    GIL); the totals, timed from the first call to the last stream's end."""
    import threading

    results: list = [None] * len(shards)
    errors: list = []

    def one(i: int, shard: dict) -> None:
        try:
            results[i] = _get_one(flight, _client(flight, clients, shard), shard["ticket"])
        except Exception as e:  # noqa: BLE001 - reported to the driver
            errors.append(f"shard {i}: {type(e).__name__}: {e}")

    for shard in shards:  # connect first, outside the timed part
        _client(flight, clients, shard)
    threads = [threading.Thread(target=one, args=(i, s)) for i, s in enumerate(shards)]
    start_ns = time.monotonic_ns()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError("; ".join(errors))
    total = {k: sum(r[k] for r in results)
             for k in ("batches", "rows", "bytes", "first_bytes", "sum")}
    return {**total, "start_ns": start_ns, "first_ns": min(r["first_ns"] for r in results),
            "end_ns": max(r["end_ns"] for r in results)}


def _get_one(flight, client, ticket: str) -> dict:
    count = rows = nbytes = first_bytes = 0
    total = 0.0
    first_ns = 0
    start_ns = time.monotonic_ns()
    reader = client.do_get(flight.Ticket(ticket.encode()))
    while True:
        try:
            chunk = reader.read_chunk()
        except StopIteration:
            break
        batch = chunk.data
        if count == 0:
            first_ns = time.monotonic_ns()
        size = body_bytes(batch)
        if count == 0:
            first_bytes = size
        count += 1
        rows += batch.num_rows
        nbytes += size
        total += pc.sum(batch.column("amount")).as_py() or 0.0
    end_ns = time.monotonic_ns()
    return {"batches": count, "rows": rows, "bytes": nbytes, "first_bytes": first_bytes,
            "sum": total, "start_ns": start_ns, "first_ns": first_ns, "end_ns": end_ns}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="role", required=True)
    for role in ("flight", "publish", "service"):
        p = sub.add_parser(role)
        p.add_argument("--rows", type=int, required=True)
        p.add_argument("--distinct", type=int, required=True)
        p.add_argument("--seed", type=int, required=True)
        if role == "flight":
            p.add_argument("--host", required=True)
        elif role == "service":
            p.add_argument("--name", required=True)
        else:
            p.add_argument("--capacity", type=int, required=True)
    sub.add_parser("get")
    args = parser.parse_args()
    return {"flight": serve_flight, "publish": publish, "service": serve_service,
            "get": get}[args.role](args)


if __name__ == "__main__":
    sys.exit(main())
