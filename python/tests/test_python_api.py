"""The Python API's habits: rendezvous, lifetimes, processes (fork, spawn, pickling), strict
schemas and payload kinds, and the numpy / DLPack / Arrow / polars protocols."""

import asyncio
import multiprocessing
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pyarrow as pa
import pytest

import quiver

SCHEMA = pa.schema([pa.field("id", pa.int64(), False), pa.field("qty", pa.float64())])  # type: ignore[arg-type]


def batch(start: int, rows: int = 3) -> pa.RecordBatch:
    return pa.record_batch([pa.array(range(start, start + rows), pa.int64()),
                            pa.array([1.5] * rows)], schema=SCHEMA)


def run_python(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# --- rendezvous -----------------------------------------------------------------------------

def test_open_waits_for_a_channel_another_process_creates(name):
    creator = run_python("""
        import sys, time, quiver
        time.sleep(0.3)
        channel = quiver.Channel.create(sys.argv[1], "1MiB")
        print("created", flush=True)
        sys.stdin.read() if False else time.sleep(1.0)
    """, name)
    try:
        with pytest.raises(quiver.NotFoundError):
            quiver.Channel.open(name)  # no waiting: not there yet
        with quiver.Channel.open(name, wait=10) as channel:
            assert channel.name == name
    finally:
        creator.wait(timeout=10)


def test_open_that_waits_in_vain_is_a_timeout_naming_the_channel(name):
    start = time.monotonic()
    with pytest.raises(quiver.TimeoutError, match=f"channel '{name}' was not created within"):
        quiver.Channel.open(name, wait=0.2)
    assert time.monotonic() - start >= 0.2
    with pytest.raises(quiver.InvalidArgumentError, match="wait is seconds"):
        quiver.Channel.open(name, wait=-1)


def test_open_or_create_from_two_processes_gives_both_one_channel(name):
    code = """
        import sys, quiver
        channel = quiver.Channel.open_or_create(sys.argv[1], "1MiB")
        print(channel.stats()["capacity"], flush=True)
        sys.stdin.read()
    """
    peers = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), name],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    try:
        mine = quiver.Channel.open_or_create(name, "2MiB")  # whoever came first created it
        for peer in peers:  # each asked for another capacity: all got the same channel
            assert peer.stdout.readline().strip() == str(mine.capacity)
        with pytest.raises(quiver.SchemaMismatchError, match="exists already and carries no schema"):
            quiver.Channel.open_or_create(name, schema=SCHEMA)
        mine.close()
    finally:
        for peer in peers:
            peer.stdin.close()
            peer.wait(timeout=10)


def test_open_or_create_of_a_typed_channel_checks_the_schema(name):
    with quiver.Channel.open_or_create(name, "1MiB", schema=SCHEMA) as first, \
            quiver.Channel.open_or_create(name, schema=SCHEMA) as second:
        assert second.schema.equals(first.schema)
        other = pa.schema([("id", pa.int64())])
        with pytest.raises(quiver.SchemaMismatchError, match="another schema"):
            quiver.Channel.open_or_create(name, schema=other)


def test_wait_for_subscribers_returns_when_they_attached(name):
    channel = quiver.Channel.create(name, "1MiB")
    with channel.publisher() as pub:
        subscribers = []

        def join() -> None:
            for _ in range(2):
                time.sleep(0.05)
                subscribers.append(channel.subscriber())

        joiner = threading.Thread(target=join)
        joiner.start()
        pub.wait_for_subscribers(2, timeout=10)
        joiner.join()
        assert pub.subscriber_count >= 2
        with pytest.raises(quiver.TimeoutError, match="did not get 3 subscribers within"):
            pub.wait_for_subscribers(3, timeout=0.1)
        for sub in subscribers:
            sub.close()


def test_the_asyncio_forms_wait_without_blocking_the_loop(name):
    async def main() -> list:
        ticks = []

        async def tick() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())

        async def create_later() -> quiver.Channel:
            await asyncio.sleep(0.1)
            return quiver.Channel.create(name, "1MiB")

        creating = asyncio.create_task(create_later())
        channel = await quiver.Channel.open_async(name, timeout=10)
        created = await creating
        pub = created.publisher()
        waiting = asyncio.create_task(pub.wait_for_subscribers_async(1, timeout=10))
        await asyncio.sleep(0.05)
        sub = channel.subscriber()
        await waiting
        with pytest.raises(quiver.TimeoutError):
            await quiver.Channel.open_async(name + "-none", timeout=0.05)
        ticker.cancel()
        for closeable in (sub, pub, channel, created):
            closeable.close()
        return ticks

    ticks = asyncio.run(main())
    assert len(ticks) >= 5  # the loop ran while both waited


@pytest.mark.parametrize("call", ["open", "wait_for_subscribers"])
def test_ctrl_c_interrupts_a_rendezvous(name, call):
    code = {
        "open": "quiver.Channel.open(sys.argv[1], wait=True)",
        "wait_for_subscribers": "quiver.Channel.create(sys.argv[1], '1MiB').publisher()"
                                ".wait_for_subscribers(1)",
    }[call]
    peer = run_python(f"""
        import sys, quiver
        print("waiting", flush=True)
        try:
            {code}
        except KeyboardInterrupt:
            print("interrupted", flush=True)
    """, name)
    assert peer.stdout.readline().strip() == "waiting"
    time.sleep(0.3)
    sent = time.monotonic()
    peer.send_signal(signal.SIGINT)
    out, err = peer.communicate(timeout=10)
    assert "interrupted" in out, err
    assert time.monotonic() - sent < 2.0


# --- lifetimes ------------------------------------------------------------------------------

def test_closed_objects_raise_a_clear_error(name):
    channel = quiver.Channel.create(name, "1MiB", schema=SCHEMA)
    with channel.publisher() as pub, channel.subscriber() as sub:
        pub.publish(batch(0))
        with sub.receive(timeout=5) as sample:
            view = sample.to_arrow()
        assert sample.released
        with pytest.raises(quiver.InvalidArgumentError, match="this sample was released"):
            sample.to_arrow()
        assert view.column("id").to_pylist() == [0, 1, 2]  # views outlive the release
        assert repr(sample) == "<quiver.Sample released>"
    assert pub.closed and sub.closed
    with pytest.raises(quiver.InvalidArgumentError, match="publisher of channel .* is closed"):
        pub.publish(batch(3))
    with pytest.raises(quiver.InvalidArgumentError, match="subscriber of channel .* is closed"):
        sub.receive(timeout=0)
    channel.close()
    channel.close()  # idempotent
    assert channel.closed and "closed" in repr(channel)
    with pytest.raises(quiver.InvalidArgumentError, match=f"channel '{name}' is closed"):
        channel.subscriber()


def test_closing_the_publisher_ends_the_subscribers_stream(name):
    channel = quiver.Channel.create(name, "1MiB", schema=SCHEMA)
    sub = channel.subscriber()
    with channel.publisher() as pub:
        pub.publish(batch(0))
    assert [s.to_arrow().num_rows for s in sub] == [3]  # then PeerGone ends the iteration
    sub.close()


def test_a_closed_subscriber_gives_its_slot_back(name):
    channel = quiver.Channel.create(name, "1MiB", max_subscribers=1)
    first = channel.subscriber()
    with pytest.raises(quiver.BusyError):
        channel.subscriber()
    first.close()
    channel.subscriber().close()


# --- processes ------------------------------------------------------------------------------

def _fork_child(channel, publisher, subscriber, results) -> None:
    """Runs in a child made by fork: what it inherited, and what it may do."""
    got: dict = {}
    try:
        publisher.publish(batch(100))
    except quiver.InvalidArgumentError as e:
        got["publisher"] = str(e)
    try:
        subscriber.receive(timeout=0)
    except quiver.InvalidArgumentError as e:
        got["subscriber"] = str(e)
    with channel.subscriber() as own:  # the channel itself was attached again
        got["own_subscriber"] = own.closed is False
    results.put(got)


def test_after_fork_the_child_reattaches_the_channel_and_leaves_the_parents_alone(name):
    ctx = multiprocessing.get_context("fork")
    channel = quiver.Channel.create(name, "1MiB", schema=SCHEMA)
    pub = channel.publisher()
    sub = channel.subscriber()
    pub.publish(batch(0))
    held = sub.receive(timeout=5)
    results = ctx.Queue()
    child = ctx.Process(target=_fork_child, args=(channel, pub, sub, results))
    child.start()
    got = results.get(timeout=30)
    child.join(timeout=30)
    assert child.exitcode == 0
    assert "was made before this process was forked" in got["publisher"]
    assert "subscriber" in got and "forked" in got["subscriber"]
    assert got["own_subscriber"] is True
    # The parent's side is untouched: its publisher lives, its sample is still held.
    pub.publish(batch(3))
    assert sub.receive(timeout=5).to_arrow().column("id").to_pylist() == [3, 4, 5]
    assert held.to_arrow().column("id").to_pylist() == [0, 1, 2]
    assert channel.stats()["subscribers"][0]["held"] >= 1
    for closeable in (held, sub, pub, channel):
        closeable.close()


def _spawn_child(channel, results) -> None:
    with channel.subscriber() as sub:
        results.put("subscribed")
        results.put(sub.receive(timeout=30).to_arrow().column("id").to_pylist())


@pytest.mark.parametrize("memfd", [False, True], ids=["named", "memfd"])
def test_a_channel_is_an_argument_of_a_spawned_process(name, memfd):
    ctx = multiprocessing.get_context("spawn")
    channel = quiver.Channel.create(name, "1MiB", schema=SCHEMA, memfd=memfd)
    pub = channel.publisher()
    results = ctx.Queue()
    child = ctx.Process(target=_spawn_child, args=(channel, results))
    child.start()
    assert results.get(timeout=60) == "subscribed"
    pub.wait_for_subscribers(1, timeout=30)
    pub.publish(batch(7))
    assert results.get(timeout=30) == [7, 8, 9]
    child.join(timeout=30)
    assert child.exitcode == 0
    pub.close()
    channel.close()


def test_a_named_channel_pickles_by_name(name):
    channel = quiver.Channel.create(name, "1MiB")
    again = pickle.loads(pickle.dumps(channel))
    assert again.name == name and again.capacity == channel.capacity
    again.close()
    channel.close()
    with pytest.raises(quiver.InvalidArgumentError, match="is closed"):
        pickle.dumps(channel)


# --- what a channel takes -------------------------------------------------------------------

def test_a_misspelt_column_is_refused_naming_the_field_it_meant(name):
    channel = quiver.Channel.create(name, "1MiB", schema=SCHEMA)
    assert channel.evolution == "strict"
    typo = pa.schema([pa.field("id", pa.int64(), False), pa.field("qtty", pa.float64())])  # type: ignore[arg-type]
    pub = channel.publisher()
    with pytest.raises(quiver.SchemaMismatchError,
                       match="adds 'qtty' .* lacks 'qty' .*'qtty' looks like a misspelling "
                             "of 'qty'.*evolution 'add-nullable'"):
        pub.publish(pa.record_batch([pa.array([1]), pa.array([1.5])], schema=typo))
    assert channel.schema_versions == 1
    pub.close()


def test_an_add_nullable_channel_grows_and_still_catches_typos(name):
    channel = quiver.Channel.create(name, "1MiB", schema=SCHEMA, evolution="add-nullable")
    assert channel.evolution == "add-nullable"
    pub = channel.publisher()
    grown = SCHEMA.append(pa.field("note", pa.string()))
    pub.publish(pa.record_batch([pa.array([1]), pa.array([1.5]), pa.array(["x"])],
                                schema=grown))
    assert channel.schema_versions == 2
    typo = pa.schema([pa.field("id", pa.int64(), False), pa.field("QTY", pa.float64()),  # type: ignore[arg-type]
                      pa.field("note", pa.string())])
    with pytest.raises(quiver.SchemaMismatchError, match="'QTY' looks like a misspelling"):
        pub.publish(pa.record_batch([pa.array([1]), pa.array([1.5]), pa.array(["x"])],
                                    schema=typo))
    with pytest.raises(quiver.InvalidArgumentError, match="'strict' or 'add-nullable'"):
        quiver.Channel.create(name + "-x", "1MiB", schema=SCHEMA, evolution="loose")
    pub.close()


def test_a_channel_refuses_payload_kinds_it_was_not_created_for(name):
    arrow_channel = quiver.Channel.create(name, "1MiB", schema=SCHEMA)
    pub = arrow_channel.publisher()
    with pytest.raises(quiver.InvalidArgumentError,
                       match="publish tensors on a channel created without a schema"):
        with pub.loan_ndarray((4,), np.float32):
            pass
    with pytest.raises(quiver.InvalidArgumentError, match="publish raw bytes on a channel"):
        pub.publish_bytes(b"abc")
    with pytest.raises(quiver.InvalidArgumentError, match="publish image frames on a channel"):
        pub.publish_image(np.zeros((2, 2, 4), np.uint8), "RGBA8")
    pub.close()
    plain = quiver.Channel.create(name + "-raw", "1MiB")
    with plain.publisher() as raw, pytest.raises(quiver.InvalidArgumentError,
                                                 match="has no Arrow schema"):
        raw.publish(batch(0))
    plain.close()


# --- protocols ------------------------------------------------------------------------------

def test_tensor_samples_speak_numpy_and_dlpack(name):
    channel = quiver.Channel.create(name, "1MiB")
    with channel.publisher() as pub, channel.subscriber() as sub:
        with pub.loan_ndarray((2, 3), np.float32) as array:
            array[:] = np.arange(6, dtype=np.float32).reshape(2, 3)
        sample = sub.receive(timeout=5)
        assert sample.shape == (2, 3) and sample.dtype == np.float32
        view = np.asarray(sample)
        assert view.shape == (2, 3) and not view.flags.writeable
        assert view.ctypes.data == sample.address + (sample.size - 24)  # in place
        copied = np.array(sample, copy=True)
        assert copied.flags.writeable and copied.sum() == 15
        assert np.asarray(sample, dtype=np.float64).dtype == np.float64
        dl = np.from_dlpack(sample)
        assert dl.ctypes.data == view.ctypes.data and not dl.flags.writeable
        assert sample.__dlpack_device__() == (1, 0)
        sample.release()


def test_arrow_samples_speak_the_pycapsule_interface_and_polars(name):
    pl = pytest.importorskip("polars")
    channel = quiver.Channel.create(name, "1MiB", schema=SCHEMA)
    with channel.publisher() as pub, channel.subscriber() as sub:
        pub.publish(batch(0))
        sample = sub.receive(timeout=5)
        frame = pl.DataFrame(sample)
        assert frame.shape == (3, 2) and frame["id"].to_list() == [0, 1, 2]
        assert sample.to_polars().equals(frame)
        assert pa.record_batch(sample).equals(batch(0))
        assert pa.table(sample).num_rows == 3
        with pytest.raises(quiver.InvalidArgumentError, match="columns, not a shape"):
            sample.shape
        sample.release()


def test_a_subscriber_reads_as_a_record_batch_reader(name):
    channel = quiver.Channel.create(name, "1MiB", schema=SCHEMA)
    sub = channel.subscriber()
    with channel.publisher() as pub:
        for start in (0, 3, 6):
            pub.publish(batch(start))
    reader = sub.reader()
    assert isinstance(reader, pa.RecordBatchReader) and reader.schema.equals(SCHEMA)
    table = reader.read_all()  # to the publisher's end
    assert table.column("id").to_pylist() == list(range(9))
    sub.close()
    untyped = quiver.Channel.create(name + "-raw", "1MiB")
    with untyped.subscriber() as raw, pytest.raises(quiver.InvalidArgumentError,
                                                    match="cannot be read as a RecordBatchReader"):
        raw.reader()
    untyped.close()


# --- the README ---------------------------------------------------------------------------

def test_the_readme_producer_and_consumer_run_as_written_in_either_order(name, tmp_path):
    import pathlib
    import re

    readme = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = {m.group(1): m.group(0)[len("```python\n"):-len("```")]
              for m in re.finditer(r"```python\n# (producer|consumer)\.py\n.*?```", readme,
                                   re.S)}
    assert set(blocks) == {"producer", "consumer"}, "the README has one of each"
    for program, code in blocks.items():
        (tmp_path / f"{program}.py").write_text(code.replace('"ledger"', repr(name)))
    for first, second in (("consumer", "producer"), ("producer", "consumer")):
        started = subprocess.Popen([sys.executable, str(tmp_path / f"{first}.py")],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.3)
        then = subprocess.Popen([sys.executable, str(tmp_path / f"{second}.py")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        outputs = {}
        for program, process in ((first, started), (second, then)):
            out, err = process.communicate(timeout=60)
            assert process.returncode == 0, f"{program}: {err}"
            outputs[program] = out
        assert outputs["consumer"].split() == ["1.5", "11.5", "21.5"]
