"""Quiver: zero-copy shared-memory channels between processes.

A channel has one publisher and up to 64 subscribers. Samples are written once into shared
memory and read in place: Arrow record batches arrive as ``pyarrow.RecordBatch`` views,
tensors and frames as read-only ``numpy`` views, with no copy.

>>> ch = quiver.Channel.create("ledger", capacity="256MiB", schema=batch.schema)
>>> pub = ch.publisher(); pub.publish(batch)
>>> sub = quiver.Channel.open("ledger").subscriber()
>>> sub.receive(timeout=1.0).to_arrow()

The objects: :class:`Channel` (a handle: ``create``, ``open``, ``open_or_create``,
``attach``), its :class:`Publisher` (``publish``, ``publish_bytes``, ``loan_ndarray``,
``loan_image``, ``loan_audio``) and :class:`Subscriber` (``receive``, iteration, ``async
for``, ``reader()``), and each received :class:`Sample` (``to_arrow``, ``to_numpy``,
``to_polars``). ``quiver.control`` is the control plane (envelopes, commands and results
between processes), ``quiver.flight`` reaches ``quiver serve`` over Arrow Flight.

Errors: every one is a :class:`QuiverError` subclass named for its code
(``NotFoundError``, ``TimeoutError``, ``SchemaMismatchError``, ...; the shorter names
``NotFound``, ``Timeout``, ... are aliases), and also the built-in it resembles:
``NotFoundError`` is a ``LookupError``, ``TimeoutError`` a ``TimeoutError``,
``InvalidArgumentError`` a ``ValueError``. Using a closed object raises
``InvalidArgumentError`` saying which and why.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import threading
import time
import weakref
from typing import (TYPE_CHECKING, Any, AsyncIterator, Callable, Iterator, Literal, Optional,
                    Sequence, TypeVar, Union)

import numpy as np
import pyarrow as pa

try:
    from . import _quiver
except ImportError as _error:  # a pyarrow of another major version, most likely
    from ._pyarrow_check import explain

    _message = explain(_error)
    if _message is None:
        raise
    raise ImportError(_message) from _error
from ._quiver import QuiverError

# One exception class per error code, made from the C++ error table (quiver/status.h
# ErrorCodes()): quiver.NotFoundError, with its earlier name quiver.NotFound kept as an alias.
# Each is also its code's built-in where one fits (NotFoundError is a LookupError).
for _name, _alias in _quiver.error_names:
    globals()[_name] = globals()[_alias] = getattr(_quiver, _name)
# The ones this module raises or catches, named for readers and linters.
InvalidArgument = _quiver.InvalidArgument
PeerGone = _quiver.PeerGone
Timeout = _quiver.Timeout
if TYPE_CHECKING:
    # The names the loop above makes, spelled out for type checkers (test_typing.py checks
    # that they are every name of the error table).
    from ._quiver import (
        AlreadyExists as AlreadyExists, AlreadyExistsError as AlreadyExistsError,
        Busy as Busy, BusyError as BusyError,
        CapacityExceeded as CapacityExceeded, CapacityExceededError as CapacityExceededError,
        ChannelFull as ChannelFull, ChannelFullError as ChannelFullError,
        Evicted as Evicted, EvictedError as EvictedError,
        HandleOutOfRange as HandleOutOfRange, HandleOutOfRangeError as HandleOutOfRangeError,
        InvalidArgumentError as InvalidArgumentError, IoError as IoError,
        NotFound as NotFound, NotFoundError as NotFoundError,
        PeerGoneError as PeerGoneError,
        PermissionDenied as PermissionDenied, PermissionDeniedError as PermissionDeniedError,
        ResourceExhausted as ResourceExhausted, ResourceExhaustedError as ResourceExhaustedError,
        SchemaMismatch as SchemaMismatch, SchemaMismatchError as SchemaMismatchError,
        ShmCorruption as ShmCorruption, ShmCorruptionError as ShmCorruptionError,
        StaleHandle as StaleHandle, StaleHandleError as StaleHandleError,
        TimeoutError as TimeoutError,
        Unauthenticated as Unauthenticated, UnauthenticatedError as UnauthenticatedError,
    )
# The headers of image and audio frames (quiver/frame.h ImageFrameInfo, AudioFrameInfo), as
# Sample.image_info / audio_info return them: formats by their C++ names ("RGBA8", "F32").
ImageFrameInfo = _quiver.ImageFrameInfo
AudioFrameInfo = _quiver.AudioFrameInfo
ImageFrameInfo.__doc__ = """\
An image frame's header (Sample.image_info): ``width`` and ``height`` in pixels, ``stride``
(bytes per row), ``pixel_format`` (its C++ name: ``"RGBA8"``, ``"GRAY8"``, ...) and
``bytes_per_pixel``. Immutable: may be shared between threads."""
AudioFrameInfo.__doc__ = """\
An audio frame's header (Sample.audio_info): ``sample_rate`` (Hz), ``channels``,
``frame_count``, ``sample_format`` (its C++ name: ``"F32"``, ``"S16"``, ...) and
``bytes_per_sample``. Immutable: may be shared between threads."""

__version__ = "0.1.0"
# quiver.TimeoutError (a TimeoutError) stays out of __all__: a star-import must not shadow
# the built-in.
__all__ = [
    "Channel", "Retainer", "release_named_channels", "list_channels", "Publisher", "Subscriber", "Sample",
    "NdarrayLoan", "FrameLoan", "ImageFrameInfo", "AudioFrameInfo", "parse_size", "QuiverError",
    *sorted({n for n, _ in _quiver.error_names} - {"TimeoutError"}),
    *sorted({a for n, a in _quiver.error_names} - {n for n, _ in _quiver.error_names}),
]
del _name, _alias


def parse_size(value: Union[int, str]) -> int:
    """Returns a byte count from a positive int or a string such as ``"256MiB"``,
    ``"4096"`` or ``"3 MB"`` (B, KiB, MiB, GiB, TiB; kB, MB, GB, TB): the grammar of pipeline
    files and of ``quiver serve --capacity``, from the same C++ code.
    ``InvalidArgumentError`` for an int <= 0, a bool or another type, and a string it
    cannot read (an unknown unit, ...)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidArgument(f"a size is an int or a str such as '64MiB', "
                              f"got {type(value).__name__}")
    if isinstance(value, int):
        if value <= 0:
            raise InvalidArgument(f"size must be positive, got {value}")
        return value
    return _quiver.parse_byte_size(value)


class _Closed:
    """Stands in for the native object of a closed Channel, Publisher, Subscriber or Sample
    (or a channel a child of fork could not open again): any use raises
    ``InvalidArgumentError`` saying which and why, as a closed file raises ``ValueError``."""

    __slots__ = ("_message",)

    def __init__(self, message: str) -> None:
        self._message = message

    def __getattr__(self, name: str) -> Any:
        raise InvalidArgument(self._message)


def _native(channel: "Channel") -> _quiver.Channel:
    """The channel's native handle; ``InvalidArgumentError`` if it is closed."""
    native = channel._c
    if isinstance(native, _Closed):
        raise InvalidArgument(native._message)
    return native


def _seconds(timeout: Optional[float], what: str) -> Optional[float]:
    if timeout is not None and (isinstance(timeout, bool) or not timeout >= 0):
        raise InvalidArgument(f"{what} is seconds (a number >= 0) or None, got {timeout!r}")
    return timeout


_T = TypeVar("_T")


async def _poll_async(ready: Callable[[], Optional[_T]], timeout: Optional[float],
                      timed_out: str) -> _T:
    """Awaits ``ready()`` returning something other than None, looking again after a pause
    that grows from 1 to 20 ms (rendezvous happen once per run); ``Timeout`` saying
    ``timed_out`` after ``timeout`` seconds (None: never)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = 0.001
    while True:
        got = ready()
        if got is not None:
            return got
        if deadline is not None and time.monotonic() >= deadline:
            raise Timeout(f"{timed_out} within {timeout:g} s")
        await asyncio.sleep(pause if deadline is None else
                            max(0.0, min(pause, deadline - time.monotonic())))
        pause = min(pause * 2, 0.02)


def _schema_capsule(schema: Any) -> Any:
    if schema is None:
        return None
    if not hasattr(schema, "__arrow_c_schema__"):
        raise InvalidArgument(f"schema must be a pyarrow.Schema (or export __arrow_c_schema__), "
                              f"got {type(schema).__name__}")
    return schema.__arrow_c_schema__()


_Self = TypeVar("_Self", bound="_ClosedByWith")


class _ClosedByWith:
    """``with`` blocks for the objects that have ``close()``: the block's end closes it."""

    __slots__ = ()

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Retainer(_ClosedByWith):
    """The history a :meth:`Channel.retain` keeps; ``close()`` (or the end of a ``with``
    block) lets it go.

    Thread-safety: may be shared between threads."""

    def __init__(self, native: _quiver.Retainer) -> None:
        self._r = native

    @property
    def held(self) -> int:
        """How many samples it holds now."""
        return self._r.held

    def close(self) -> None:
        """Lets the history go: its samples and its subscriber slot are released (``held``
        is 0 from then on). Idempotent."""
        self._r.close()


class Sample(_ClosedByWith):
    """One received sample. Its data stays in shared memory, and the sample stays held (its
    memory is not reused), while this object or any view made from it (pyarrow arrays and
    batches, numpy arrays, polars frames) is alive; :meth:`release` (or the end of a ``with``
    block) lets this object's hold go at once instead of when it is collected. Views made
    before stay valid: each keeps the sample held until it goes.

    Arrow samples: ``to_arrow()``, the Arrow PyCapsule interface (``pa.record_batch(sample)``,
    ``pl.DataFrame(sample)``, ``duckdb``), :meth:`to_polars`. Tensors and frames:
    ``np.asarray(sample)``, ``np.from_dlpack(sample)``, ``.shape``, ``.dtype``. All zero-copy.

    Thread-safety: immutable; its views may be read from any thread. A sample received in a
    process that then forked belongs to the parent: the child's copy raises when used.

    >>> with sub.receive(timeout=1.0) as sample:
    ...     total = pc.sum(sample.to_arrow().column("amount"))"""

    __slots__ = ("_s", "__weakref__")

    def __init__(self, native: _quiver.Sample) -> None:
        self._s: Union[_quiver.Sample, _Closed] = native

    def release(self) -> None:
        """Lets go of the sample: the channel may reuse its memory once every view made from
        it is gone too. Any later use of this object raises ``InvalidArgumentError``.
        Idempotent."""
        if not isinstance(self._s, _Closed):
            self._s = _Closed("this sample was released (Sample.release or the end of its "
                              "with block); keep a view (to_arrow(), to_numpy()) to read "
                              "it longer")

    close = release

    @property
    def released(self) -> bool:
        """True once :meth:`release` (or the end of its ``with`` block) let it go."""
        return isinstance(self._s, _Closed)

    @property
    def kind(self) -> str:
        """``"arrow"``, ``"tensor"``, ``"image"``, ``"audio"`` or ``"raw"``."""
        return self._s.kind

    @property
    def sequence(self) -> int:
        """The publisher's sequence number of this sample (gaps mean drops)."""
        return self._s.sequence

    @property
    def schema_version(self) -> int:
        """For Arrow samples: the channel schema version the batch was written with."""
        return self._s.schema_version

    @property
    def address(self) -> int:
        """Address of the sample's first byte in this process (its bytes span ``size``)."""
        return self._s.address

    @property
    def size(self) -> int:
        """The sample's size in bytes."""
        return self._s.size

    @property
    def offset(self) -> int:
        """Where the sample starts in the channel's data area: the ``offset`` of a control
        envelope's ``shm_handle`` naming it (see ``quiver.control``)."""
        return self._s.offset

    def to_arrow(self) -> pa.RecordBatch:
        """The batch as a ``pyarrow.RecordBatch`` whose buffers are shared memory (no copy).
        ``InvalidArgumentError`` for a sample that is not an Arrow batch."""
        return pa.RecordBatch._import_from_c_capsule(*self._s.arrow_capsules())

    def to_numpy(self) -> np.ndarray:
        """A read-only numpy view: a tensor with its shape, an image as uint8 (height, width,
        channels) or (height, width) for GRAY8 (uint8) and GRAY16 (uint16), audio as
        (frames, channels) of its sample format's dtype, raw bytes as uint8. No copy.
        ``InvalidArgumentError`` for an Arrow sample (use :meth:`to_arrow`)."""
        return self._s.to_numpy()

    @property
    def image_info(self) -> ImageFrameInfo:
        """An image frame's header: ``width``, ``height``, ``pixel_format`` (``"RGBA8"``, ...),
        ``stride`` (bytes per row), ``bytes_per_pixel``. ``InvalidArgumentError`` for a
        sample of another kind."""
        return self._s.image_info

    @property
    def audio_info(self) -> AudioFrameInfo:
        """An audio frame's header: ``sample_rate`` (Hz), ``channels``, ``sample_format``
        (``"F32"``, ...), ``frame_count``, ``bytes_per_sample``. ``InvalidArgumentError`` for
        a sample of another kind."""
        return self._s.audio_info

    def to_polars(self) -> Any:
        """The batch as a ``polars.DataFrame`` over shared memory (polars copies only the
        columns it must convert). ``pl.DataFrame(sample)`` is the same; note that
        ``pl.from_arrow(sample)`` gives a struct Series, as polars does for every Arrow
        object that is not pyarrow's own. ``InvalidArgumentError`` as :meth:`to_arrow`."""
        import polars as pl
        return pl.DataFrame(self.to_arrow())

    @property
    def shape(self) -> tuple[int, ...]:
        """A tensor's shape; an image's (height, width[, channels]); audio's (frames,
        channels); raw bytes' (size,). ``InvalidArgumentError`` for an Arrow sample."""
        return self._numpy_view().shape

    @property
    def dtype(self) -> np.dtype[Any]:
        """The numpy dtype of :meth:`to_numpy`'s view. ``InvalidArgumentError`` for an
        Arrow sample."""
        return self._numpy_view().dtype

    def _numpy_view(self) -> np.ndarray:
        if self.kind == "arrow":
            raise InvalidArgument("an Arrow sample has columns, not a shape or a dtype: use "
                                  "to_arrow()")
        return self._s.to_numpy()

    def __array__(self, dtype: Any = None, copy: Optional[bool] = None) -> np.ndarray:
        """``np.asarray(sample)``: the read-only view of :meth:`to_numpy` (no copy), a copy if
        ``copy=True`` or if ``dtype`` differs (refused with ``copy=False``)."""
        view = self._numpy_view()
        if dtype is not None and np.dtype(dtype) != view.dtype:
            if copy is False:
                raise ValueError(f"a {view.dtype} sample cannot be viewed as {np.dtype(dtype)} "
                                 f"without a copy")
            return view.astype(dtype)
        return view.copy() if copy else view

    def __dlpack__(self, *, stream: Any = None, max_version: Any = None, dl_device: Any = None,
                   copy: Optional[bool] = None) -> Any:
        """DLPack export of a tensor or frame (``np.from_dlpack``, ``torch.from_dlpack``): the
        shared memory itself, flagged read-only (DLPack 1.0; consumers that ask for an older
        version get ``BufferError``, as numpy gives for any read-only array)."""
        kwargs: dict[str, Any] = {}
        if max_version is not None:
            kwargs["max_version"] = max_version
        if dl_device is not None:
            kwargs["dl_device"] = dl_device
        if copy is not None:
            kwargs["copy"] = copy
        return self._numpy_view().__dlpack__(stream=stream, **kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        return (1, 0)  # kDLCPU, device 0: shared memory is host memory

    def __arrow_c_array__(self, requested_schema: Any = None) -> tuple[Any, Any]:
        if requested_schema is not None:
            capsules: tuple[Any, Any] = self.to_arrow().__arrow_c_array__(requested_schema)
            return capsules
        return self._s.arrow_capsules()

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        batch = self.to_arrow()
        reader = pa.RecordBatchReader.from_batches(batch.schema, [batch])
        return reader.__arrow_c_stream__(requested_schema)

    def __repr__(self) -> str:
        if self.released:
            return "<quiver.Sample released>"
        return f"<quiver.Sample {self.kind} #{self.sequence} {self.size} bytes>"


_DTYPE_NAMES: dict[Any, str] = {}


def _dtype_name(dtype: Any) -> str:
    """np.dtype(dtype).name, cached: it costs more than a small loan itself."""
    try:
        return _DTYPE_NAMES[dtype]
    except (KeyError, TypeError):
        name: str = np.dtype(dtype).name
        if len(_DTYPE_NAMES) < 256:
            try:
                _DTYPE_NAMES[dtype] = name
            except TypeError:  # an unhashable dtype spec (a list of fields, say)
                pass
        return name


class NdarrayLoan:
    """The context manager of Publisher.loan_ndarray: loans on entry, publishes on a normal
    exit, gives the space back on an exception. (A class rather than a generator-based
    context manager: a small loan costs about as much as the generator machinery.) Entering
    it raises what the loan does: ``InvalidArgumentError`` on an Arrow channel or for a
    dtype a tensor cannot have, ``CapacityExceededError`` for more than the channel holds,
    ``TimeoutError`` if no room came within the publisher's ``loan_timeout``.

    Thread-safety: as its publisher, use it from one thread at a time."""

    __slots__ = ("_publisher", "_shape", "_dtype", "_loan", "_array")

    def __init__(self, publisher: Union[_quiver.Publisher, _Closed], shape: tuple[int, ...],
                 dtype: str) -> None:
        self._publisher, self._shape, self._dtype = publisher, shape, dtype
        self._loan: Optional[_quiver.TensorLoan] = None
        self._array: Optional[np.ndarray] = None

    def __enter__(self) -> np.ndarray:
        if self._loan is not None:
            raise InvalidArgument("this loan_ndarray() was entered already")
        loan = self._loan = self._publisher.loan_tensor(list(self._shape), self._dtype)
        array = self._array = loan.array
        return array

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Literal[False]:
        loan, self._loan = self._loan, None
        assert loan is not None and self._array is not None  # set by __enter__
        # Published, the array belongs to the subscribers; discarded, to the next loan: either
        # way it is made read-only (in C: `flags.writeable = False` costs more than a publish).
        if exc_type is not None:
            loan.discard(self._array)
        else:
            loan.publish(self._array)
        return False


class FrameLoan:
    """The context manager of Publisher.loan_image and Publisher.loan_audio: loans a frame on
    entry and yields its pixels or PCM as a writable numpy array in shared memory; publishes
    it on a normal exit, gives the space back on an exception. Entering it raises what the
    loan does: ``InvalidArgumentError`` for a format or size a frame cannot have or on an
    Arrow channel, ``CapacityExceededError``, ``TimeoutError`` (the publisher's
    ``loan_timeout``).

    Thread-safety: as its publisher, use it from one thread at a time."""

    __slots__ = ("_loan_frame", "_args", "_loan", "_array")

    def __init__(self, loan_frame: Callable[..., Union[_quiver.ImageLoan, _quiver.AudioLoan]],
                 args: tuple[Any, ...]) -> None:
        self._loan_frame, self._args = loan_frame, args
        self._loan: Optional[Union[_quiver.ImageLoan, _quiver.AudioLoan]] = None
        self._array: Optional[np.ndarray] = None

    def __enter__(self) -> np.ndarray:
        if self._loan is not None:
            raise InvalidArgument("this frame loan was entered already")
        loan = self._loan = self._loan_frame(*self._args)
        array = self._array = loan.array
        return array

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Literal[False]:
        loan, self._loan = self._loan, None
        assert loan is not None and self._array is not None  # set by __enter__
        # Published, it belongs to the subscribers; discarded, to the next loan (read-only
        # either way, as in NdarrayLoan).
        if exc_type is not None:
            loan.discard(self._array)
        else:
            loan.publish(self._array)
        return False


class Publisher(_ClosedByWith):
    """The one writer of a channel (:meth:`Channel.publisher`). :meth:`close` (or the end of
    a ``with`` block) ends it: subscribers get what it published, then ``PeerGoneError``.

    Thread-safety: thread-compatible, use it from one thread at a time. A publisher made
    before a fork belongs to the parent: in the child it raises ``InvalidArgumentError``.

    >>> with channel.publisher() as pub:
    ...     pub.wait_for_subscribers(2, timeout=10)  # none of them misses the first batch
    ...     pub.publish(batch)"""

    def __init__(self, channel: "Channel", loan_timeout: Optional[float] = None) -> None:
        self._channel = channel
        self._p: Union[_quiver.Publisher, _Closed] = _quiver.Publisher(_native(channel),
                                                                       loan_timeout)

    @property
    def subscriber_count(self) -> int:
        """How many subscribers samples are delivered to now."""
        return self._p.subscriber_count

    @property
    def expected_subscribers(self) -> int:
        """Under ``quiver run``, how many of the pipeline's nodes subscribe to this channel
        (the pipeline file says it once; the supervisor tells the node); elsewhere 1."""
        return self._p.expected_subscribers

    def wait_for_subscribers(self, count: Optional[int] = None,
                             timeout: Optional[float] = None) -> None:
        """Waits until at least ``count`` subscribers are attached (without the GIL; Ctrl-C
        interrupts it), so that none of them misses the first sample. ``count`` defaults to
        :attr:`expected_subscribers`: in a pipeline node, every node that subscribes.
        ``TimeoutError`` (``quiver.Timeout``) saying how many came, after ``timeout``
        seconds (None: no limit)."""
        wanted = self.expected_subscribers if count is None else int(count)
        self._p.wait_for_subscribers(wanted, _seconds(timeout, "timeout"))

    async def wait_for_subscribers_async(self, count: Optional[int] = None,
                                         timeout: Optional[float] = None) -> None:
        """As :meth:`wait_for_subscribers`, for asyncio: the event loop runs meanwhile."""
        wanted = self.expected_subscribers if count is None else int(count)
        await _poll_async(lambda: True if self._p.subscriber_count >= wanted else None,
                          _seconds(timeout, "timeout"),
                          f"channel '{self._channel.name}' did not get {wanted} subscribers")

    def close(self) -> None:
        """Stops publishing: subscribers receive what was published, then ``PeerGoneError``
        (once no loan of it is still open). Any later use raises ``InvalidArgumentError``.
        Idempotent."""
        if not isinstance(self._p, _Closed):
            self._p = _Closed(f"this publisher of channel '{self._channel.name}' is closed")

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ended it."""
        return isinstance(self._p, _Closed)

    def publish(self, data: Any) -> int:
        """Publishes Arrow data: a ``pyarrow.RecordBatch`` or ``Table``, or any object that
        exports ``__arrow_c_array__`` / ``__arrow_c_stream__`` (a polars DataFrame, ...).
        The buffers are copied into shared memory once. Columns holding the channel's values
        in another layout (polars exports large or view strings, say) are cast to it first,
        by the same rule as every publish (C++, Flight DoPut, bridge). Returns the number of
        samples published (one per record batch). ``SchemaMismatchError`` for a batch the
        channel's schema (and its ``evolution``) does not take, ``InvalidArgumentError`` for
        data that is not Arrow or a channel without a schema, ``CapacityExceededError`` for a
        batch larger than the channel can ever hold, ``TimeoutError`` if no room came within
        the publisher's ``loan_timeout``."""
        if hasattr(data, "__arrow_c_array__") and not isinstance(data, pa.Table):
            self._p.publish_c_array(*data.__arrow_c_array__())
            return 1
        if hasattr(data, "__arrow_c_stream__"):
            return self._p.publish_c_stream(data.__arrow_c_stream__())
        raise InvalidArgument(f"cannot publish a {type(data).__name__}: expected Arrow data "
                              f"(__arrow_c_array__ or __arrow_c_stream__)")

    def publish_bytes(self, data: bytes) -> None:
        """Publishes raw bytes (one copy). ``InvalidArgumentError`` on an Arrow channel;
        ``CapacityExceededError`` and ``TimeoutError`` as :meth:`publish`."""
        self._p.publish_bytes(bytes(data))

    def loan_ndarray(self, shape: Union[int, Sequence[int]], dtype: Any) -> "NdarrayLoan":
        """Loans a tensor sample and yields it as a writable numpy array living in shared
        memory; it is published when the block exits normally, discarded on an exception.
        ``dtype`` is a fixed-width integer or float type (uint8 ... float64). Entering the
        block raises ``InvalidArgumentError`` on an Arrow channel or for another dtype,
        ``CapacityExceededError`` and ``TimeoutError`` as :meth:`publish`.

        >>> with pub.loan_ndarray((1080, 1920, 4), np.uint8) as frame:
        ...     frame[:] = pixels          # written in place, no further copy
        """
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        return NdarrayLoan(self._p, shape, _dtype_name(dtype))

    def loan_image(self, width: int, height: int, pixel_format: str,
                   stride: Optional[int] = None) -> FrameLoan:
        """Loans an image frame and yields its pixels as a writable numpy array in shared
        memory: uint8 (height, width, channels), or (height, width) for GRAY8 (uint8) and
        GRAY16 (uint16). Published when the block exits normally, discarded on an exception.
        ``pixel_format`` is a C++ name, any case: GRAY8, GRAY16, RGB8, BGR8, RGBA8, BGRA8.
        ``stride`` (bytes per row) defaults to tight rows; padding bytes are not zeroed.
        Frames go on a channel created without a schema (else ``InvalidArgumentError``).

        >>> with pub.loan_image(1920, 1080, "RGBA8") as pixels:
        ...     pixels[:] = render()       # written in place, no further copy
        """
        return FrameLoan(self._p.loan_image, (width, height, pixel_format, stride))

    def publish_image(self, pixels: Any, pixel_format: str, stride: Optional[int] = None) -> None:
        """Publishes a copy of ``pixels`` (one copy, any strides) as an image frame. Its dtype
        and shape must be the ones ``loan_image`` yields for ``pixel_format`` (a one-channel
        image may also be (height, width, 1)); else ``InvalidArgumentError``."""
        self._p.publish_image(np.asarray(pixels), pixel_format, stride)

    def loan_audio(self, frame_count: int, sample_rate: int, channels: int,
                   sample_format: str) -> FrameLoan:
        """Loans an audio frame and yields its PCM as a writable numpy array (frame_count,
        channels), interleaved, of the sample format's dtype: U8 uint8, S16 int16, S32 int32,
        F32 float32, F64 float64 (names in any case). Published when the block exits
        normally, discarded on an exception.

        >>> with pub.loan_audio(480, 48000, 2, "F32") as pcm:   # 10 ms of stereo
        ...     pcm[:] = capture()
        """
        return FrameLoan(self._p.loan_audio, (frame_count, sample_rate, channels, sample_format))

    def publish_audio(self, pcm: Any, sample_rate: int,
                      sample_format: Optional[str] = None) -> None:
        """Publishes a copy of ``pcm``, (frames, channels) or (frames,) for mono, as an audio
        frame (one copy, any strides). ``sample_format`` defaults to the one of ``pcm``'s
        dtype (float32: F32, int16: S16, ...); given, it must match that dtype, else
        ``InvalidArgumentError``."""
        self._p.publish_audio(np.asarray(pcm), sample_rate, sample_format)

    def publish_msgspec(self, records: Any) -> None:
        """Publishes records of a schema still in flux: ``records`` (a list of msgspec
        Structs, dicts or tuples, or bytes already msgpack-encoded) is encoded with msgspec
        and turned into an Arrow batch of the channel schema in C++ (fields bound by name).
        Errors as :meth:`publish`; ``ImportError`` without msgspec installed."""
        import msgspec  # optional dependency

        data = records if isinstance(records, (bytes, bytearray, memoryview)) else \
            msgspec.msgpack.encode(records)
        self._p.publish_msgpack(bytes(data))


class Subscriber(_ClosedByWith):
    """One reader of a channel (:meth:`Channel.subscriber`); receives every sample published
    after it attached (with ``from_oldest``, the channel's backlog first). Iterate it (also
    with ``async for``) until the publisher closes, or read it as a
    ``pyarrow.RecordBatchReader`` (:meth:`reader`). :meth:`close` (or the end of a ``with``
    block) gives its slot back; samples it received stay valid while they are held.

    Thread-safety: thread-compatible, use it from one thread at a time (its samples may go
    to other threads). A subscriber made before a fork belongs to the parent: in the child
    it raises ``InvalidArgumentError``; subscribe again there.

    >>> with quiver.Channel.open("ledger", wait=10).subscriber() as sub:
    ...     for sample in sub:
    ...         handle(sample.to_arrow())"""

    def __init__(self, channel: "Channel", reader_schema: Optional[pa.Schema] = None,
                 validate: str = "structure", spin_us: float = 20.0,
                 from_oldest: bool = False, follow_restarts: bool = True) -> None:
        if validate not in ("structure", "full"):
            raise InvalidArgument("validate must be 'structure' or 'full'")
        self._channel = channel
        self._reader_schema = reader_schema
        self._s: Union[_quiver.Subscriber, _Closed] = _quiver.Subscriber(
            _native(channel), _schema_capsule(reader_schema), validate == "full", spin_us,
            bool(from_oldest), bool(follow_restarts))

    def close(self) -> None:
        """Leaves the channel: the publisher stops queueing samples for it (the slot is free
        again once the samples it holds are released). Any later use raises
        ``InvalidArgumentError``. Idempotent."""
        if not isinstance(self._s, _Closed):
            self._s = _Closed(f"this subscriber of channel '{self._channel.name}' is closed")

    @property
    def closed(self) -> bool:
        """True once :meth:`close` gave its slot back."""
        return isinstance(self._s, _Closed)

    def reader(self) -> pa.RecordBatchReader:
        """The channel as a ``pyarrow.RecordBatchReader``: each sample's batch (zero-copy),
        until the publisher closes. For DuckDB (``duckdb.from_arrow(reader)``), polars,
        pyarrow datasets and ``pyarrow.flight`` alike, anything that takes a stream. Its
        schema is the reader schema this subscriber was made with, else the channel's
        schema now (a channel whose schema may grow needs a reader schema, else a batch of
        a later version ends the stream with ``ArrowInvalid``). ``InvalidArgumentError``
        on a channel without a schema."""
        schema = self._reader_schema or self._channel.schema
        if schema is None:
            raise InvalidArgument(f"channel '{self._channel.name}' carries no Arrow schema, so "
                                  f"it cannot be read as a RecordBatchReader")
        return pa.RecordBatchReader.from_batches(
            schema, (sample.to_arrow() for sample in self))

    def receive(self, timeout: Optional[float] = None) -> Sample:
        """Waits for the next sample (without holding the GIL; Ctrl-C interrupts it).
        Raises ``Timeout`` after ``timeout`` seconds, ``PeerGone`` once the publisher is
        gone and every sample it sent was received, ``EvictedError`` once the channel's
        ``stall_timeout`` detached this subscriber."""
        return Sample(self._s.receive(timeout))

    def try_receive(self) -> Optional[Sample]:
        """The next sample if one is queued, else None. ``PeerGoneError`` and ``EvictedError``
        as :meth:`receive`."""
        native = self._s.try_receive()
        return None if native is None else Sample(native)

    def fileno(self) -> int:
        """A file descriptor that polls readable when samples may be queued."""
        return self._s.notify_fd()

    @property
    def missed(self) -> int:
        """Samples dropped (drop-oldest channels) before this subscriber received them."""
        return self._s.missed

    @property
    def awaiting_restart(self) -> bool:
        """True once this subscriber was told its publisher died and it now waits for one
        restarted under the channel's name (``follow_restarts``)."""
        return self._s.awaiting_restart

    @property
    def restarts_followed(self) -> int:
        """How many restarted publishers it followed (each a new channel; sequences start
        again at 0)."""
        return self._s.restarts_followed

    def __iter__(self) -> Iterator[Sample]:
        """Yields samples until the publisher closes. A publisher of a named channel that
        dies does not end the iteration: it goes on with one restarted under the same name
        (``quiver.Channel.create`` replaces the channel), so a long-lived consumer survives a
        producer's crash and restart. With ``follow_restarts=False`` a death ends it too."""
        while True:
            try:
                yield self.receive()
            except PeerGone:
                if not self.awaiting_restart:
                    return

    async def areceive(self, timeout: Optional[float] = None) -> Sample:
        """Awaits the next sample, driven by the channel's file descriptor (no polling).
        ``TimeoutError`` (``quiver.Timeout``) after ``timeout`` seconds (None: no limit);
        ``PeerGoneError`` and ``EvictedError`` as :meth:`receive`."""
        loop = asyncio.get_running_loop()

        async def wait() -> Sample:
            while True:
                sample = self.try_receive()
                if sample is not None:
                    return sample
                fd = self.fileno()  # another channel's after following a restarted publisher
                ready: asyncio.Future[None] = loop.create_future()

                def wake() -> None:
                    if not ready.done():
                        ready.set_result(None)

                loop.add_reader(fd, wake)
                try:
                    # A publisher killed with -9 sends no signal: look again every 100 ms.
                    await asyncio.wait_for(ready, 0.1)
                except asyncio.TimeoutError:
                    try:
                        return Sample(self._s.receive(0.0))
                    except Timeout:
                        pass
                finally:
                    loop.remove_reader(fd)

        if timeout is None:
            return await wait()
        try:
            return await asyncio.wait_for(wait(), timeout)
        except asyncio.TimeoutError:
            raise Timeout(f"no sample on channel '{self._channel.name}' within {timeout:g} s") \
                from None

    async def __aiter__(self) -> AsyncIterator[Sample]:
        """As iteration: until the publisher closes (see ``__iter__`` on restarts)."""
        while True:
            try:
                yield await self.areceive()
            except PeerGone:
                if not self.awaiting_restart:
                    return
                await asyncio.sleep(0.02)  # until a restarted publisher shows up


def _on_sigterm_release_names() -> None:
    """A process killed by a plain SIGTERM (``kill``, ``docker stop``) runs no destructor, so
    the named channels it was the last to hold stayed in RAM until someone opened their
    name again. On the first named channel, if SIGTERM has no handler of the program's own
    (the default action), Quiver installs one that removes those names, then dies of the
    signal as before. A handler the program installs later replaces it; one installed
    earlier is left alone (call ``quiver.release_named_channels()`` from it)."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def handler(signum: int, frame: Any) -> None:
        _quiver.release_named_segments()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, handler)


def list_channels() -> list[dict[str, Any]]:
    """Every channel of this user, as ``quiver ls`` lists them: its named channels, sorted by
    name, then those of its running pipelines (reached through their supervisors). Each is a
    dict in the shape of ``quiver ls --json``: ``name``; ``state``, one of ``"live"``,
    ``"stale"`` (every process that had it open died; ``quiver clean`` removes it) or
    ``"unreadable"`` (with ``error``); ``pipeline``, the supervisor socket, for a running
    pipeline's channel; and for a live one the counters of ``Channel.stats()``. A channel
    directory that cannot be looked at at all raises ``QuiverError`` saying why."""
    channels, problems = _quiver.list_channels_json()
    if problems and not channels:
        raise QuiverError("; ".join(problems))
    return [json.loads(text) for text in channels]


def release_named_channels() -> None:
    """Removes the names of the named channels this process holds and is the last to hold,
    as closing them would (they stay usable until it exits). For a SIGTERM handler of the
    program's own; Quiver installs one that does this when the program has none."""
    _quiver.release_named_segments()


# Every open Channel of this process, to be attached again in a child after fork.
_channels: "weakref.WeakSet[Channel]" = weakref.WeakSet()


def _attach_again_after_fork() -> None:
    """In a child of fork: every channel handle it inherited is the parent's (its locks are
    the parent's), so each is attached anew, by name or through its fd; publishers,
    subscribers and samples made before the fork stay the parent's and raise when used."""
    for channel in list(_channels):
        channel._attach_again()


os.register_at_fork(after_in_child=_attach_again_after_fork)


def _open_pickled(name: str) -> "Channel":
    return Channel.open(name)


def _from_pickled_fd(dup: Any) -> "Channel":
    fd = dup.detach()
    try:
        return Channel.from_fd(fd)
    finally:
        os.close(fd)


class Channel(_ClosedByWith):
    """A handle to a channel in shared memory. Cheap to keep; the channel's memory is freed
    when the last process holding it closes it (a named channel's name goes with it).

    Rendezvous: :meth:`open` with ``wait`` (the consumer may start first),
    :meth:`open_or_create` (either may), :meth:`Publisher.wait_for_subscribers` (no reader
    misses the first sample); each has an asyncio form.

    Lifetimes: :meth:`close` or a ``with`` block lets this handle go; publishers and
    subscribers made from it hold the channel themselves until they are closed too.

    Processes: a channel pickles by name (a named one) or by passing its fd (a memfd, as
    ``multiprocessing`` does for ``spawn`` and queues), so it can be an argument of a
    ``multiprocessing.Process``. After ``fork``, a child's inherited channel handles are
    attached again in the child automatically; publishers, subscribers and samples made
    before the fork stay the parent's (using them raises ``InvalidArgumentError``).

    Thread-safety: a channel handle may be shared between threads; each publisher and
    subscriber is used from one thread at a time."""

    def __init__(self, native: _quiver.Channel) -> None:
        self._c: Union[_quiver.Channel, _Closed] = native
        self._name = native.name
        _channels.add(self)
        if native.named:
            _on_sigterm_release_names()

    @classmethod
    def create(cls, name: str, capacity: Union[int, str] = "64MiB", *,
               schema: Optional[pa.Schema] = None, max_samples: int = 256,
               max_subscribers: int = 16, overflow: str = "block",
               memfd: bool = False, stall_timeout: Optional[float] = None,
               evolution: str = "strict") -> "Channel":
        """Creates a channel. With ``schema`` it carries Arrow batches of that schema (stored
        once). ``evolution`` says whether batches may differ from it: ``"strict"`` (the
        default) takes only batches of the schema's fields, refusing a misspelt column
        (``SchemaMismatchError`` naming the field it probably meant) instead of letting its
        readers get nulls; ``"add-nullable"`` lets the schema grow by nullable fields, each
        change a new version that readers bound by name read on. Tensors, frames and raw
        bytes go on a channel without a schema. ``overflow`` is ``"block"`` (the default:
        nothing is lost) or ``"drop-oldest"``. ``memfd=True`` makes an anonymous channel
        reachable only through its ``fd``. ``stall_timeout`` (seconds; ``block`` only)
        evicts a subscriber that keeps the channel full that long: a stopped or hung reader
        then costs the publisher at most that long, and its next receive raises
        ``EvictedError``. ``AlreadyExistsError`` if a live channel has the name;
        ``InvalidArgumentError`` for an argument it cannot take (a name with a character
        outside ``[A-Za-z0-9._-]``, an unknown ``overflow``, ...)."""
        return cls(_quiver.Channel.create(name, parse_size(capacity), max_samples,
                                          max_subscribers, overflow, memfd,
                                          _schema_capsule(schema), stall_timeout, evolution))

    @classmethod
    def open_or_create(cls, name: str, capacity: Union[int, str] = "64MiB", *,
                       schema: Optional[pa.Schema] = None, max_samples: int = 256,
                       max_subscribers: int = 16, overflow: str = "block",
                       stall_timeout: Optional[float] = None,
                       evolution: str = "strict") -> "Channel":
        """Opens named channel ``name`` if it exists, else creates it as :meth:`create` would:
        for two processes either of which may start first (a race between them is settled:
        one creates, the other opens). The other arguments count only when it creates;
        ``SchemaMismatchError`` if an existing channel never had exactly ``schema``."""
        return cls(_quiver.Channel.open_or_create(name, parse_size(capacity), max_samples,
                                                  max_subscribers, overflow,
                                                  _schema_capsule(schema), stall_timeout,
                                                  evolution))

    @classmethod
    def open(cls, name: str, *, wait: Union[bool, float] = False) -> "Channel":
        """Attaches to an existing named channel. ``NotFoundError`` if there is none, unless
        ``wait``: then it waits for the channel to be created, ``wait`` seconds (``True``: as
        long as it takes; Ctrl-C interrupts), and raises ``TimeoutError`` (``quiver.Timeout``)
        if it was not. Under ``quiver run``, a pipeline channel of the node is attached by
        its name too."""
        if wait is False:
            return cls(_quiver.Channel.open(name))
        seconds = None if wait is True else _seconds(wait, "wait")
        return cls(_quiver.Channel.open_waiting(name, seconds))

    @classmethod
    async def open_async(cls, name: str, timeout: Optional[float] = None) -> "Channel":
        """Awaits named channel ``name`` being created, then attaches to it (the event loop
        runs meanwhile); ``TimeoutError`` (``quiver.Timeout``) after ``timeout`` seconds
        (None: no limit)."""
        def attempt() -> Optional[Channel]:
            try:
                return cls(_quiver.Channel.open(name))
            except _quiver.NotFoundError:
                return None
        return await _poll_async(attempt, _seconds(timeout, "timeout"),
                                 f"channel '{name}' was not created")

    def close(self) -> None:
        """Lets this handle go (the channel's memory goes with the last handle, publisher and
        subscriber of every process). Any later use of this object raises
        ``InvalidArgumentError``. Idempotent."""
        if not isinstance(self._c, _Closed):
            self._c = _Closed(f"channel '{self._name}' is closed")
            _channels.discard(self)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` let this handle go."""
        return isinstance(self._c, _Closed)

    def __reduce__(self) -> tuple[Any, ...]:
        native = self._c
        if native.named:
            return (_open_pickled, (self._name,))
        from multiprocessing.reduction import DupFd
        return (_from_pickled_fd, (DupFd(native.fd),))

    def _attach_again(self) -> None:
        old = self._c
        if isinstance(old, _Closed):
            return
        try:
            self._c = (_quiver.Channel.open(self._name) if old.named else
                       _quiver.Channel.from_fd(old.fd))
        except QuiverError as e:
            self._c = _Closed(f"channel '{self._name}' was attached before this process "
                              f"forked, and could not be attached again in it: {e}")

    @classmethod
    def from_fd(cls, fd: int) -> "Channel":
        """Attaches to a channel whose segment fd this process holds (e.g. inherited).
        ``PermissionDeniedError`` for a file other users may open, ``IoError`` for an fd
        that is not open, ``ShmCorruptionError`` for one that is not a channel."""
        return cls(_quiver.Channel.from_fd(fd))

    @classmethod
    def attach(cls, name: str) -> "Channel":
        """Attaches as a pipeline node should: through the fd the supervisor handed down
        (environment ``QUIVER_CHANNELS="name=fd,..."``), else by name. ``NotFoundError``
        if neither has it."""
        return cls(_quiver.Channel.attach(name))

    @staticmethod
    def named_directory() -> str:
        """The private directory (mode 0700) where this user's named channels live:
        ``/dev/shm/quiver-<uid>`` (or ``$QUIVER_SHM_DIR/quiver-<uid>``). Other users can neither
        list it nor plant a name in it."""
        return _quiver.named_directory()

    @staticmethod
    def named_path(name: str) -> str:
        """The file of the named channel ``name`` (whether or not it exists)."""
        return _quiver.named_path(name)

    @property
    def name(self) -> str:
        """The channel's name."""
        return self._name

    @property
    def evolution(self) -> Optional[str]:
        """``"strict"`` or ``"add-nullable"`` (see :meth:`create`); None without a schema."""
        return self._c.evolution

    @property
    def capacity(self) -> int:
        """Bytes of sample data it holds (the ``capacity`` it was created with)."""
        return self._c.capacity

    @property
    def fd(self) -> int:
        """The file descriptor of its shared memory (what :meth:`from_fd` attaches to)."""
        return self._c.fd

    @property
    def schema(self) -> Optional[pa.Schema]:
        """The newest Arrow schema, or None for an untyped channel."""
        capsule = self._c.schema_capsule(0)
        return None if capsule is None else pa.Schema._import_from_c_capsule(capsule)

    @property
    def schema_versions(self) -> int:
        """How many schema versions it has (0 for an untyped channel)."""
        return self._c.type_versions

    def schema_version(self, version: int) -> pa.Schema:
        """Schema version ``version`` (1-based; 0: the newest). ``NotFoundError`` for a
        version it does not have."""
        return pa.Schema._import_from_c_capsule(self._c.schema_capsule(version))

    def stats(self) -> dict[str, Any]:
        """Counters and fill level, readable from any attached process: the shape of
        ``quiver ls --json`` (``published``, ``dropped``, ``publisher_waiting_s``,
        ``evicted_subscribers``, and per subscriber ``received``, ``missed``, ``queued``,
        ``alive``, ``evicted_after_s``, ...)."""
        stats: dict[str, Any] = json.loads(self._c.stats_json())
        return stats

    def retain(self, samples: Optional[int] = None,
               seconds: Optional[float] = None) -> "Retainer":
        """Keeps the channel's last ``samples`` samples, and/or those of the last ``seconds``,
        held while the returned :class:`Retainer` lives, so that a subscriber joining later
        with ``from_oldest=True`` (a Flight ``do_get`` of ``NAME?from=oldest``) still gets
        them. It takes one subscriber slot and never holds the publisher back: it keeps at
        most half of the channel's samples and capacity. ``InvalidArgumentError`` without
        a limit.

        >>> with channel.retain(samples=10):
        ...     ...                      # late joiners start with the last 10"""
        return Retainer(self._c.retain(samples or 0, seconds or 0.0))

    def publisher(self, loan_timeout: Optional[float] = None) -> Publisher:
        """Becomes the channel's publisher (``Busy`` if there already is one, in any
        process). ``loan_timeout`` bounds, in seconds, how long each publish or loan waits
        for room in a full ``block`` channel before it raises ``TimeoutError`` (None: as
        long as it takes; Ctrl-C interrupts)."""
        return Publisher(self, loan_timeout)

    def subscriber(self, reader_schema: Optional[pa.Schema] = None, *,
                   validate: str = "structure", spin_us: float = 20.0,
                   from_oldest: bool = False, follow_restarts: bool = True) -> Subscriber:
        """Takes a subscriber slot. ``reader_schema`` binds the fields this reader needs by
        name (``SchemaMismatch`` if the channel cannot provide them); ``validate="full"``
        also checks every offset and string of every batch: a defence against a *buggy*
        producer of this user, not a hostile one, which could change the bytes after the
        check (untrusted data enters only through ``quiver serve`` and ``quiver bridge``,
        which validate it; see docs/RELIABILITY.md, "Who is trusted").
        ``from_oldest=True`` starts with the channel's backlog: the samples it still keeps
        for other subscribers, oldest first (the longest gap-free run that joins up with
        what is published next; empty if nobody holds anything), then goes on live.
        ``follow_restarts`` (named channels): after a publisher that died, go on with one
        restarted under the same name (see ``Subscriber.__iter__``). ``BusyError`` if every
        subscriber slot is taken; ``InvalidArgumentError`` for a ``validate`` other than
        ``"structure"`` or ``"full"``."""
        return Subscriber(self, reader_schema, validate, spin_us, from_oldest, follow_restarts)

    def __repr__(self) -> str:
        if self.closed:
            return f"<quiver.Channel '{self.name}' closed>"
        return f"<quiver.Channel '{self.name}' {self.capacity} bytes>"
