"""The control envelope, protocol 2.0.0: one JSON object per line over stdio, a Unix socket
or loopback TCP. Lines are parsed and written by the C++ codec (``include/quiver/envelope.h``),
so Python accepts and refuses exactly what a C++ peer does, with the same code and message.

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
import socket
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Dict, Generator, List, Optional, Tuple, Type

from ._quiver import QuiverError
# The codec itself: include/quiver/envelope.h, bound by python/src/control.cc. This module only
# puts Python objects around it.
from ._quiver import envelope as _codec

__all__ = [
    "PROTOCOL_VERSION", "MAX_LINE_BYTES", "TYPES", "FORMATS", "ShmHandle", "Envelope",
    "ControlError", "ProtocolError", "parse_envelope", "serialize", "new_msg_id", "make_error",
    "Client", "CommandClient", "PendingCall", "WorkerPool", "Worker", "Streams",
    "HandleResolver", "handle_for_last", "data_ready", "CONTROL_ENV", "CONTROL_WORKERS_ENV",
    "Service", "list_services",
]

PROTOCOL_VERSION: str = _codec.PROTOCOL_VERSION
PROTOCOL_MAJOR: int = _codec.PROTOCOL_MAJOR
#: The longest line accepted, without its newline.
MAX_LINE_BYTES: int = _codec.MAX_LINE_BYTES
TYPES = frozenset(_codec.TYPES)
FORMATS = frozenset(_codec.FORMATS)

INVALID_ENVELOPE: str = _codec.INVALID_ENVELOPE
UNSUPPORTED_VERSION: str = _codec.UNSUPPORTED_VERSION
UNKNOWN_TYPE: str = _codec.UNKNOWN_TYPE
LINE_TOO_LONG: str = _codec.LINE_TOO_LONG
HANDLE_OUT_OF_RANGE: str = _codec.HANDLE_OUT_OF_RANGE


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
        out: List[Tuple[str, str]] = []
        err: Optional[ControlError] = self
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
    """``size`` bytes at ``offset`` of the data area of channel ``segment_id``. A safe handle
    (:func:`handle_for_last`) also names the channel's ``generation`` and the sample's
    ``sequence``: :class:`HandleResolver` resolves it to that very sample, held, or raises
    ``StaleHandleError``.

    Thread-safety: immutable; may be shared between threads."""

    segment_id: str
    offset: int
    size: int
    format: str = "raw"
    generation: Optional[int] = None
    sequence: Optional[int] = None

    def to_json(self) -> Dict[str, Any]:
        """The handle as an envelope's ``shm_handle`` object (``generation`` and ``sequence``
        only for a safe handle)."""
        out = {"segment_id": self.segment_id, "offset": self.offset, "size": self.size,
               "format": self.format}
        if self.generation is not None or self.sequence is not None:
            out["generation"] = self.generation
            out["sequence"] = self.sequence
        return out


@dataclass
class Envelope:
    """One message. ``msg_id`` is None only in a RES_ERROR_V2 answering an unreadable line.

    Thread-safety: a plain mutable value; share it between threads only to read it."""

    type: str
    payload: Dict[str, Any] = field(default_factory=dict)
    msg_id: Optional[str] = field(default_factory=lambda: new_msg_id())
    protocol_v: str = PROTOCOL_VERSION

    @property
    def shm_handle(self) -> Optional[ShmHandle]:
        """The payload's ``shm_handle``, read by the rules of parse_envelope (ProtocolError
        if it breaks them), or None."""
        raw = self.payload.get("shm_handle")
        if raw is None:
            return None
        outcome = _codec.parse_shm_handle(_to_json(raw))
        if not outcome[0]:
            raise ProtocolError(outcome[1], outcome[2])
        return ShmHandle(*outcome[1:])

    def error(self) -> Optional[ControlError]:
        """For RES_ERROR_V2: the error it carries (the matching quiver exception subclass)."""
        if self.type != "RES_ERROR_V2":
            return None
        nodes: List[Dict[str, Any]] = []
        node: Any = self.payload
        while isinstance(node, dict) and len(nodes) <= _codec.MAX_CAUSE_DEPTH:
            nodes.append(node)
            node = node.get("cause")
        err: Optional[ControlError] = None
        for n in reversed(nodes):
            code = str(n.get("code", _codec.INTERNAL))
            err = _error_class(code)(code, str(n.get("message", "")), err, self.msg_id)
        return err


def new_msg_id() -> str:
    """A fresh random (version 4) UUID, as the C++ side makes them."""
    return _codec.new_msg_id()


def _to_json(value: Any) -> str:
    """``value`` as JSON text for the codec: Python's own mapping of objects to JSON
    (ValueError for NaN and infinities, TypeError for what has no JSON form)."""
    return json.dumps(value, allow_nan=False)


def parse_envelope(line: Any) -> Envelope:
    """Parses one line (bytes or str; a trailing newline and one ``\\r`` are dropped).
    Raises :class:`ProtocolError` with the RES_ERROR_V2 code the C++ side would answer
    (it is the C++ parser); its ``msg_id`` is the line's, when readable."""
    data = line.encode("utf-8", "surrogatepass") if isinstance(line, str) else bytes(line)
    if data.endswith(b"\n"):
        data = data[:-1]
    outcome = _codec.parse(data)
    if not outcome[0]:
        _, code, message, msg_id = outcome
        raise ProtocolError(code, message, msg_id=msg_id)
    _, kind, payload, msg_id, version = outcome
    return Envelope(type=kind, payload=payload, msg_id=msg_id, protocol_v=version)


def serialize(envelope: Envelope) -> str:
    """Returns the single-line JSON of ``envelope`` (no newline), as the C++ side writes it.
    ProtocolError for a type no envelope has."""
    outcome = _codec.serialize(envelope.type, _to_json(envelope.payload), envelope.msg_id,
                               envelope.protocol_v)
    if not outcome[0]:
        raise ProtocolError(outcome[1], outcome[2])
    text: str = outcome[1]
    return text


def make_error(code: str, message: str, msg_id: Optional[str] = None,
               cause: Optional[Dict[str, Any]] = None) -> Envelope:
    """Returns a RES_ERROR_V2 envelope; ``cause`` is a nested payload of the same shape."""
    return Envelope(type="RES_ERROR_V2", msg_id=msg_id,
                    payload={"code": code, "message": message, "cause": cause})


class Client:
    """Sends requests and reads their answers, one at a time, in order. Not thread-safe."""

    def __init__(self, reader: IO[bytes], writer: IO[bytes],
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
    def over_stdio(cls, reader: IO[bytes], writer: IO[bytes]) -> "Client":
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
            raise ProtocolError(_codec.PEER_DIED, "the control peer closed the connection")
        if not line.endswith(b"\n"):
            if len(line) <= MAX_LINE_BYTES + 1:
                raise ProtocolError(_codec.PEER_DIED, "the stream ended inside a line")
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
        """Closes a connection it opened (:meth:`connect_unix`, :meth:`connect_tcp`); the
        streams given to :meth:`over_stdio` stay open. Idempotent."""
        if self._on_close is not None:
            self._on_close()
            self._on_close = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ---- the command/result workflow (quiver/control.h, bound by python/src/workflow.cc) ------

from ._quiver import workflow as _wf  # noqa: E402

#: The environment variables ``quiver run`` sets: a worker's connection (an fd, or "stdio"),
#: and a core's workers ("name=fd,name=fd").
CONTROL_ENV: str = _wf.CONTROL_ENV
CONTROL_WORKERS_ENV: str = _wf.CONTROL_WORKERS_ENV


def _command(type: str, payload: Optional[Dict[str, Any]],
             shm_handle: Optional[ShmHandle]) -> bytes:
    body = dict(payload or {})
    if shm_handle is not None:
        body["shm_handle"] = shm_handle.to_json()
    return serialize(Envelope(type=type, payload=body)).encode()


def _envelope(line: bytes) -> Envelope:
    return parse_envelope(line)


class PendingCall:
    """A command sent and not answered yet. ``wait`` returns the result envelope or raises
    its error: the ``RES_ERROR_V2`` chain as the matching ``quiver`` exception, ``PeerGone``
    naming the worker if it died first, ``Timeout`` if it has not come (wait again).
    ``await call`` is :meth:`wait_async` without a timeout.

    Thread-safety: thread-safe; it outlives its client (its wait then raises ``PeerGone``)."""

    __slots__ = ("_call",)

    def __init__(self, call: _wf.PendingCall) -> None:
        self._call = call

    def wait(self, timeout: Optional[float] = None) -> Envelope:
        """Waits up to ``timeout`` seconds (None: as long as it takes; Ctrl-C interrupts) and
        returns the result envelope. Raises the result's ``RES_ERROR_V2`` as the matching
        ``quiver`` exception, ``PeerGoneError`` naming the worker if the connection ended
        first, ``TimeoutError`` if it has not come (the call stays pending: wait again)."""
        return _envelope(self._call.wait(timeout))

    async def wait_async(self, timeout: Optional[float] = None) -> Envelope:
        """``wait`` without blocking the event loop (on the loop's default executor)."""
        import asyncio
        return await asyncio.get_running_loop().run_in_executor(None, self.wait, timeout)

    def __await__(self) -> Generator[Any, None, Envelope]:
        return self.wait_async().__await__()

    @property
    def done(self) -> bool:
        """True once the result (or the end of the connection) is in."""
        return self._call.done

    @property
    def msg_id(self) -> str:
        """The ``msg_id`` of the command, which its result carries too."""
        return self._call.msg_id

    @property
    def worker(self) -> str:
        """The name of the worker the command went to."""
        return self._call.worker


class CommandClient:
    """The commanding end of one control connection to a worker: several commands in flight
    at once, each result matched to its command by ``msg_id``. Thread-safe.

    >>> client = CommandClient.for_worker("extractor")          # under quiver run
    >>> result = client.call("CMD_EXTRACT_EVIDENCE", {"file_path": "a.pdf", "page": 3})
    """

    __slots__ = ("_c",)

    def __init__(self, native: _wf.Client) -> None:
        self._c: Optional[_wf.Client] = native

    @classmethod
    def from_fd(cls, fd: int, worker: str = "worker") -> "CommandClient":
        """Over a connected stream socket (owned from now on); ``worker`` names it in errors."""
        return cls(_wf.Client.from_fd(fd, worker))

    @classmethod
    def from_fds(cls, read_fd: int, write_fd: int, worker: str = "worker") -> "CommandClient":
        """Over two pipes: results read from ``read_fd``, commands written to ``write_fd``
        (owned from now on), as ``quiver run`` connects a core and its worker."""
        return cls(_wf.Client.from_fds(read_fd, write_fd, worker))

    @classmethod
    def connect_unix(cls, path: str) -> "CommandClient":
        """Connects to a worker's Unix socket at ``path``; ``NotFoundError`` if nobody listens
        there."""
        return cls(_wf.Client.connect_unix(path))

    @classmethod
    def connect_tcp(cls, port: int, *, token: str) -> "CommandClient":
        """127.0.0.1:``port``, authenticated with ``token`` (CMD_AUTH) first."""
        return cls(_wf.Client.connect_tcp(port, token))

    @classmethod
    def for_worker(cls, name: str) -> "CommandClient":
        """The connection ``quiver run`` made to worker ``name`` of this node (the pipeline
        file's ``controls = [...]``); ``NotFound`` naming the workers there are otherwise."""
        return cls(_wf.Client.for_worker(name))

    def send(self, type: str, payload: Optional[Dict[str, Any]] = None, *,
             shm_handle: Optional[ShmHandle] = None) -> PendingCall:
        """Sends a command (any ``CMD_*`` type) and returns at once: a :class:`PendingCall`.
        :class:`ProtocolError` for a type no envelope has, :class:`ControlError` if this
        client is closed."""
        return PendingCall(self._native().send(_command(type, payload, shm_handle)))

    def call(self, type: str, payload: Optional[Dict[str, Any]] = None, *,
             shm_handle: Optional[ShmHandle] = None, timeout: Optional[float] = 30.0) -> Envelope:
        """Sends a command and waits up to ``timeout`` seconds for its result: errors as
        :meth:`send` and :meth:`PendingCall.wait`."""
        return self.send(type, payload, shm_handle=shm_handle).wait(timeout)

    async def call_async(self, type: str, payload: Optional[Dict[str, Any]] = None, *,
                         shm_handle: Optional[ShmHandle] = None,
                         timeout: Optional[float] = 30.0) -> Envelope:
        """``call`` for asyncio: many commands may be awaited at once (``asyncio.gather``)."""
        return await self.send(type, payload, shm_handle=shm_handle).wait_async(timeout)

    @property
    def in_flight(self) -> int:
        """Commands sent and not answered yet."""
        return self._native().in_flight

    @property
    def connected(self) -> bool:
        """False once the connection ended (the worker closed it or died)."""
        return self._native().connected

    @property
    def worker(self) -> str:
        """The worker's name, as errors give it."""
        return self._native().worker

    def close(self) -> None:
        """Closes the connection; calls still pending fail with ``PeerGone``."""
        self._c = None

    def _native(self) -> _wf.Client:
        if self._c is None:
            raise ControlError("INVALID_ARGUMENT", "this client is closed (or given to a pool)")
        return self._c

    def __enter__(self) -> "CommandClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class WorkerPool:
    """One core commanding several workers. ``dispatch`` is ``"least-loaded"`` (the live
    worker with the fewest commands in flight) or ``"round-robin"``. A worker that dies with a
    command in flight costs a retry on another (``retries``); when none is left the call raises
    ``PeerGone`` naming every worker tried. Thread-safe."""

    def __init__(self, dispatch: str = "least-loaded", *, _native: Any = None) -> None:
        self._p = _native if _native is not None else _wf.WorkerPool.make(dispatch)

    @classmethod
    def from_environment(cls, dispatch: str = "least-loaded") -> "WorkerPool":
        """The workers ``quiver run`` connected this node to (``controls = [...]``);
        ``NotFoundError`` if it has none."""
        return cls(_native=_wf.WorkerPool.from_environment(dispatch))

    def add(self, client: CommandClient) -> None:
        """Takes ``client`` over (it is closed for its former owner); :class:`ControlError`
        if it was closed already."""
        native, client._c = client._native(), None
        self._p.add(native)

    def call(self, type: str, payload: Optional[Dict[str, Any]] = None, *,
             shm_handle: Optional[ShmHandle] = None, timeout: float = 30.0,
             retries: int = 2) -> Envelope:
        """Sends a command to a live worker (by the pool's ``dispatch``) and waits up to
        ``timeout`` seconds for its result; a worker that dies first costs a retry on another
        (at most ``retries``). Raises the result's ``RES_ERROR_V2`` as the matching
        ``quiver`` exception, ``PeerGoneError`` naming the workers tried when none is left,
        ``TimeoutError``."""
        return _envelope(self._p.call(_command(type, payload, shm_handle), timeout, retries))

    async def call_async(self, type: str, payload: Optional[Dict[str, Any]] = None, *,
                         shm_handle: Optional[ShmHandle] = None, timeout: float = 30.0,
                         retries: int = 2) -> Envelope:
        """:meth:`call` for asyncio (on the loop's default executor): many commands may be
        awaited at once."""
        import asyncio
        import functools
        return await asyncio.get_running_loop().run_in_executor(None, functools.partial(
            self.call, type, payload, shm_handle=shm_handle, timeout=timeout, retries=retries))

    @property
    def live_workers(self) -> int:
        """How many of its workers are alive."""
        return self._p.live_workers

    def load(self) -> Dict[str, int]:
        """Commands in flight per live worker."""
        return dict(self._p.load())


def _error_answer(command: Envelope, exc: BaseException) -> Envelope:
    if isinstance(exc, ControlError):
        return make_error(exc.code, exc.message, command.msg_id)
    code = next((c for c, cls in _remote_error_classes().items() if type(exc) is cls), None)
    if code is None:
        code = "INVALID_ARGUMENT" if isinstance(exc, (ValueError, TypeError, KeyError)) \
            else _codec.INTERNAL
    return make_error(code, f"{type(exc).__name__}: {exc}", command.msg_id)


def _remote_error_classes() -> Dict[str, type]:
    from . import _quiver
    return dict(_quiver.error_classes)


class Streams:
    """The result channels a worker publishes on, made by ``CMD_STREAM_START`` (payload
    ``stream``, ``capacity``, ``max_samples``, ``overflow``, ``schema``: the C++ rules of
    ``StartStream``); :meth:`publisher` gives the one for a stream.

    Thread-safety: use it from the worker's serving thread, where its handlers run (its
    publishers, as every publisher, from one thread at a time)."""

    def __init__(self) -> None:
        self._publishers: Dict[str, Any] = {}

    def start(self, command: Envelope) -> Envelope:
        """Answers a ``CMD_STREAM_START``: makes the channel it asks for, keeps its publisher
        and returns the ``RES_OK`` answer. ``AlreadyExistsError`` for a stream that exists,
        ``InvalidArgumentError`` naming the field of a malformed payload."""
        from . import Channel
        # A stream started already is a live channel: StartStream (Channel::Create) refuses it.
        native, answer = _wf.start_stream(serialize(command).encode())
        channel = Channel(native)
        self._publishers[channel.name] = channel.publisher()
        return _envelope(answer)

    def publisher(self, name: str) -> Any:
        """The :class:`quiver.Publisher` of stream ``name``; :class:`ControlError`
        (``NOT_FOUND``) naming the streams there are if it was not started."""
        try:
            return self._publishers[name]
        except KeyError:
            raise ControlError("NOT_FOUND", f"no stream '{name}' was started (there are: "
                               f"{', '.join(sorted(self._publishers)) or 'none'})") from None


class Worker:
    """The commanded end: answers each command of its connection with the handler registered
    for its type, in order. ``handlers`` maps ``CMD_*`` types (the application's own, or
    ``CMD_PROCESS``) to functions taking the command :class:`Envelope` and returning the
    result (an :class:`Envelope` of a ``RES_*`` type, or a dict: the payload of a ``RES_OK``).
    An exception is answered ``RES_ERROR_V2`` (a ``ControlError`` or ``quiver`` error with its
    code, anything else ``INTERNAL`` or ``INVALID_ARGUMENT``). With ``streams``, the worker
    answers ``CMD_STREAM_START`` too. A type with no handler is answered ``UNKNOWN_TYPE``
    naming the types it has; ``CMD_SHUTDOWN`` ends :meth:`serve`.

    >>> Worker({"CMD_EXTRACT_EVIDENCE": extract}, streams=streams).serve()  # under quiver run

    Thread-safety: each ``serve*`` call serves one connection on the calling thread (the
    GIL released while it waits), its handlers one at a time on that thread.
    """

    def __init__(self, handlers: Dict[str, Callable[[Envelope], Any]], *,
                 streams: Optional[Streams] = None) -> None:
        wrapped = {t: self._wrap(fn) for t, fn in handlers.items()}
        if streams is not None:
            wrapped["CMD_STREAM_START"] = self._wrap(streams.start)
        self._w = _wf.Worker(wrapped)

    @staticmethod
    def _wrap(fn: Callable[[Envelope], Any]) -> Callable[[bytes], str]:
        def handle(line: bytes) -> str:
            command = _envelope(line)
            try:
                answer = fn(command)
                if answer is None:
                    answer = {}
                if isinstance(answer, dict):
                    answer = Envelope(type="RES_OK", payload=answer)
            except Exception as exc:  # every failure is an answer; the loop goes on
                answer = _error_answer(command, exc)
            answer.msg_id = command.msg_id
            return serialize(answer)
        return handle

    @property
    def types(self) -> List[str]:
        """The ``CMD_*`` types it has handlers for, sorted."""
        return list(self._w.types)

    def serve(self) -> None:
        """Serves the connection ``quiver run`` gave this node (``QUIVER_CONTROL``: two pipes
        ``R:W``, or ``stdio``) until ``CMD_SHUTDOWN`` or the end of the connection.
        ``NotFoundError`` if it gave none (not under ``quiver run``)."""
        self._w.serve_from_environment()

    def serve_fd(self, fd: int) -> None:
        """Serves a connected socket (owned from now on)."""
        self._w.serve_fd(fd)

    def serve_fds(self, read_fd: int, write_fd: int) -> None:
        """Serves two pipes: commands read from ``read_fd``, results written to ``write_fd``."""
        self._w.serve_fds(read_fd, write_fd)

    def serve_stdio(self) -> None:
        """Serves stdin and stdout (the protocol's stdio mode: commands in on fd 0, results
        out on fd 1) until ``CMD_SHUTDOWN`` or the end of stdin."""
        self._w.serve_stdio()


class Service:
    """A named compute service: ``quiver serve`` runs it when a Flight client asks with a
    ticket ``{"service": NAME, "request": {...}}`` (and lists it in ``list_flights``), and
    streams the batches it yields back to the client from shared memory.

    ``handler`` takes the request (a dict) and returns (or yields) ``pyarrow.RecordBatch``es
    of ``schema``, or a ``pyarrow.Table``. Each batch is published as it comes, waiting for
    room while the client reads slowly; an exception fails the call, and the client gets
    its text as the error. Calls run on threads of their own, one per client.

    A Flight ``do_exchange`` with the ticket's JSON as its command descriptor streams batches
    in: then ``handler`` is called as ``handler(request, inputs)``, ``inputs`` an iterator of
    the client's ``pyarrow.RecordBatch``es (zero-copy views of shared memory), and what it
    yields goes back on the same call as it comes (a transform service).

    >>> def totals(request):
    ...     for part in range(request["parts"]):
    ...         yield compute_part(part)          # a RecordBatch of SCHEMA
    >>> with Service("totals", totals, SCHEMA, description="totals per code") as service:
    ...     service.serve()                        # until Ctrl-C

    The service listens on a Unix socket in this user's private service directory; only this
    user's processes reach it. ``AlreadyExistsError`` if another live process serves NAME.

    Thread-safety: :meth:`close` may be called from any thread; ``handler`` runs on a thread
    per call, so calls from several clients run it at once."""

    def __init__(self, name: str, handler: Callable[..., Any], schema: Any,
                 description: str = "") -> None:
        import pyarrow as pa

        def batches(inputs: Any) -> Any:
            from . import Sample
            while True:
                sample = inputs.next()
                if sample is None:
                    return
                yield Sample(sample).to_arrow()

        def call(request_json: str, results: Any, inputs: Any) -> None:
            request = json.loads(request_json)
            out = handler(request) if inputs is None else handler(request, batches(inputs))
            if out is None:
                return
            if isinstance(out, pa.Table):
                out = out.to_batches()
            elif isinstance(out, pa.RecordBatch):
                out = [out]
            for batch in out:
                results.publish(*batch.__arrow_c_array__())

        self.name = name
        self._s = _wf.Service(name, schema.__arrow_c_schema__(), call, description)

    @property
    def path(self) -> str:
        """The service's socket."""
        return self._s.path

    def start(self) -> "Service":
        """Serves on background threads; returns at once."""
        self._s.start()
        return self

    def serve(self) -> None:
        """Serves until Ctrl-C (KeyboardInterrupt) or :meth:`close` from another thread."""
        import time

        self._s.start()
        try:
            while self._s.running:
                time.sleep(0.1)
        finally:
            self.close()

    def close(self) -> None:
        """Stops serving: waits for the calls in progress and removes the socket."""
        self._s.stop()

    def __enter__(self) -> "Service":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def list_services() -> List[str]:
    """The names of the services this user serves now."""
    return list(_wf.list_services())


class HandleResolver:
    """Turns safe handles into the samples they name (``quiver.Sample``, held while it lives:
    ``to_arrow()`` / ``to_numpy()`` read it zero-copy). It subscribes to each channel it
    watches, so watch a stream before asking for the work that publishes on it. Raises
    ``StaleHandleError`` for a sample that is gone (resolved already, released, dropped, of
    another generation), ``HandleOutOfRangeError`` for a range that is not the sample's,
    ``NotFoundError`` for a channel it does not watch, ``Timeout`` if it has not arrived.

    Thread-safety: may be shared between threads."""

    def __init__(self) -> None:
        self._r = _wf.HandleResolver()

    def watch(self, channel: Any) -> None:
        """Subscribes to ``channel`` (a :class:`quiver.Channel`) so that handles naming it
        resolve: samples published on it from now on. ``InvalidArgumentError`` for a closed
        channel, ``BusyError`` if it has no free subscriber slot."""
        from . import _native
        self._r.watch(_native(channel))

    def resolve(self, handle: ShmHandle, wait: float = 1.0) -> Any:
        """The :class:`quiver.Sample` that safe ``handle`` names, held while it lives,
        waiting up to ``wait`` seconds for it to arrive. ``StaleHandleError``,
        ``HandleOutOfRangeError``, ``NotFoundError`` or ``TimeoutError`` as the class
        says."""
        from . import Sample
        return Sample(self._r.resolve(_to_json(handle.to_json()), wait))

    def forget(self, handle: ShmHandle) -> None:
        """Drops every sample of the handle's channel up to its sequence."""
        self._r.forget(_to_json(handle.to_json()))


def handle_for_last(publisher: Any, format: str = "raw") -> ShmHandle:
    """The safe handle of the sample ``publisher`` published last."""
    raw = json.loads(_wf.handle_for_last(publisher._p, format))
    return ShmHandle(**raw)


def data_ready(publisher: Any, format: str = "raw", **payload: Any) -> Envelope:
    """A ``RES_DATA_READY`` answer naming the sample ``publisher`` published last."""
    body = dict(payload)
    body["shm_handle"] = handle_for_last(publisher, format).to_json()
    return Envelope(type="RES_DATA_READY", payload=body)
