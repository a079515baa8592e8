"""The REST client: typed answers, retries on 429/5xx/network errors, a rate limit."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import importlib
import logging
import ssl
import threading
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any, TypeVar

import httpx
import msgspec

from .backpack.retry import Decision, backoff, classify_status
from .backpack.text import printable
from .backpack.wire import DepthSnapshot, Market
from .errors import ConfigError, RestError

__all__ = [
    "DEFAULT_REST_URL",
    "PROCESS_BUDGET",
    "RestBudget",
    "RestClient",
    "TokenBucket",
    "server_time_us",
]

log = logging.getLogger("bpx_flows.rest")

DEFAULT_REST_URL = "https://api.backpack.exchange"
T = TypeVar("T")


class TokenBucket:
    """A token bucket: ``rate_per_s`` requests per second, bursts up to ``burst``."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self._rate = rate_per_s
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = time.monotonic()

    def delay_s(self) -> float:
        """Take a token; returns how long to wait before using it (0 if none)."""
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate


class RestBudget:
    """One REST request budget shared by every client of a process.

    Backpack allows 2,000 REST requests a minute per subaccount (429 beyond; its
    support FAQ), so every connection of a process draws from one budget: after a
    mass reconnect, a hundred books' snapshot fetches are spaced out instead of
    bursting past the limit. Thread-safe (each Bytewax worker runs its
    connections' event loops on its own thread): a request reserves the next free
    slot under a lock and then sleeps on its own loop until then.

    Args:
        per_minute: requests per minute (default: 90 % of the exchange's 2,000).
        burst: requests that may go at once after a quiet spell.

    Attributes:
        waiting: requests waiting for their slot now (the backlog metric).
        granted: requests that got a slot.
    """

    def __init__(self, per_minute: float = 1_800.0, burst: int = 20) -> None:
        if not per_minute > 0 or burst < 1:
            msg = (
                f"a REST budget needs per_minute > 0, burst >= 1: {per_minute}, {burst}"
            )
            raise ConfigError(msg)
        self.per_minute = per_minute
        self._bucket = TokenBucket(per_minute / 60.0, burst)
        self._lock = threading.Lock()
        self.waiting = 0
        self.granted = 0

    async def slot(self) -> None:
        """Wait until this request may go."""
        with self._lock:
            delay = self._bucket.delay_s()
            self.granted += 1
            if delay:
                self.waiting += 1
        if delay:
            try:
                await asyncio.sleep(delay)
            finally:
                with self._lock:
                    self.waiting -= 1


PROCESS_BUDGET = RestBudget()
"""The budget every ``RestClient`` of this process shares unless given another."""

HISTORY_BUDGET = RestBudget(per_minute=27.0, burst=1)
"""Historical trades and candles: Backpack allows 30 a minute (90 % of it here)."""


def _tls_for(base_url: str) -> ssl.SSLContext | bool:
    """The TLS settings of a client of ``base_url``: the CA bundle for https.

    A plain-http endpoint (the simulator, a local proxy) never speaks TLS, and
    loading the CA bundle costs 30-70 ms of CPU per client: it gets a context that
    still verifies but trusts nothing, so TLS through it would fail, never pass
    unchecked (redirects are not followed either).
    """
    if base_url.startswith("http://"):
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies; no CA loaded
    return True


class RestClient:
    """Public REST endpoints of Backpack, decoded into wire records.

    Args:
        base_url: e.g. ``https://api.backpack.exchange`` or the simulator's URL.
        attempts: tries per request before ``RestError``.
        rate_per_s: this client's own request rate limit, per second, on top of
            the shared budget; ``None`` (the default): the budget alone (a
            client's own lower cap would slow a worker's books seeding after a
            mass reconnect for nothing: the exchange's limit is the process's).
        budget: the budget shared with the process's other clients (the
            exchange's limit is per subaccount, not per connection).
        timeout_s: per-request timeout, seconds.
        transport: an httpx transport, for tests (``httpx.MockTransport``).
        backoff_initial_s: first retry delay ceiling, seconds.
        max_body_bytes: the largest answer read (after decompression); a larger
            one is a failed attempt, so a hostile server cannot fill memory.

    Every failure of an attempt (unreachable, slow past ``timeout_s`` in total,
    429/5xx, a body that does not decompress, does not decode or is too large) is
    retried up to ``attempts`` times with jittered backoff inside the rate limit
    and counted in ``failures`` by kind; other 4xx fail at once. Only ``RestError``
    leaves this class.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_REST_URL,
        attempts: int = 5,
        rate_per_s: float | None = None,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        backoff_initial_s: float = 0.25,
        max_body_bytes: int = 32 << 20,
        budget: RestBudget | None = None,
        history_budget: RestBudget | None = None,
    ) -> None:
        # httpcore makes an anyio Event on a client's first request, and anyio
        # imports its asyncio backend only then: 20 ms of imports here (over 100 ms
        # on a busy machine) inside the first depth snapshot's fetch, while a live
        # feed's diffs queue for it. Imported when the client is made instead,
        # before the flow runs (once: a module already imported costs nothing).
        with contextlib.suppress(ImportError):  # the module's path is anyio's own
            importlib.import_module("anyio._backends._asyncio")
        self.budget = budget if budget is not None else PROCESS_BUDGET
        self.history_budget = (
            history_budget if history_budget is not None else HISTORY_BUDGET
        )
        self.base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s
        self._max_body_bytes = max_body_bytes
        self.failures: Counter[str] = Counter()
        self._attempts = attempts
        self._bucket = (
            None
            if rate_per_s is None
            else TokenBucket(rate_per_s, burst=max(1, int(rate_per_s)))
        )
        self._backoff_initial_s = backoff_initial_s
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout_s,
            transport=transport,
            verify=_tls_for(self.base_url),
        )
        self.retries = 0
        self.requests = 0

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.aclose()

    async def depth(
        self, symbol: str, limit: int = 1000
    ) -> tuple[DepthSnapshot, bytes]:
        """``GET /api/v1/depth``: the book snapshot (both sides ascending).

        Returns:
            The decoded snapshot and the body exactly as received (for recording).
        """
        params = {"symbol": symbol, "limit": str(limit)}
        snapshot, body, _ = await self._request("/api/v1/depth", params, DepthSnapshot)
        return snapshot, body

    async def raw(
        self, path: str, params: Mapping[str, str], history: bool = False
    ) -> bytes:
        """``GET path`` with the same retries and limits; the body as received.

        ``history``: a historical endpoint (trades, candles), which also draws on
        the history budget (30 requests a minute at the exchange).
        """
        _, body, _ = await self._request(path, params, msgspec.Raw, history)
        return body

    async def dated(
        self, path: str, params: Mapping[str, str]
    ) -> tuple[bytes, int | None]:
        """``raw``, with the server's time of the answer, microseconds.

        The time is the ``Date`` header less the ``Age`` a cache added (whole
        seconds: what HTTP gives); ``None`` when the server sent no usable ``Date``.
        Answers without a time of their own (``/api/v1/markPrices``) are dated by it.
        """
        _, body, headers = await self._request(path, params, msgspec.Raw)
        return body, server_time_us(headers)

    async def get(
        self,
        path: str,
        params: Mapping[str, str],
        shape: type[Any] = msgspec.Raw,
        history: bool = False,
    ) -> tuple[bytes, int | None]:
        """``GET path``: the body as received and the server's time of it.

        ``shape``: what the body must decode to (else the attempt failed and is
        retried); ``history`` as for ``raw``; the time as for ``dated``.
        """
        _, body, headers = await self._request(path, params, shape, history)
        return body, server_time_us(headers)

    async def markets(self) -> list[Market]:
        """``GET /api/v1/markets``."""
        markets, _, _ = await self._request("/api/v1/markets", {}, list[Market])
        return markets

    async def _attempt(
        self, path: str, params: Mapping[str, str]
    ) -> tuple[int, Any, bytes]:
        """One GET: ``(status, headers, body)``, the body read up to the cap."""
        async with self._client.stream("GET", path, params=dict(params)) as response:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self._max_body_bytes:
                    msg = f"answer larger than {self._max_body_bytes:,} bytes"
                    raise _TooLarge(msg)
                chunks.append(chunk)
            return response.status_code, response.headers, b"".join(chunks)

    async def _request(
        self, path: str, params: Mapping[str, str], kind: type[T], history: bool = False
    ) -> tuple[T, bytes, Any]:
        delays = backoff(self._backoff_initial_s, 10.0)
        last: str = ""
        status: int | None = None
        for attempt in range(1, self._attempts + 1):
            wait = self._bucket.delay_s() if self._bucket is not None else 0.0
            if wait:
                await asyncio.sleep(wait)
            if history:
                await self.history_budget.slot()
            await self.budget.slot()
            self.requests += 1
            retry_after = None
            try:
                async with asyncio.timeout(self._timeout_s):  # no extra task
                    code, headers, body = await self._attempt(path, params)
            except (httpx.HTTPError, _TooLarge, TimeoutError) as exc:
                kind_of_failure = (
                    "too_large"
                    if isinstance(exc, _TooLarge)
                    else "slow"
                    if isinstance(exc, TimeoutError | httpx.TimeoutException)
                    else "bad_encoding"
                    if isinstance(exc, httpx.DecodingError)
                    else "unreachable"
                )
                self.failures[kind_of_failure] += 1
                status, last = None, f"{type(exc).__name__}: {printable(str(exc))}"
            else:
                status = code
                if code == 200:
                    try:
                        value = msgspec.json.decode(body, type=kind, strict=False)
                        return value, body, headers
                    except msgspec.DecodeError as exc:
                        self.failures["bad_body"] += 1
                        shown = printable(repr(body[:120]))
                        last = f"unexpected answer ({exc}): {shown}"
                else:
                    self.failures[f"http_{code // 100}xx"] += 1
                    text = body[:200].decode("utf-8", "replace")
                    last = f"HTTP {code}: {printable(text)}"
                    if classify_status(code) is Decision.FATAL:
                        msg = f"GET {path} {dict(params)} failed: {last}"
                        raise RestError(msg, code)
                    retry_after = _retry_after_s(headers)
            if attempt == self._attempts:
                break
            delay = next(delays) if retry_after is None else retry_after
            self.retries += 1
            log.info("GET %s failed (%s); retrying in %.2f s", path, last, delay)
            await asyncio.sleep(delay)
        msg = (
            f"GET {path} {dict(params)} failed after {self._attempts} attempts: {last}"
        )
        raise RestError(msg, status)


class _TooLarge(Exception):
    """An answer over ``max_body_bytes``."""


def _retry_after_s(headers: Any) -> float | None:
    value = headers.get("Retry-After")
    try:
        return min(60.0, max(0.0, float(value))) if value is not None else None
    except ValueError:
        return None


def server_time_us(headers: Any) -> int | None:
    """When the server made the answer: ``Date`` less ``Age``, microseconds."""
    value = headers.get("Date")
    if value is None:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
        age = int(headers.get("Age") or 0)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None or not 0 <= age <= 86_400:
        return None
    return int(when.timestamp()) * 1_000_000 - age * 1_000_000
