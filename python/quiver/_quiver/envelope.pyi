"""The control envelope codec (control/envelope.h)."""



PROTOCOL_VERSION: str = '2.0.0'

PROTOCOL_MAJOR: int = 2

MAX_LINE_BYTES: int = 65536

MAX_CAUSE_DEPTH: int = 32

TYPES: list = ...

def validate_type_name(arg: str, /) -> str: ...

FORMATS: list = ['arrow_stream', 'tensor', 'raw']

INVALID_ENVELOPE: str = 'INVALID_ENVELOPE'

UNSUPPORTED_VERSION: str = 'UNSUPPORTED_VERSION'

UNKNOWN_TYPE: str = 'UNKNOWN_TYPE'

LINE_TOO_LONG: str = 'LINE_TOO_LONG'

UNEXPECTED_TYPE: str = 'UNEXPECTED_TYPE'

INTERNAL: str = 'INTERNAL'

HANDLE_OUT_OF_RANGE: str = 'HANDLE_OUT_OF_RANGE'

PEER_DIED: str = 'PEER_DIED'

def parse(arg: bytes, /) -> tuple: ...

def parse_shm_handle(arg: str, /) -> tuple: ...

def serialize(arg0: str, arg1: str, arg2: str | None, arg3: str, /) -> tuple: ...

def new_msg_id() -> str: ...
