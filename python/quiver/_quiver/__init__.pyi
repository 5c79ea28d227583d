"""Quiver's native core; use the `quiver` package, not this module."""

import builtins
from collections.abc import Sequence
from typing import Annotated, Any, TypeAlias

from numpy.typing import NDArray

from quiver._quiver import envelope as envelope, workflow as workflow


class QuiverError(Exception):
    """Base class of every Quiver error."""

class InvalidArgumentError(QuiverError, ValueError):
    """A value that can never work. (code INVALID_ARGUMENT)"""

InvalidArgument: TypeAlias = InvalidArgumentError

class NotFoundError(QuiverError, LookupError):
    """The channel (or what was named) does not exist. (code NOT_FOUND)"""

NotFound: TypeAlias = NotFoundError

class AlreadyExistsError(QuiverError):
    """A live channel of that name exists. (code ALREADY_EXISTS)"""

AlreadyExists: TypeAlias = AlreadyExistsError

class BusyError(QuiverError):
    """The role is taken (a second publisher, no free slot). (code BUSY)"""

Busy: TypeAlias = BusyError

class CapacityExceededError(QuiverError, ValueError):
    """
    Larger than the channel (or its memory) can ever hold. (code CAPACITY_EXCEEDED)
    """

CapacityExceeded: TypeAlias = CapacityExceededError

class ChannelFullError(QuiverError):
    """No room now and the call does not wait. (code CHANNEL_FULL)"""

ChannelFull: TypeAlias = ChannelFullError

class TimeoutError(QuiverError, builtins.TimeoutError):
    """Nothing arrived (or no room came) within the timeout. (code TIMEOUT)"""

Timeout: TypeAlias = TimeoutError

class PeerGoneError(QuiverError):
    """
    The publisher is gone and everything it sent was received. (code PEER_DIED)
    """

PeerGone: TypeAlias = PeerGoneError

class ShmCorruptionError(QuiverError):
    """Shared bytes failed validation. (code SHM_CORRUPTION)"""

ShmCorruption: TypeAlias = ShmCorruptionError

class PermissionDeniedError(QuiverError, PermissionError):
    """Not ours, not private, or not exposed. (code PERMISSION_DENIED)"""

PermissionDenied: TypeAlias = PermissionDeniedError

class IoError(QuiverError, OSError):
    """A system call failed. (code IO_ERROR)"""

class SchemaMismatchError(QuiverError):
    """
    An incompatible schema (names the field and both types). (code SCHEMA_MISMATCH)
    """

SchemaMismatch: TypeAlias = SchemaMismatchError

class HandleOutOfRangeError(QuiverError):
    """A handle outside its segment. (code HANDLE_OUT_OF_RANGE)"""

HandleOutOfRange: TypeAlias = HandleOutOfRangeError

class ResourceExhaustedError(QuiverError):
    """
    A limit that protects the process was reached (a size, a count, a total). (code RESOURCE_EXHAUSTED)
    """

ResourceExhausted: TypeAlias = ResourceExhaustedError

class UnauthenticatedError(QuiverError, PermissionError):
    """
    The caller did not prove who it is (no token, or a wrong one). (code UNAUTHENTICATED)
    """

Unauthenticated: TypeAlias = UnauthenticatedError

class EvictedError(QuiverError):
    """
    The channel's stall policy detached this subscriber: it kept the channel full. (code EVICTED)
    """

Evicted: TypeAlias = EvictedError

class StaleHandleError(QuiverError):
    """
    A handle whose sample is gone: released, replaced, or never published. (code STALE_HANDLE)
    """

StaleHandle: TypeAlias = StaleHandleError

error_classes: dict[str, type[QuiverError]]

error_names: list[tuple[str, str]]

def named_directory() -> str: ...

def parse_byte_size(arg: str, /) -> int: ...

def release_named_segments() -> None: ...

def default_flight_location() -> str: ...

def read_token_file(arg: str, /) -> str: ...

def named_path(arg: str, /) -> str: ...

class Retainer:
    @property
    def held(self) -> int: ...

    def close(self) -> None: ...

class Channel:
    def retain(self, samples: int, seconds: float) -> Retainer: ...

    @staticmethod
    def create(name: str, capacity: int, max_samples: int, max_subscribers: int, overflow: str, memfd: bool, schema: object | None, stall_timeout: float | None, evolution: str) -> Channel: ...

    @staticmethod
    def open_or_create(name: str, capacity: int, max_samples: int, max_subscribers: int, overflow: str, schema: object | None, stall_timeout: float | None, evolution: str) -> Channel: ...

    @staticmethod
    def open(arg: str, /) -> Channel: ...

    @staticmethod
    def open_waiting(name: str, wait: float | None) -> Channel: ...

    @staticmethod
    def from_fd(arg: int, /) -> Channel: ...

    @staticmethod
    def attach(arg: str, /) -> Channel: ...

    @property
    def name(self) -> str: ...

    @property
    def capacity(self) -> int: ...

    @property
    def fd(self) -> int: ...

    @property
    def named(self) -> bool: ...

    @property
    def type_versions(self) -> int: ...

    @property
    def evolution(self) -> str | None: ...

    def stats_json(self) -> str: ...

    def schema_capsule(self, version: int = 0) -> object: ...

class TensorLoan:
    @property
    def array(self) -> NDArray[Any]: ...

    def publish(self, seal: object | None = None) -> None: ...

    def discard(self, seal: object | None = None) -> None: ...

    @property
    def active(self) -> bool: ...

class ImageFrameInfo:
    """
    An image frame's header (Sample.image_info): ``width`` and ``height`` in pixels, ``stride``
    (bytes per row), ``pixel_format`` (its C++ name: ``"RGBA8"``, ``"GRAY8"``, ...) and
    ``bytes_per_pixel``. Immutable: may be shared between threads.
    """

    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...

    @property
    def stride(self) -> int: ...

    @property
    def pixel_format(self) -> str: ...

    @property
    def bytes_per_pixel(self) -> int: ...

    def __repr__(self) -> str: ...

class AudioFrameInfo:
    """
    An audio frame's header (Sample.audio_info): ``sample_rate`` (Hz), ``channels``,
    ``frame_count``, ``sample_format`` (its C++ name: ``"F32"``, ``"S16"``, ...) and
    ``bytes_per_sample``. Immutable: may be shared between threads.
    """

    @property
    def sample_rate(self) -> int: ...

    @property
    def channels(self) -> int: ...

    @property
    def frame_count(self) -> int: ...

    @property
    def sample_format(self) -> str: ...

    @property
    def bytes_per_sample(self) -> int: ...

    def __repr__(self) -> str: ...

class ImageLoan:
    @property
    def array(self) -> NDArray[Any]: ...

    @property
    def info(self) -> ImageFrameInfo: ...

    def publish(self, seal: object | None = None) -> None: ...

    def discard(self, seal: object | None = None) -> None: ...

    @property
    def active(self) -> bool: ...

class AudioLoan:
    @property
    def array(self) -> NDArray[Any]: ...

    @property
    def info(self) -> AudioFrameInfo: ...

    def publish(self, seal: object | None = None) -> None: ...

    def discard(self, seal: object | None = None) -> None: ...

    @property
    def active(self) -> bool: ...

class Publisher:
    def __init__(self, channel: Channel, loan_timeout: float | None) -> None: ...

    def publish_c_array(self, arg0: object, arg1: object, /) -> None: ...

    def publish_c_stream(self, arg: object, /) -> int: ...

    def publish_bytes(self, arg: bytes, /) -> None: ...

    def publish_msgpack(self, arg: bytes, /) -> None: ...

    def loan_tensor(self, arg0: Sequence[int], arg1: str, /) -> TensorLoan: ...

    def loan_image(self, width: int, height: int, pixel_format: str, stride: int | None) -> ImageLoan: ...

    def publish_image(self, pixels: Annotated[NDArray, dict(device='cpu', writable=False)], pixel_format: str, stride: int | None) -> None: ...

    def loan_audio(self, frame_count: int, sample_rate: int, channels: int, sample_format: str) -> AudioLoan: ...

    def publish_audio(self, pcm: Annotated[NDArray, dict(device='cpu', writable=False)], sample_rate: int, sample_format: str | None) -> None: ...

    @property
    def subscriber_count(self) -> int: ...

    @property
    def expected_subscribers(self) -> int: ...

    def wait_for_subscribers(self, count: int, timeout: float | None) -> None: ...

    @property
    def channel(self) -> Channel: ...

class Sample:
    @property
    def kind(self) -> str: ...

    @property
    def sequence(self) -> int: ...

    @property
    def address(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def size(self) -> int: ...

    @property
    def schema_version(self) -> int: ...

    def arrow_capsules(self) -> tuple: ...

    @property
    def image_info(self) -> ImageFrameInfo: ...

    @property
    def audio_info(self) -> AudioFrameInfo: ...

    def to_numpy(self) -> NDArray[Any]: ...

class Subscriber:
    def __init__(self, channel: Channel, reader_schema: object | None, full_validation: bool, spin_us: float, from_oldest: bool, follow_restarts: bool) -> None: ...

    @property
    def awaiting_restart(self) -> bool: ...

    @property
    def restarts_followed(self) -> int: ...

    def receive(self, timeout: float | None) -> Sample: ...

    def try_receive(self) -> Sample | None: ...

    def notify_fd(self) -> int: ...

    @property
    def missed(self) -> int: ...

    @property
    def channel(self) -> Channel: ...

def list_channels_json() -> tuple[list[str], list[str]]: ...
