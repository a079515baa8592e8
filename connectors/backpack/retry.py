"""Retry or give up: one pure decision function and a pure backoff generator."""

from __future__ import annotations

import enum
import random
from collections.abc import Iterator

from ..errors import AuthError, ConfigError, RestError

__all__ = ["Decision", "backoff", "classify", "classify_status"]


class Decision(enum.Enum):
    """What to do after a failure."""

    RETRY = "retry"
    FATAL = "fatal"


def classify_status(status: int) -> Decision:
    """HTTP status: 429 and 5xx are worth retrying; any other 4xx is our mistake."""
    if status == 429 or status >= 500:
        return Decision.RETRY
    return Decision.FATAL


def classify(exc: BaseException) -> Decision:
    """Network trouble, 429 and 5xx: retry. Bad credentials, 4xx and bugs: fatal."""
    if isinstance(exc, AuthError | ConfigError):
        return Decision.FATAL
    if isinstance(exc, RestError):
        return Decision.RETRY if exc.status is None else classify_status(exc.status)
    status = getattr(exc, "status", None)  # our HandshakeError
    if isinstance(status, int):
        return classify_status(status)
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int):  # websockets InvalidStatus / httpx HTTPStatusError
        return classify_status(status)
    if isinstance(exc, OSError | TimeoutError | EOFError | ConnectionError):
        return Decision.RETRY
    name = type(exc).__module__
    if name.startswith(("websockets", "httpx", "h11")):
        return Decision.RETRY  # protocol-level hiccups of the peer: closed, reset...
    return Decision.FATAL


def backoff(
    initial_s: float = 0.5,
    max_s: float = 30.0,
    factor: float = 2.0,
    rng: random.Random | None = None,
) -> Iterator[float]:
    """Delays before successive retries: exponential, capped, with full jitter.

    Yields ``uniform(0, c)`` with ``c = min(max_s, initial_s * factor**n)`` forever;
    the caller decides when to stop. Full jitter spreads many clients that lost the
    same server over the whole window, so they do not come back in lockstep (a mass
    reconnect is the moment rate limits bite).

    Args:
        initial_s: the first delay's upper bound, seconds.
        max_s: the cap, seconds.
        factor: growth per attempt.
        rng: the randomness (a seeded one in tests).
    """
    rand = rng or random.Random()
    ceiling = initial_s
    while True:
        yield rand.uniform(0.0, ceiling)
        ceiling = min(max_s, ceiling * factor)
