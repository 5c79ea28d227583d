"""Reaching ``quiver serve`` with pyarrow.flight.

``quiver serve`` listens by default on a Unix socket in this user's private runtime
directory, so only this user reaches it and no token is needed::

    client = quiver.flight.connect()              # the default socket
    reader = client.do_get(pyarrow.flight.Ticket(b"ledger"))

A TCP listener (``quiver serve --listen grpc://HOST:PORT``) requires a bearer token on every
call; ``quiver serve`` prints the file it wrote one to when none was given::

    client = quiver.flight.connect("grpc://127.0.0.1:50051", token_file=path)

Plain pyarrow works too: ``pyarrow.flight.connect(location)`` and, over TCP,
``options=pyarrow.flight.FlightCallOptions(headers=[(b"authorization", b"Bearer " + token)])``
on each call.
"""

from __future__ import annotations

import os
from typing import Any, Optional, Union

import pyarrow.flight as _flight

from . import _quiver

__all__ = ["BearerToken", "connect", "default_location"]


def default_location() -> str:
    """Where ``quiver serve`` listens by default:
    ``grpc+unix://$XDG_RUNTIME_DIR/quiver/flight.sock`` (``/tmp/quiver-<uid>/...`` when
    ``XDG_RUNTIME_DIR`` is unset). The directory is made private (0700) if needed."""
    return _quiver.default_flight_location()


class BearerToken(_flight.ClientMiddlewareFactory):
    """Client middleware that sends ``authorization: Bearer TOKEN`` on every call.

    Thread-safety: immutable; pyarrow may call it from any thread."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self._token = token

    def start_call(self, info: Any) -> _flight.ClientMiddleware:
        """The middleware of one call (pyarrow calls this): it adds the header."""
        header = {"authorization": f"Bearer {self._token}"}

        class _Middleware(_flight.ClientMiddleware):
            def sending_headers(self) -> dict[str, Any]:
                return header

        return _Middleware()


def connect(location: Optional[str] = None, *, token: Optional[str] = None,
            token_file: Optional[Union[str, os.PathLike[str]]] = None,
            **kwargs: Any) -> _flight.FlightClient:
    """A ``pyarrow.flight.FlightClient`` for ``quiver serve`` at ``location`` (default:
    ``default_location()``) that sends the bearer ``token`` (or the first line of
    ``token_file``) on every call. Other keyword arguments go to ``pyarrow.flight.connect``
    (``tls_root_certs=`` for a ``grpc+tls://`` server, say). ``ValueError`` for both
    ``token`` and ``token_file``; ``InvalidArgumentError`` for an empty token file."""
    if token is not None and token_file is not None:
        raise ValueError("give token or token_file, not both")
    if token_file is not None:
        token = _quiver.read_token_file(str(token_file))  # the rule of quiver serve/bridge
    if token is not None:
        kwargs["middleware"] = [*kwargs.get("middleware", []), BearerToken(token)]
    return _flight.connect(location or default_location(), **kwargs)
