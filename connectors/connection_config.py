"""How one connection behaves, and what it counted: its config and its stats."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["DEFAULT_WS_URL", "ConnectionConfig", "ConnectionStats"]

DEFAULT_WS_URL = "wss://ws.backpack.exchange"


@dataclass(frozen=True, slots=True)
class ConnectionConfig:
    """How one connection behaves.

    Attributes:
        ws_url: the WebSocket endpoint.
        silence_s: reconnect when no data frame arrives for this long, seconds.
            Quiet markets can be silent for 30 s on depth, so keep it well above
            that, or add a heartbeat stream (``markPrice.<perp>`` ticks every
            second). ``None`` disables the watchdog.
        ping_interval_s: our own protocol pings; ``None`` relies on the server's.
        ping_timeout_s: pong deadline before the connection counts as dead.
        backoff_initial_s: first reconnect delay ceiling, seconds (jittered).
        backoff_max_s: reconnect delay cap, seconds.
        max_pending: records waiting for the consumer before reading pauses.
        max_pending_bytes: frame bytes waiting for the consumer before reading
            pauses (whichever bound comes first).
        snapshot_limit: levels per side asked of ``GET /api/v1/depth``.
        window_ms: validity window of subscription signatures, milliseconds.
        compression: offer permessage-deflate (less bandwidth, more CPU).
        max_reconnects: give up after this many consecutive failed attempts;
            ``None`` retries forever (the right thing for a long-running feed).
        stable_s: a connection counts as recovered (the backoff starts again
            from ``backoff_initial_s``) only after delivering data for this long,
            seconds; a server that accepts and then drops us keeps backing off.
        backfill_trades: fetch the trades a ``trade.<symbol>`` stream skipped (a
            jump in trade ids, after a reconnect say) from
            ``/api/v1/trades/history`` and emit them as ``BackfilledTrade``
            frames, each gap ended by a ``TradeBackfill`` record
            (``connectors/backpack/backfill.py``).
        backfill_max_wait_s: a gap not filled within this long is given up
            (reported ``unfillable``, reason ``budget``), seconds.
        kline_backfill_s: once, at the first connect, fetch this much history of
            every ``kline.<interval>.<symbol>`` stream from ``/api/v1/klines`` and
            emit it as ``HistoricalKline`` frames
            (``connectors/backpack/kline_history.py``); 0: none.
    """

    ws_url: str = DEFAULT_WS_URL
    silence_s: float | None = 90.0
    ping_interval_s: float | None = 20.0
    ping_timeout_s: float | None = 20.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    max_pending: int = 50_000
    max_pending_bytes: int = 64 << 20
    snapshot_limit: int = 1000
    window_ms: int = 5_000
    compression: bool = False
    max_reconnects: int | None = None
    stable_s: float = 30.0
    backfill_trades: bool = False
    backfill_max_wait_s: float = 300.0
    kline_backfill_s: float = 0.0


@dataclass
class ConnectionStats:
    """Counters of one connection, for the metrics exporter.

    Attributes:
        connects: successful WebSocket handshakes.
        disconnects: lost connections, per cause (``closed``, ``server_close``,
            ``silence``, ``keepalive``, ``error``).
        snapshots: depth snapshots fetched; ``snapshot_failures`` those that failed.
        pushback_waits: times the reader paused because the consumer was behind.
    """

    connects: int = 0
    disconnects: Counter[str] = field(default_factory=Counter)
    snapshots: int = 0
    snapshot_failures: int = 0
    pushback_waits: int = 0
