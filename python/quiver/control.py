"""The control envelope, protocol 2.0.0: one JSON object per line over stdio, a Unix socket
or loopback TCP, with the same strict rules as the C++ side (``src/control/envelope.h``).

>>> with Client.connect_unix("/run/user/1000/quiver.sock") as client:
...     handle = ShmHandle("frames", offset=0, size=4096, format="raw")
...     reply = client.request("CMD_PROCESS", shm_handle=handle)
...     reply.type                                    # "RES_DATA_READY"

An answer of type ``RES_ERROR_V2`` is raised: as the matching ``quiver`` exception
(``HandleOutOfRange``, ``NotFound``, ``ShmCorruption``, ...) when its code names one, always
also a :class:`ControlError` carrying the code, message and cause chain.
"""

from __future__ import annotations

import json
import math
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, Dict, List, Optional, Tuple, Type

from ._quiver import QuiverError

__all__ = [
    "PROTOCOL_VERSION", "MAX_LINE_BYTES", "TYPES", "FORMATS", "ShmHandle", "Envelope",
    "ControlError", "ProtocolError", "parse_envelope", "serialize", "new_msg_id", "make_error",
    "Client",
]

PROTOCOL_VERSION = "2.0.0"
PROTOCOL_MAJOR = 2
#: The longest line accepted, without its newline.
MAX_LINE_BYTES = 64 * 1024
TYPES = frozenset({"CMD_STREAM_START", "CMD_PROCESS", "CMD_SHUTDOWN", "CMD_AUTH", "RES_OK",
                   "RES_DATA_READY", "RES_ERROR_V2"})
FORMATS = frozenset({"arrow_stream", "tensor", "raw"})
_NEED_HANDLE = frozenset({"CMD_PROCESS", "RES_DATA_READY"})
_MAX_CAUSE_DEPTH = 32
# As the C++ side: JSON nested deeper than this is refused before it is parsed, and values
# from the peer are quoted in error messages cut to this many characters.
_MAX_JSON_DEPTH = 128
_MAX_QUOTE = 80
_U64_MAX = 2**64 - 1

INVALID_ENVELOPE = "INVALID_ENVELOPE"
UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"
UNKNOWN_TYPE = "UNKNOWN_TYPE"
LINE_TOO_LONG = "LINE_TOO_LONG"
HANDLE_OUT_OF_RANGE = "HANDLE_OUT_OF_RANGE"

class ControlError(QuiverError):
    """An error the control plane reports: ``code`` (e.g. ``"HANDLE_OUT_OF_RANGE"``),
    ``message``, the ``cause`` it wraps (a ControlError or None) and the ``msg_id`` of the
    request it answers (None if the peer could not read one)."""

    def __init__(self, code: str, message: str, cause: Optional["ControlError"] = None,
                 msg_id: Optional[str] = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.cause = cause
        self.msg_id = msg_id

    @property
    def chain(self) -> List[Tuple[str, str]]:
        """``[(code, message), ...]`` from this error down to its innermost cause."""
        out, err = [], self
        while err is not None:
            out.append((err.code, err.message))
            err = err.cause
        return out

    def __str__(self) -> str:
        return " (caused by ".join(f"{c}: {m}" for c, m in self.chain) + ")" * (
            len(self.chain) - 1)


class ProtocolError(ControlError):
    """A line that is not a valid envelope (code INVALID_ENVELOPE, UNSUPPORTED_VERSION,
    UNKNOWN_TYPE, LINE_TOO_LONG or HANDLE_OUT_OF_RANGE), or a peer breaking the protocol."""


_remote_classes: Dict[str, Type[ControlError]] = {}


def _error_class(code: str) -> Type[ControlError]:
    """ControlError, or a subclass of it and of the quiver exception of ``code`` (the C++
    error table's, quiver/status.h)."""
    from . import _quiver  # the native exceptions; no import cycle through quiver/__init__

    base = _quiver.error_classes.get(code)
    if base is None:
        return ControlError
    if code not in _remote_classes:
        _remote_classes[code] = type(f"Remote{base.__name__}", (ControlError, base),
                                     {"__module__": __name__})
    return _remote_classes[code]


@dataclass(frozen=True)
class ShmHandle:
    """``size`` bytes at ``offset`` of the data area of channel ``segment_id``."""

    segment_id: str
    offset: int
    size: int
    format: str = "raw"

    def to_json(self) -> Dict[str, Any]:
        return {"segment_id": self.segment_id, "offset": self.offset, "size": self.size,
                "format": self.format}


@dataclass
class Envelope:
    """One message. ``msg_id`` is None only in a RES_ERROR_V2 answering an unreadable line."""

    type: str
    payload: Dict[str, Any] = field(default_factory=dict)
    msg_id: Optional[str] = field(default_factory=lambda: new_msg_id())
    protocol_v: str = PROTOCOL_VERSION

    @property
    def shm_handle(self) -> Optional[ShmHandle]:
        raw = self.payload.get("shm_handle")
        return None if raw is None else _parse_handle(raw)

    def error(self) -> Optional[ControlError]:
        """For RES_ERROR_V2: the error it carries (the matching quiver exception subclass)."""
        if self.type != "RES_ERROR_V2":
            return None
        nodes = []
        node: Any = self.payload
        while isinstance(node, dict) and len(nodes) <= _MAX_CAUSE_DEPTH:
            nodes.append(node)
            node = node.get("cause")
        err: Optional[ControlError] = None
        for n in reversed(nodes):
            code = str(n.get("code", "INTERNAL"))
            err = _error_class(code)(code, str(n.get("message", "")), err, self.msg_id)
        return err


def new_msg_id() -> str:
    return str(uuid.uuid4())


def _is_uuid(text: Any) -> bool:
    if not isinstance(text, str) or len(text) != 36:
        return False
    return all((c == "-") if i in (8, 13, 18, 23) else (c in "0123456789abcdefABCDEF")
               for i, c in enumerate(text))


def _major(version: str) -> Optional[int]:
    parts = version.split(".")
    if len(parts) != 3 or not all(p and p.isascii() and p.isdigit() for p in parts):
        return None
    return int(parts[0])


def _uint(handle: Dict[str, Any], name: str) -> int:
    where = f"shm_handle.{name}"
    if name not in handle:
        raise ProtocolError(INVALID_ENVELOPE, f"{where} is missing")
    v = handle[name]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ProtocolError(INVALID_ENVELOPE, f"{where} must be an integer, got {type(v).__name__}")
    if isinstance(v, float):
        if math.isfinite(v) and (v < 0 or v >= 2.0**64):
            raise ProtocolError(HANDLE_OUT_OF_RANGE, f"{where} {v!r} is outside 0..2^64-1")
        raise ProtocolError(INVALID_ENVELOPE, f"{where} must be an integer, got {v!r}")
    if v < 0 or v > _U64_MAX:
        raise ProtocolError(HANDLE_OUT_OF_RANGE, f"{where} {v} is outside 0..2^64-1")
    return v


def _parse_handle(raw: Any) -> ShmHandle:
    if not isinstance(raw, dict):
        raise ProtocolError(INVALID_ENVELOPE,
                            f"shm_handle must be an object, got {type(raw).__name__}")
    segment = raw.get("segment_id")
    if not isinstance(segment, str) or not segment:
        raise ProtocolError(INVALID_ENVELOPE, "shm_handle.segment_id must be a non-empty string")
    offset, size = _uint(raw, "offset"), _uint(raw, "size")
    if size == 0:
        raise ProtocolError(INVALID_ENVELOPE, "shm_handle.size must be at least 1")
    if offset + size > _U64_MAX:
        raise ProtocolError(HANDLE_OUT_OF_RANGE,
                            f"shm_handle offset {offset} + size {size} overflows 64 bits")
    fmt = raw.get("format")
    if not isinstance(fmt, str):
        raise ProtocolError(INVALID_ENVELOPE, "shm_handle.format must be a string")
    if fmt not in FORMATS:
        raise ProtocolError(INVALID_ENVELOPE,
                            f"shm_handle.format {fmt!r} is not arrow_stream, tensor or raw")
    return ShmHandle(segment, offset, size, fmt)


def _check_error_payload(payload: Any, depth: int = 0) -> None:
    while True:
        if depth > _MAX_CAUSE_DEPTH:
            raise ProtocolError(INVALID_ENVELOPE, "error cause chain is deeper than 32")
        if not isinstance(payload, dict):
            raise ProtocolError(INVALID_ENVELOPE, "error cause must be an object or null")
        if not isinstance(payload.get("code"), str) or not payload["code"]:
            raise ProtocolError(INVALID_ENVELOPE,
                                "RES_ERROR_V2 payload.code must be a non-empty string")
        if not isinstance(payload.get("message"), str):
            raise ProtocolError(INVALID_ENVELOPE, "RES_ERROR_V2 payload.message must be a string")
        payload = payload.get("cause")
        if payload is None:
            return
        depth += 1


def _nested_too_deep(data: bytes) -> bool:
    """True if ``data`` opens more than _MAX_JSON_DEPTH arrays and objects at once."""
    if data.count(b"[") + data.count(b"{") <= _MAX_JSON_DEPTH:
        return False  # the common case, without a loop in Python
    depth, in_string, i, n = 0, False, 0, len(data)
    while i < n:
        c = data[i]
        if in_string:
            if c == 0x5C:  # backslash: skip the escaped byte
                i += 1
            elif c == 0x22:
                in_string = False
        elif c == 0x22:
            in_string = True
        elif c in (0x5B, 0x7B):
            depth += 1
            if depth > _MAX_JSON_DEPTH:
                return True
        elif c in (0x5D, 0x7D):
            depth -= 1
        i += 1
    return False


def _quote(value: Any) -> str:
    """A peer's value in an error message: its JSON, cut to _MAX_QUOTE characters."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text[:_MAX_QUOTE]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_envelope(line: Any) -> Envelope:
    """Parses one line (bytes or str; a trailing newline and one ``\\r`` are dropped).
    Raises :class:`ProtocolError` with the RES_ERROR_V2 code the C++ side would answer;
    its ``msg_id`` is the line's, when readable."""
    data = line.encode("utf-8", "surrogatepass") if isinstance(line, str) else bytes(line)
    if data.endswith(b"\n"):
        data = data[:-1]
    if data.endswith(b"\r"):
        data = data[:-1]
    if len(data) > MAX_LINE_BYTES:
        raise ProtocolError(LINE_TOO_LONG,
                            f"line of {len(data)} bytes exceeds {MAX_LINE_BYTES}")
    if not data.strip(b" \t"):
        raise ProtocolError(INVALID_ENVELOPE, "empty line")
    if _nested_too_deep(data):
        raise ProtocolError(INVALID_ENVELOPE, f"JSON nested deeper than {_MAX_JSON_DEPTH} levels")
    try:
        doc = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise ProtocolError(INVALID_ENVELOPE, "not valid JSON") from None
    if not isinstance(doc, dict):
        raise ProtocolError(INVALID_ENVELOPE,
                            f"an envelope must be a JSON object, got {type(doc).__name__}")
    raw_id = doc.get("msg_id")
    msg_id = raw_id if _is_uuid(raw_id) else None

    def fail(code: str, message: str, with_id: bool = True) -> ProtocolError:
        return ProtocolError(code, message, msg_id=msg_id if with_id else None)

    if "protocol_v" not in doc:
        raise fail(INVALID_ENVELOPE, "protocol_v is missing")
    version = doc["protocol_v"]
    if not isinstance(version, str):
        raise fail(INVALID_ENVELOPE, f"protocol_v must be a string, got {type(version).__name__}")
    major = _major(version)
    if major is None:
        raise fail(UNSUPPORTED_VERSION, f"protocol_v {_quote(version)} is not MAJOR.MINOR.PATCH")
    if major != PROTOCOL_MAJOR:
        raise fail(UNSUPPORTED_VERSION,
                   f"protocol_v {_quote(version)} is not supported (this side speaks {PROTOCOL_VERSION})")
    if "msg_id" not in doc:
        raise fail(INVALID_ENVELOPE, "msg_id is missing")
    kind = doc.get("type")
    if msg_id is None and not (raw_id is None and kind == "RES_ERROR_V2"):
        raise fail(INVALID_ENVELOPE, f"msg_id must be a UUID string, got {_quote(raw_id)}")
    if "type" not in doc:
        raise fail(INVALID_ENVELOPE, "type is missing")
    if not isinstance(kind, str):
        raise fail(INVALID_ENVELOPE, f"type must be a string, got {type(kind).__name__}")
    if kind not in TYPES:
        raise fail(UNKNOWN_TYPE, f"type {_quote(kind)} is not a known type")
    if "payload" not in doc:
        raise fail(INVALID_ENVELOPE, "payload is missing")
    payload = doc["payload"]
    if not isinstance(payload, dict):
        raise fail(INVALID_ENVELOPE, f"payload must be an object, got {type(payload).__name__}")
    try:
        if "shm_handle" in payload:
            _parse_handle(payload["shm_handle"])
        elif kind in _NEED_HANDLE:
            raise ProtocolError(INVALID_ENVELOPE, f"{kind} needs payload.shm_handle")
        if kind == "RES_ERROR_V2":
            _check_error_payload(payload)
    except ProtocolError as e:
        raise fail(e.code, e.message) from None
    return Envelope(type=kind, payload=payload, msg_id=msg_id, protocol_v=version)


def serialize(envelope: Envelope) -> str:
    """Returns the single-line JSON of ``envelope`` (no newline)."""
    return json.dumps({"protocol_v": envelope.protocol_v, "msg_id": envelope.msg_id,
                       "type": envelope.type, "payload": envelope.payload},
                      separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def make_error(code: str, message: str, msg_id: Optional[str] = None,
               cause: Optional[Dict[str, Any]] = None) -> Envelope:
    """Returns a RES_ERROR_V2 envelope; ``cause`` is a nested payload of the same shape."""
    return Envelope(type="RES_ERROR_V2", msg_id=msg_id,
                    payload={"code": code, "message": message, "cause": cause})


class Client:
    """Sends requests and reads their answers, one at a time, in order. Not thread-safe."""

    def __init__(self, reader: BinaryIO, writer: BinaryIO,
                 on_close: Optional[Callable[[], None]] = None) -> None:
        self._reader = reader
        self._writer = writer
        self._on_close = on_close

    @classmethod
    def connect_unix(cls, path: str, timeout: Optional[float] = None) -> "Client":
        """Connects to a control server's Unix socket. ``timeout`` bounds each read/write."""
        return cls._from_socket(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM), path, timeout)

    @classmethod
    def connect_tcp(cls, port: int, host: str = "127.0.0.1",
                    timeout: Optional[float] = None, *, token: str) -> "Client":
        """Connects to a control server on loopback TCP and authenticates with ``token``
        (CMD_AUTH, the first line every TCP connection must send). A wrong token raises
        ``Unauthenticated``."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = cls._from_socket(sock, (host, port), timeout)
        try:
            client.request("CMD_AUTH", {"token": token})
        except BaseException:
            client.close()
            raise
        return client

    @classmethod
    def over_stdio(cls, reader: BinaryIO, writer: BinaryIO) -> "Client":
        """Talks through binary streams, e.g. a child's ``stdout`` (reader) and ``stdin``."""
        return cls(reader, writer)

    @classmethod
    def _from_socket(cls, sock: socket.socket, address: Any, timeout: Optional[float]) -> "Client":
        try:
            sock.settimeout(timeout)
            sock.connect(address)
        except OSError:
            sock.close()
            raise
        reader = sock.makefile("rb")
        writer = sock.makefile("wb")

        def close() -> None:
            for f in (reader, writer):
                try:
                    f.close()
                except OSError:
                    pass
            sock.close()

        return cls(reader, writer, close)

    def send_line(self, line: Any) -> None:
        """Writes one raw line (a newline is added). For tests and tools."""
        data = line.encode("utf-8", "surrogatepass") if isinstance(line, str) else bytes(line)
        self._writer.write(data + b"\n")
        self._writer.flush()

    def read_line(self) -> bytes:
        """Reads one line (without its newline), refusing more than MAX_LINE_BYTES: an
        oversized line is skipped to its end and raised as LINE_TOO_LONG."""
        line = self._reader.readline(MAX_LINE_BYTES + 2)
        if not line:
            raise ProtocolError("PEER_DIED", "the control peer closed the connection")
        if not line.endswith(b"\n"):
            if len(line) <= MAX_LINE_BYTES + 1:
                raise ProtocolError("PEER_DIED", "the stream ended inside a line")
            while True:  # drop the rest of the oversized line, a bounded chunk at a time
                rest = self._reader.readline(MAX_LINE_BYTES)
                if not rest or rest.endswith(b"\n"):
                    break
            raise ProtocolError(LINE_TOO_LONG, f"answer longer than {MAX_LINE_BYTES} bytes")
        return line[:-1]

    def read_envelope(self) -> Envelope:
        """Reads and parses the next line."""
        return parse_envelope(self.read_line())

    def request(self, type: str, payload: Optional[Dict[str, Any]] = None, *,
                shm_handle: Optional[ShmHandle] = None) -> Envelope:
        """Sends a ``type`` request and returns its answer. A RES_ERROR_V2 answer is raised
        (see :class:`ControlError`); an answer to another request is a ProtocolError."""
        body = dict(payload or {})
        if shm_handle is not None:
            body["shm_handle"] = shm_handle.to_json()
        request = Envelope(type=type, payload=body)
        self.send_line(serialize(request))
        answer = self.read_envelope()
        # Answers come in request order; a null msg_id answers a line the peer could not read.
        if answer.msg_id is not None and answer.msg_id != request.msg_id:
            raise ProtocolError(INVALID_ENVELOPE,
                                f"answer {answer.msg_id} does not match request {request.msg_id}")
        err = answer.error()
        if err is not None:
            raise err
        return answer

    def shutdown(self) -> None:
        """Sends CMD_SHUTDOWN and waits for its acknowledgement; the peer then ends the
        connection."""
        self.request("CMD_SHUTDOWN")

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()
            self._on_close = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
