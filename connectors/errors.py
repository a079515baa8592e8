"""The one exception tree of bpx-flows.

::

    BpxError
    ├── ConfigError      bad user input: a stream name, a symbol, a flag, a key file
    ├── ProtocolError    the exchange broke the protocol in a way we cannot route around
    ├── AuthError        the exchange refused (or would refuse) a signed subscription
    └── RestError        a REST call failed for good (carries the HTTP status)

Bad *frames* never raise: the decoder turns them into ``BadFrame`` records that are
counted and dead-lettered, and a break in a depth sequence is a ``Resync`` record.
``ProtocolError`` is what a REST answer that cannot be read raises inside the fetch
loop, where it ends that one fetch. Exceptions are for configuration errors (raised
before a flow starts) and broken invariants (bugs).
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "BpxError",
    "ConfigError",
    "ProtocolError",
    "RestError",
]


class BpxError(Exception):
    """Base class of every error raised by bpx-flows."""


class ConfigError(BpxError, ValueError):
    """User input (stream, symbol, flag, key) is invalid; the message says the fix."""


class ProtocolError(BpxError):
    """The peer broke the protocol in a way that cannot be routed around."""


class AuthError(BpxError):
    """A private subscription was or would be refused (key, signature, clock window)."""


class RestError(BpxError):
    """A REST request failed after its retries.

    Attributes:
        status: the HTTP status code, or ``None`` when no response arrived.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
