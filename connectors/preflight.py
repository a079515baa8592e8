"""Checks before a flow starts, so bad input fails in one line instead of mid-run."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import websockets

from .backpack.signing import Credentials
from .backpack.streams import StreamName, check_symbols
from .backpack.text import printable
from .errors import ConfigError, RestError
from .rest import RestClient
from .wsclient import open_client

__all__ = ["preflight"]


async def _check(
    streams: Sequence[StreamName],
    ws_url: str,
    rest_url: str,
    credentials: Credentials | None,
    timeout_s: float,
) -> None:
    if not streams:
        msg = "no streams given; name at least one, e.g. trade.SOL_USDC"
        raise ConfigError(msg)
    if credentials is None and any(s.private for s in streams):
        names = ", ".join(str(s) for s in streams if s.private)
        msg = f"{names}: account streams need BPX_API_SECRET or BPX_API_SECRET_FILE"
        raise ConfigError(msg)
    rest = RestClient(rest_url, attempts=2, timeout_s=timeout_s)
    try:
        markets = await rest.markets()
    except RestError as exc:
        msg = f"cannot reach the REST API at {rest_url}: {exc}"
        raise ConfigError(msg) from None
    finally:
        await rest.aclose()
    check_symbols(streams, [m.symbol for m in markets])
    # The same client as the feed's, so the check sees what the feed will see (a
    # redirect is an answer like any other, never followed to another host).
    try:
        client = await open_client(ws_url, _ignore, open_timeout_s=timeout_s)
    except (OSError, TimeoutError, ValueError, websockets.InvalidURI) as exc:
        msg = f"cannot open a WebSocket to {ws_url}: {printable(str(exc))[:200]}"
        raise ConfigError(msg) from None
    await client.close()


def _ignore(_data: bytes, _recv_us: int) -> None:
    """Frames that arrive during the check are not needed."""


def preflight(
    streams: Sequence[StreamName],
    ws_url: str,
    rest_url: str,
    credentials: Credentials | None = None,
    timeout_s: float = 10.0,
) -> None:
    """Check streams, symbols, credentials and both endpoints.

    Raises:
        ConfigError: with a one-line message saying what is wrong and how to fix it.
    """
    asyncio.run(_check(streams, ws_url, rest_url, credentials, timeout_s))
