"""The REST client: typed answers, retries on 429/5xx/network errors, a rate limit."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any, TypeVar

import httpx
import msgspec

from bpx_flows.connectors.backpack.retry import Decision, backoff, classify_status
from bpx_flows.connectors.backpack.wire import DepthSnapshot, Market
from bpx_flows.connectors.errors import RestError

__all__ = ["DEFAULT_REST_URL", "RestClient", "TokenBucket"]

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


class RestClient:
    """Public REST endpoints of Backpack, decoded into wire records.

    Args:
        base_url: e.g. ``https://api.backpack.exchange`` or the simulator's URL.
        attempts: tries per request before ``RestError``.
        rate_per_s: request rate limit (Backpack publishes none; 10/s is polite).
        timeout_s: per-request timeout, seconds.
        transport: an httpx transport, for tests (``httpx.MockTransport``).
        backoff_initial_s: first retry delay ceiling, seconds.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_REST_URL,
        attempts: int = 5,
        rate_per_s: float = 10.0,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        backoff_initial_s: float = 0.25,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._attempts = attempts
        self._bucket = TokenBucket(rate_per_s, burst=max(1, int(rate_per_s)))
        self._backoff_initial_s = backoff_initial_s
        self._client = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout_s, transport=transport
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
        body = await self._request("/api/v1/depth", params)
        return self._decode("/api/v1/depth", body, DepthSnapshot), body

    async def markets(self) -> list[Market]:
        """``GET /api/v1/markets``."""
        return await self._get("/api/v1/markets", {}, list[Market])

    async def _get(self, path: str, params: Mapping[str, str], kind: type[T]) -> T:
        return self._decode(path, await self._request(path, params), kind)

    @staticmethod
    def _decode(path: str, body: bytes, kind: type[T]) -> T:
        try:
            return msgspec.json.decode(body, type=kind, strict=False)
        except msgspec.DecodeError as exc:
            msg = f"GET {path}: unexpected answer ({exc}): {body[:200]!r}"
            raise RestError(msg, 200) from None

    async def _request(self, path: str, params: Mapping[str, str]) -> bytes:
        delays = backoff(self._backoff_initial_s, 10.0)
        last: str = ""
        status: int | None = None
        for attempt in range(1, self._attempts + 1):
            wait = self._bucket.delay_s()
            if wait:
                await asyncio.sleep(wait)
            self.requests += 1
            try:
                response = await self._client.get(path, params=dict(params))
            except httpx.TransportError as exc:
                status, last = None, f"{type(exc).__name__}: {exc}"
                retry_after = None
            else:
                if response.status_code == 200:
                    return response.content
                status = response.status_code
                last = f"HTTP {status}: {response.text[:200]}"
                if classify_status(status) is Decision.FATAL:
                    msg = f"GET {path} {dict(params)} failed: {last}"
                    raise RestError(msg, status)
                retry_after = _retry_after_s(response.headers)
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


def _retry_after_s(headers: Any) -> float | None:
    value = headers.get("Retry-After")
    try:
        return min(60.0, max(0.0, float(value))) if value is not None else None
    except ValueError:
        return None
