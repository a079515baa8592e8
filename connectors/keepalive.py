"""The watchdog of one open WebSocket: pings, pong deadlines, and silent feeds."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from .connection_config import ConnectionConfig
from .wsclient import WsClient

__all__ = ["watch"]

log = logging.getLogger("bpx_flows.connection")


async def watch(
    client: WsClient,
    config: ConnectionConfig,
    silent_for_s: Callable[[], float],
) -> str:
    """Ping ``client`` and abort it when the line is dead; returns why it aborted.

    Dead lines are caught by the pings (``keepalive``: no pong within
    ``ping_interval_s + ping_timeout_s``); the silence bound catches a live line
    whose streams stopped (``silence``: no data frame for ``silence_s``, as
    ``silent_for_s()`` tells), which pings cannot see. Runs until it aborts the
    client or is cancelled.
    """
    tick_s = min(x for x in (config.silence_s, config.ping_interval_s, 1.0) if x)
    last_ping = time.monotonic()
    while True:
        await asyncio.sleep(tick_s / 4)
        now = time.monotonic()
        silent_s = silent_for_s()
        if config.silence_s is not None and silent_s > config.silence_s:
            log.warning("no frame for %.1f s; reconnecting", silent_s)
            client.abort()
            return "silence"
        if config.ping_interval_s is None:
            continue
        if config.ping_timeout_s is not None:
            pong_age_s = now - client.last_pong_ns / 1e9
            if pong_age_s > config.ping_interval_s + config.ping_timeout_s:
                log.warning("no pong for %.1f s; reconnecting", pong_age_s)
                client.abort()
                return "keepalive"
        if now - last_ping >= config.ping_interval_s:
            client.ping()
            last_ping = now
