"""Python and C++ accept and refuse exactly the same control envelopes: every line of
src/control/envelope_cases.jsonl (also run by src/control/envelope_test.cc through
ParseEnvelope) gets from quiver.control the code, message and msg_id the table gives, or
parses and serializes to the table's line; the refused ones also get that answer from a
running C++ peer over stdio."""

import json
import pathlib
import subprocess

import pytest

from quiver import control
from quiver.control import ProtocolError

TABLE = pathlib.Path(__file__).resolve().parents[2] / "src" / "control" / "envelope_cases.jsonl"


def load_cases():
    cases = []
    for text in TABLE.read_text(encoding="utf-8").splitlines():
        if text and not text.startswith("#"):
            cases.append(json.loads(text))
    return cases


def case_line(case) -> bytes:
    """The case's line: "line" (UTF-8), "hex" bytes, or "parts" [[text, times], ...]."""
    if "line" in case:
        return case["line"].encode("utf-8")
    if "hex" in case:
        return bytes.fromhex(case["hex"])
    return b"".join(text.encode("utf-8") * times for text, times in case["parts"])


CASES = load_cases()
REFUSED = [c for c in CASES if "code" in c]


def test_the_table_covers_both_outcomes_and_every_code():
    assert len(CASES) >= 50
    assert {c["code"] for c in REFUSED} == {"INVALID_ENVELOPE", "UNSUPPORTED_VERSION",
                                            "UNKNOWN_TYPE", "LINE_TOO_LONG",
                                            "HANDLE_OUT_OF_RANGE"}
    accepted = {c["type"] for c in CASES if "code" not in c}
    assert accepted >= control.TYPES
    assert accepted - control.TYPES, "an application's own type is accepted too"
    assert len({c["name"] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_python_gives_each_line_the_outcome_of_the_table(case):
    line = case_line(case)
    if "code" in case:
        with pytest.raises(ProtocolError) as info:
            control.parse_envelope(line)
        assert (info.value.code, info.value.message, info.value.msg_id) == (
            case["code"], case["message"], case["msg_id"])
    else:
        env = control.parse_envelope(line)
        assert (env.type, env.msg_id) == (case["type"], case["msg_id"])
        assert control.serialize(env) == case["serialized"]
        if env.type in ("CMD_PROCESS", "RES_DATA_READY"):
            assert env.shm_handle is not None


def test_a_cpp_peer_answers_each_refused_line_as_python_refuses_it(build_dir):
    """The same lines over a pipe to tests/control_peer_main: its RES_ERROR_V2 answers carry
    the code, message and msg_id quiver.control raised. (Lines longer than the limit are
    refused by the peer's line reader before they are parsed, and a line holding a newline
    is two lines on the wire: both are left to the table test above.)"""
    peer = build_dir / "control_peer_main"
    if not peer.exists():
        pytest.fail(f"{peer} is missing: run `make build` (or set QUIVER_TEST_BUILD_DIR)")
    cases = [c for c in REFUSED
             if c["code"] != "LINE_TOO_LONG" and b"\n" not in case_line(c)]
    stdin = b"".join(case_line(c) + b"\n" for c in cases)
    out = subprocess.run([str(peer)], input=stdin, capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    answers = out.stdout.splitlines()
    assert len(answers) == len(cases)
    for case, answer in zip(cases, answers):
        reply = control.parse_envelope(answer)
        with pytest.raises(ProtocolError) as info:
            control.parse_envelope(case_line(case))
        assert reply.type == "RES_ERROR_V2", case["name"]
        assert (reply.payload["code"], reply.payload["message"], reply.msg_id) == (
            info.value.code, info.value.message, info.value.msg_id), case["name"]
