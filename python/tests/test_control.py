"""The control envelope (protocol 2.0.0): strict parsing in Python, and real requests with
shm handles against the C++ peer (tests/control_peer_main.cc) over stdio, a Unix socket
and loopback TCP."""

import ctypes
import dataclasses
import json
import os
import pathlib
import subprocess
import tempfile
import uuid
import zlib

import pytest

import quiver
from quiver import control
from quiver.control import Client, ControlError, Envelope, ProtocolError, ShmHandle

ID = "0b6f3c52-7f0e-4c8e-9d2a-1f3e5a7b9c0d"


def valid(**overrides):
    doc = {"protocol_v": "2.0.0", "msg_id": ID, "type": "CMD_PROCESS",
           "payload": {"shm_handle": {"segment_id": "frames", "offset": 128, "size": 4096,
                                      "format": "raw"}}}
    doc.update(overrides)
    return doc


def with_handle(**fields):
    doc = valid()
    doc["payload"]["shm_handle"].update(fields)
    return doc


def without(field):
    doc = valid()
    del doc[field]
    return doc


def line(doc):
    return json.dumps(doc)


# --- parsing ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(control.TYPES))
def test_every_type_round_trips(kind):
    payload: dict = {"extra": [1, 2]}
    if kind in ("CMD_PROCESS", "RES_DATA_READY"):
        payload["shm_handle"] = ShmHandle("out", 64, 100, "tensor").to_json()
    if kind == "RES_ERROR_V2":
        payload = {"code": "SHM_CORRUPTION", "message": "bad", "cause": None}
    env = Envelope(type=kind, payload=payload)
    back = control.parse_envelope(control.serialize(env))
    assert back == env
    assert "\n" not in control.serialize(env)


def test_unknown_fields_are_ignored_and_minor_versions_accepted():
    doc = valid(trace={"span": 1}, protocol_v="2.9.1")
    doc["payload"]["priority"] = "high"
    env = control.parse_envelope(line(doc) + "\r\n")
    assert env.payload["priority"] == "high"
    assert env.shm_handle == ShmHandle("frames", 128, 4096, "raw")


HUGE = line(valid(pad="x" * control.MAX_LINE_BYTES))
BAD_LINES = [
    # (name, line, code, echoes the request's msg_id)
    ("empty", "", "INVALID_ENVELOPE", False),
    ("whitespace", " \t ", "INVALID_ENVELOPE", False),
    ("not_json", "hello", "INVALID_ENVELOPE", False),
    ("nan", "NaN", "INVALID_ENVELOPE", False),
    ("two_objects", line(valid()) + line(valid()), "INVALID_ENVELOPE", False),
    ("array", "[1,2]", "INVALID_ENVELOPE", False),
    ("null", "null", "INVALID_ENVELOPE", False),
    ("invalid_utf8", b'{"protocol_v":"\xff"}', "INVALID_ENVELOPE", False),
    ("deep_nesting", "[" * 30000 + "]" * 30000, "INVALID_ENVELOPE", False),
    ("nesting_129_in_payload", line(valid(payload={"x": json.loads("[" * 128 + "]" * 128)})),
     "INVALID_ENVELOPE", False),
    ("huge", HUGE, "LINE_TOO_LONG", False),
    ("version_missing", line(without("protocol_v")), "INVALID_ENVELOPE", True),
    ("version_number", line(valid(protocol_v=2)), "INVALID_ENVELOPE", True),
    ("version_1", line(valid(protocol_v="1.0.0")), "UNSUPPORTED_VERSION", True),
    ("version_3", line(valid(protocol_v="3.0.0")), "UNSUPPORTED_VERSION", True),
    ("version_garbage", line(valid(protocol_v="two")), "UNSUPPORTED_VERSION", True),
    ("version_suffix", line(valid(protocol_v="2.0.0-beta")), "UNSUPPORTED_VERSION", True),
    ("id_missing", line(without("msg_id")), "INVALID_ENVELOPE", False),
    ("id_number", line(valid(msg_id=7)), "INVALID_ENVELOPE", False),
    ("id_null", line(valid(msg_id=None)), "INVALID_ENVELOPE", False),
    ("id_not_uuid", line(valid(msg_id="abc")), "INVALID_ENVELOPE", False),
    ("type_missing", line(without("type")), "INVALID_ENVELOPE", True),
    ("type_number", line(valid(type=3)), "INVALID_ENVELOPE", True),
    ("type_not_a_name", line(valid(type="CMD_extract-evidence")), "UNKNOWN_TYPE", True),
    ("payload_missing", line(without("payload")), "INVALID_ENVELOPE", True),
    ("payload_array", line(valid(payload=[])), "INVALID_ENVELOPE", True),
    ("process_without_handle", line(valid(payload={})), "INVALID_ENVELOPE", True),
    ("error_without_code", line(valid(type="RES_ERROR_V2", payload={"message": "m"})),
     "INVALID_ENVELOPE", True),
    ("handle_string", line(valid(payload={"shm_handle": "x"})), "INVALID_ENVELOPE", True),
    ("segment_number", line(with_handle(segment_id=5)), "INVALID_ENVELOPE", True),
    ("offset_string", line(with_handle(offset="0")), "INVALID_ENVELOPE", True),
    ("offset_bool", line(with_handle(offset=True)), "INVALID_ENVELOPE", True),
    ("offset_fraction", line(with_handle(offset=1.5)), "INVALID_ENVELOPE", True),
    ("offset_negative", line(with_handle(offset=-1)), "HANDLE_OUT_OF_RANGE", True),
    ("size_zero", line(with_handle(size=0)), "INVALID_ENVELOPE", True),
    ("size_beyond_u64", line(with_handle(size=2**64)), "HANDLE_OUT_OF_RANGE", True),
    ("size_float_huge", line(with_handle(size=1e20)), "HANDLE_OUT_OF_RANGE", True),
    ("sum_overflows", line(with_handle(offset=2**63, size=2**63)), "HANDLE_OUT_OF_RANGE", True),
    ("format_unknown", line(with_handle(format="parquet")), "INVALID_ENVELOPE", True),
]


@pytest.mark.parametrize("name,text,code,echoes", BAD_LINES, ids=[b[0] for b in BAD_LINES])
def test_bad_line_is_rejected_with_its_code(name, text, code, echoes):
    with pytest.raises(ProtocolError) as info:
        control.parse_envelope(text)
    assert info.value.code == code, info.value
    assert info.value.msg_id == (ID if echoes else None)


def test_nesting_and_quotes_are_bounded_as_on_the_cpp_side():
    deep = line(valid(type="CMD_SHUTDOWN",
                      payload={"x": json.loads("[" * 126 + "]" * 126), "y": "[[[[{{{{"}))
    control.parse_envelope(deep)  # 128 levels, brackets inside strings don't count
    with pytest.raises(ProtocolError, match="nested deeper than 128 levels"):
        control.parse_envelope(line(valid(payload={"x": json.loads("[" * 128 + "]" * 128)})))
    with pytest.raises(ProtocolError) as info:
        control.parse_envelope(line(valid(protocol_v="9" * 60000)))
    assert info.value.code == "UNSUPPORTED_VERSION" and len(info.value.message) < 200


def test_every_truncation_of_a_valid_line_is_rejected():
    text = line(valid())
    for n in range(len(text)):
        with pytest.raises(ProtocolError):
            control.parse_envelope(text[:n])


def test_error_answer_maps_to_quiver_exception_with_its_chain():
    env = control.make_error("HANDLE_OUT_OF_RANGE", "does not fit", ID,
                             {"code": "SHM_CORRUPTION", "message": "bad magic", "cause": None})
    err = control.parse_envelope(control.serialize(env)).error()
    assert isinstance(err, quiver.HandleOutOfRange)
    assert isinstance(err, ControlError) and isinstance(err, quiver.QuiverError)
    assert err.chain == [("HANDLE_OUT_OF_RANGE", "does not fit"), ("SHM_CORRUPTION", "bad magic")]
    assert isinstance(err.cause, quiver.ShmCorruption)
    assert err.msg_id == ID
    protocol = control.make_error("UNKNOWN_TYPE", "no").error()
    assert type(protocol) is ControlError and protocol.code == "UNKNOWN_TYPE"


def test_serialize_writes_what_the_cpp_side_writes():
    """serialize is C++ Serialize: keys sorted, a valid shm_handle in its canonical form (its
    unknown fields dropped, as a C++ relay would), and no envelope of an unknown type."""
    env = Envelope(type="CMD_PROCESS", msg_id=ID, payload={
        "z": 1, "shm_handle": {**ShmHandle("f", 0, 8).to_json(), "checksum": 5}})
    assert control.serialize(env) == (
        '{"msg_id":"%s","payload":{"shm_handle":{"format":"raw","offset":0,"segment_id":"f",'
        '"size":8},"z":1},"protocol_v":"2.0.0","type":"CMD_PROCESS"}' % ID)
    with pytest.raises(ProtocolError) as info:
        control.serialize(Envelope(type="CMD_fly"))
    assert info.value.code == "UNKNOWN_TYPE"
    assert control.serialize(Envelope(type="CMD_FLY", msg_id=ID)).endswith('"CMD_FLY"}')
    with pytest.raises(ValueError):
        control.serialize(Envelope(type="RES_OK", payload={"x": float("nan")}))
    assert control.serialize(control.make_error("X", "m")).startswith('{"msg_id":null,')


def test_a_handle_in_a_payload_is_read_by_the_parser_rules():
    env = Envelope(type="RES_OK", payload={"shm_handle": {**ShmHandle("f", 0, 8).to_json(),
                                                          "offset": -1}})
    with pytest.raises(ProtocolError) as info:
        env.shm_handle
    assert (info.value.code, info.value.message) == ("HANDLE_OUT_OF_RANGE",
                                                      "shm_handle.offset is negative (-1)")
    assert Envelope(type="RES_OK").shm_handle is None
    assert control.new_msg_id() != control.new_msg_id()


# --- against the C++ peer -----------------------------------------------------------------

@pytest.fixture(scope="session")
def control_peer(build_dir) -> pathlib.Path:
    peer = build_dir / "control_peer_main"
    if not peer.exists():
        pytest.fail(f"{peer} is missing: run `make build` (or set QUIVER_TEST_BUILD_DIR)")
    return peer


TOKEN = "control-test-token"


@pytest.fixture(params=["stdio", "unix", "tcp"])
def client(request, control_peer, name):
    """A Client connected to a fresh peer over each transport, exposing channels `name` and
    `name`-absent; the peer must exit cleanly after CMD_SHUTDOWN."""
    transport = request.param
    with tempfile.TemporaryDirectory() as tmp:
        args = {"stdio": [], "unix": ["--unix", f"{tmp}/control.sock"], "tcp": ["--tcp"]}
        expose = ["--expose", name, "--expose", f"{name}-absent"]
        proc = subprocess.Popen([str(control_peer), *args[transport], *expose],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE,
                                env={**os.environ, "QUIVER_CONTROL_TOKEN": TOKEN})
        try:
            if transport == "stdio":
                c = Client.over_stdio(proc.stdout, proc.stdin)
            else:
                ready = proc.stdout.readline().decode()
                if transport == "unix":
                    assert ready == "ready\n", proc.stderr.read()
                    c = Client.connect_unix(f"{tmp}/control.sock", timeout=10)
                else:
                    assert ready.startswith("port "), proc.stderr.read()
                    c = Client.connect_tcp(int(ready.split()[1]), timeout=10, token=TOKEN)
            yield c
            c.shutdown()
            c.close()
            assert proc.wait(timeout=10) == 0
            proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for f in (proc.stdin, proc.stdout, proc.stderr):
                f.close()


@pytest.fixture
def published(client, name):
    """A channel the peer watches, then two samples published on it: (channel name, capacity,
    [(safe handle, bytes), ...])."""
    channel = quiver.Channel.create(name, capacity="1MiB", max_samples=8)
    assert client.request("CMD_WATCH", {"segment_id": name}).payload == {
        "segment_id": name, "capacity": channel.capacity}
    publisher = channel.publisher()
    samples = []
    for data in (b"first sample " * 10, bytes(range(256)) * 3):
        publisher.publish_bytes(data)
        samples.append((control.handle_for_last(publisher), data))
    yield name, channel.capacity, samples
    del publisher, channel


def test_process_checksums_the_sample_a_handle_names(client, published):
    _, _, samples = published
    for handle, data in reversed(samples):  # in any order
        answer = client.request("CMD_PROCESS", shm_handle=handle)
        assert answer.type == "RES_DATA_READY"
        assert answer.shm_handle == handle
        assert answer.payload["crc32"] == zlib.crc32(data)
    with pytest.raises(quiver.StaleHandleError):  # resolved already: never another's bytes
        client.request("CMD_PROCESS", shm_handle=samples[0][0])


def test_handle_past_the_segment_end_is_handle_out_of_range(client, published):
    segment, capacity, samples = published
    handle = samples[0][0]
    for offset, size in [(capacity - 10, 11), (capacity, 1), (0, capacity + 1), (2**64 - 2, 1),
                         (handle.offset, handle.size + 1)]:
        with pytest.raises(quiver.HandleOutOfRange) as info:
            client.request("CMD_PROCESS", shm_handle=dataclasses.replace(
                handle, offset=offset, size=size))
        assert info.value.code == "HANDLE_OUT_OF_RANGE"  # type: ignore[attr-defined]  # a ControlError too
    ok = client.request("CMD_PROCESS", shm_handle=handle)  # the refusals took nothing
    assert ok.type == "RES_DATA_READY"


def test_a_handle_without_generation_and_sequence_is_refused(client, published):
    segment, _, samples = published
    unsafe = ShmHandle(segment, samples[0][0].offset, samples[0][0].size)
    with pytest.raises(quiver.InvalidArgumentError, match="no generation and sequence"):
        client.request("CMD_PROCESS", shm_handle=unsafe)


def test_unknown_segment_is_not_found(client, name):
    with pytest.raises(quiver.NotFound) as info:
        client.request("CMD_PROCESS", shm_handle=ShmHandle(f"{name}-absent", 0, 1,
                                                           generation=1, sequence=0))
    assert info.value.chain[0][0] == "NOT_FOUND"  # type: ignore[attr-defined]  # a ControlError too
    with pytest.raises(quiver.NotFound):
        client.request("CMD_WATCH", {"segment_id": f"{name}-absent"})


def test_bad_lines_are_answered_in_order_and_the_connection_survives(client, name):
    lines = [
        ("{not json", "INVALID_ENVELOPE", False),
        ("x" * (200 * 1024), "LINE_TOO_LONG", False),
        (line(valid(protocol_v="1.0.0")), "UNSUPPORTED_VERSION", True),
        (line(valid(type="CMD_FLY")), "UNKNOWN_TYPE", True),
        (line(with_handle(offset=-5)), "HANDLE_OUT_OF_RANGE", True),
        (line(valid(type="RES_OK", payload={})), "UNEXPECTED_TYPE", True),
        ("", "INVALID_ENVELOPE", False),
    ]
    for text, _, _ in lines:  # all at once: the answers must still come back in order
        client.send_line(text)
    for _, code, echoes in lines:
        answer = client.read_envelope()
        assert answer.type == "RES_ERROR_V2"
        assert answer.payload["code"] == code
        assert answer.msg_id == (ID if echoes else None)
    with pytest.raises(quiver.NotFound):
        client.request("CMD_PROCESS", shm_handle=ShmHandle(f"{name}-absent", 0, 1,
                                                           generation=1, sequence=0))


def test_peer_on_stdio_answers_a_truncated_last_line_then_exits(control_peer):
    request = line(valid(msg_id=str(uuid.uuid4())))
    out = subprocess.run([str(control_peer)], input=request[:20].encode(), capture_output=True,
                         timeout=10)
    assert out.returncode == 0
    answer = control.parse_envelope(out.stdout.splitlines()[0])
    assert answer.payload["code"] == "INVALID_ENVELOPE"
    assert b"RES_ERROR_V2 INVALID_ENVELOPE" in out.stderr  # and it was logged


def test_a_handle_to_a_channel_the_peer_does_not_expose_is_refused(client, published):
    """The serving user's other channels stay out of reach: the peer exposes `name` only."""
    segment, _, samples = published
    other = quiver.Channel.create(f"{segment}-private", capacity="1MiB")
    for channel in (f"{segment}-private", "anything"):
        with pytest.raises(quiver.PermissionDenied, match="does not expose channel"):
            client.request("CMD_PROCESS", shm_handle=ShmHandle(channel, 0, 1))
    with pytest.raises(quiver.PermissionDenied):
        client.request("CMD_WATCH", {"segment_id": f"{segment}-private"})
    handle, data = samples[0]
    ok = client.request("CMD_PROCESS", shm_handle=handle)
    assert ok.payload["crc32"] == zlib.crc32(data)
    del other


def test_tcp_needs_the_token_first(control_peer, name):
    proc = subprocess.Popen([str(control_peer), "--tcp", "--expose", name],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "QUIVER_CONTROL_TOKEN": TOKEN})
    try:
        port = int(proc.stdout.readline().decode().split()[1])
        with pytest.raises(quiver.Unauthenticated):
            Client.connect_tcp(port, timeout=10, token="guess")
        with Client.connect_tcp(port, timeout=10, token=TOKEN) as good:
            good.shutdown()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
