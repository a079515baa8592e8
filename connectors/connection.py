"""One resilient WebSocket connection: subscribe, decode, sync books, reconnect.

(Over 450 lines: the reconnect loop, the per-frame hot path and the consumer's
hand-over share one record buffer and its pause state; REST lives in ``fetcher``,
the watchdog in ``keepalive``, the protocol in ``backpack``.)

The protocol work is sans-I/O: the ``Session`` (subscriptions, decoding), and the
``FetchPlanner`` (book syncs, trade gaps, kline history, seeds), whose REST requests
the ``Fetcher`` makes. This module owns the socket loop: connect, subscribe, feed
frames in, watch the line, reconnect. Records are handed over in batches through
``take()``; when the consumer falls behind by ``max_pending`` records, the reader
stops reading, so the kernel's buffers fill and TCP pushes back on the server (which
may then cut us off as a slow consumer: counted as a reconnect, and every book is
resynced). Memory therefore stays bounded; nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from .backpack.backfill import TradeBackfill
from .backpack.booksync import Resync, SyncRecord
from .backpack.decode import BadFrame, BadReason, Decoded
from .backpack.fetches import FetchKind
from .backpack.planner import FetchPlanner, PlannerConfig
from .backpack.refusal import auth_hint, refuses_subscription
from .backpack.retry import Decision, backoff, classify
from .backpack.session import Session
from .backpack.signing import Credentials
from .backpack.streams import StreamName
from .backpack.text import printable
from .backpack.wire import Depth, Frame, ServerError, Trade
from .clock import Watermark, now_us
from .connection_config import (
    DEFAULT_WS_URL,
    ConnectionConfig,
    ConnectionStats,
)
from .errors import AuthError, BpxError, ConfigError
from .fetcher import Fetcher
from .keepalive import watch
from .rest import RestClient
from .wsclient import HandshakeError, WsClient, open_client

__all__ = [
    "DEFAULT_WS_URL",
    "Connection",
    "ConnectionConfig",
    "ConnectionStats",
    "Record",
    "Tap",
]

log = logging.getLogger("bpx_flows.connection")

_NOT_OBJECT = (BadReason.NOT_JSON, BadReason.NOT_A_FRAME)

Record = Frame[Any] | SyncRecord | BadFrame | ServerError | TradeBackfill | Watermark
"""What a source emits: frames, book snapshots/resyncs, dead letters, errors, the
ends of trade backfills, and (from the source, never the connection) watermarks."""


class Tap(Protocol):
    """Receives everything raw, e.g. the recorder. Must be fast and never raise."""

    def frame(self, raw: str | bytes, recv_us: int, json_object: bool) -> None:
        """One received text frame, unchanged; ``json_object`` if it parsed as one."""

    def rest(
        self, stream: str, path: str, params: dict[str, str], body: bytes, recv_us: int
    ) -> None:
        """One REST answer the connection used, and the stream it was fetched for."""

    def disconnected(self, cause: str, recv_us: int) -> None:
        """The connection was lost; frames in between are unknown."""


class Connection:
    """A fixed group of streams on one WebSocket, kept alive for as long as it runs.

    Args:
        streams: what to subscribe.
        config: timings and limits.
        credentials: for ``account.*`` streams.
        rest: the REST client for snapshots, seeds and history (required when a
            stream needs one: depth, and the others ``config`` asks to fill).
        tap: receives raw frames and REST answers (the recorder).
        rng: randomness for backoff jitter.
        clock: the wall clock, microseconds (tests pass their own).

    Raises:
        ConfigError: private streams without credentials, depth without REST.
    """

    def __init__(
        self,
        streams: Sequence[StreamName],
        config: ConnectionConfig,
        credentials: Credentials | None = None,
        rest: RestClient | None = None,
        tap: Tap | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], int] = now_us,
    ) -> None:
        self.config = config
        self.session = Session(streams, credentials, config.window_ms)
        self.stats = ConnectionStats()
        self._clock = clock
        self._tap = tap
        self._rng = rng or random.Random()
        self.planner = FetchPlanner(
            streams,
            PlannerConfig(
                snapshot_limit=config.snapshot_limit,
                trade_gaps=config.backfill_trades,
                trade_gap_max_wait_us=int(config.backfill_max_wait_s * 1e6),
                kline_backfill_us=int(config.kline_backfill_s * 1e6),
            ),
        )
        self.books = self.planner.books
        self.gaps = self.planner.gaps  # trade ids missed, being fetched back
        if self.books.syncs and rest is None:
            msg = "depth streams need a REST client for their snapshots"
            raise ConfigError(msg)
        if self.gaps is not None and rest is None:
            msg = "trade backfill needs a REST client"
            raise ConfigError(msg)
        self._fetcher = (
            None
            if rest is None
            else Fetcher(self.planner, rest, self._deliver, clock, tap, self._count)
        )
        self._out: list[Record] = []
        self._out_bytes = 0  # frame bytes behind the records in ``_out``
        self._wire_bytes = 0  # received by the connections that have ended
        self._paused = False  # reading paused until the consumer catches up
        self._ready = asyncio.Event()
        self.on_ready: Callable[[], None] | None = None  # called as records arrive
        self._task: asyncio.Task[None] | None = None
        self._client: WsClient | None = None
        self._last_rx_us = clock()
        self.last_frame_us: int | None = None  # receive time of the last text frame
        self.started_us = self._last_rx_us  # when the connection object was made
        self._receive = self.session.receive
        self._syncs = self.books.syncs
        self._fatal: AuthError | None = None
        self._closing = False
        self._has_private = any(s.private for s in streams)
        self._stream_count = len(streams)
        self._frames_this_connection = 0
        self._episode_failures = 0  # connection faults since data last flowed

    @property
    def connected(self) -> bool:
        """Whether the WebSocket is open (subscribed or subscribing) right now."""
        return self._client is not None

    @property
    def bytes_on_wire(self) -> int:
        """WebSocket bytes received so far, over every connection.

        Frame headers included, payloads as sent (compressed, with compression).
        """
        client = self._client
        return self._wire_bytes + (client.bytes_received if client else 0)

    @property
    def pending(self) -> int:
        """Records waiting for the consumer."""
        return len(self._out)

    # Consumer side.

    def start(self) -> None:
        """Start connecting on the running event loop (``take`` also starts it)."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="bpx-connection")

    def take_ready(self, max_items: int = 100_000) -> list[Record]:
        """The records that are ready now, without waiting (the source's path).

        Raises:
            AuthError: the exchange refused the private subscription (fatal).
            BpxError: another fatal error stopped the connection.
        """
        out = self._out
        if not out:
            if self._paused:
                self._resume()
            task = self._task
            if task is not None and task.done():
                task.result()  # re-raises the fatal error, if any
            return []
        if len(out) <= max_items:
            self._out = []
            self._out_bytes = 0
        else:
            out = out[:max_items]
            del self._out[:max_items]
            self._out_bytes = (
                self._out_bytes * len(self._out) // (len(self._out) + max_items)
            )
        if self._paused:
            self._resume()
        return out

    async def take(self, timeout_s: float, max_items: int = 100_000) -> list[Record]:
        """Wait up to ``timeout_s`` for records and return what is there.

        Raises:
            AuthError: the exchange refused the private subscription (fatal).
            BpxError: another fatal error stopped the connection.
        """
        self.start()
        assert self._task is not None
        if not self._out:
            if self._task.done():
                self._task.result()  # re-raises the fatal error, if any
                return []
            self._ready.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), timeout_s)
        return self.take_ready(max_items)

    def _resume(self) -> None:
        cfg = self.config
        if len(self._out) < cfg.max_pending and self._out_bytes < cfg.max_pending_bytes:
            self._paused = False
            if self._client is not None:
                self._client.resume_reading()

    def drain(self) -> list[Record]:
        """The records received and not taken yet (after ``close``: the last ones)."""
        out, self._out = self._out, []
        self._out_bytes = 0
        return out

    async def close(self) -> None:
        """Close the socket cleanly and stop reconnecting (open gaps end unfilled)."""
        self._closing = True
        for stream, (left, planned) in sorted(self.planner.history_left().items()):
            log.warning(
                "%s: kline history incomplete: the run ended with %d of %d pages "
                "not fetched (30 history requests a minute at the exchange)",
                stream,
                left,
                planned,
            )
        self._deliver(self.planner.close(self._clock()))
        if self._client is not None:
            await self._client.close()
        if self._fetcher is not None:
            await self._fetcher.close()
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    # The connection loop.

    async def run(self) -> None:
        """Connect, read, and reconnect until ``close()`` or a fatal error.

        Every connection fault (unreachable, any HTTP status on the upgrade, a
        reset, a half-open socket, a server that closes after subscribing) is
        retried after a capped, fully jittered exponential delay. The delays start
        over only once a connection has delivered data for ``stable_s``; each
        episode of faults logs one WARNING (its cause), then DEBUG lines.
        """
        cfg = self.config
        delays = self._delays()
        failures = 0
        while not self._closing:
            started = time.monotonic()
            self._frames_this_connection = 0
            try:
                cause, detail = await self._connect_and_serve()
            except Exception as exc:  # could not connect: classified here
                if _is_fatal(exc):
                    raise
                failures += 1
                if cfg.max_reconnects is not None and failures > cfg.max_reconnects:
                    raise
                cause, detail = _cause_of(exc), printable(str(exc))[:200]
            else:
                stable_s = time.monotonic() - started
                if self._frames_this_connection > 0 and stable_s >= cfg.stable_s:
                    failures = 0
                    delays = self._recovered()
                else:
                    failures += 1
            if self._fatal is not None:
                raise self._fatal
            if self._closing:
                break
            self._disconnected(cause)
            await asyncio.sleep(self._fault_delay(cause, detail, delays))

    def _delays(self) -> Iterator[float]:
        cfg = self.config
        return backoff(cfg.backoff_initial_s, cfg.backoff_max_s, rng=self._rng)

    async def _connect_and_serve(self) -> tuple[str, str]:
        """One connection from handshake to end: its cause and a detail for the log.

        Raises:
            Exception: the handshake failed (any fault: the caller classifies it).
        """
        cfg = self.config
        client = await open_client(
            cfg.ws_url,
            self._on_text,
            compression=cfg.compression,
            on_binary=self._on_binary,
        )
        try:
            cause = await self._serve(client)
        except Exception as exc:  # the socket broke under us: reconnect
            if _is_fatal(exc):
                raise
            client.abort()
            return "error", printable(repr(exc))[:200]
        return cause, cause

    def _recovered(self) -> Iterator[float]:
        """A connection delivered long enough: the fault episode is over."""
        if self._episode_failures:
            log.info(
                "%s: recovered after %d connection fault(s)",
                self.config.ws_url,
                self._episode_failures,
            )
        self._episode_failures = 0
        return self._delays()

    def _fault_delay(self, cause: str, detail: str, delays: Iterator[float]) -> float:
        """The wait before reconnecting, logged once per episode at WARNING."""
        # A planned server restart is not a failure: reconnect at once (once).
        planned = cause == "server_close" and self._episode_failures == 0
        delay = 0.0 if planned else next(delays)
        self._episode_failures += 1
        first = self._episode_failures == 1
        log.log(
            logging.WARNING if first else logging.DEBUG,
            "%s: connection fault (%s: %s); reconnecting in %.2f s%s",
            self.config.ws_url,
            cause,
            detail,
            delay,
            "; further faults until it recovers are logged at debug level"
            if first
            else "",
        )
        return delay

    async def _serve(self, client: WsClient) -> str:
        """Subscribe and keep the connection alive until it ends; returns the cause."""
        self._client = client
        if self._paused:
            client.pause_reading()  # the consumer has not caught up yet
        self.stats.connects += 1
        now_us = self._last_rx_us = self._clock()
        self.session.connected(now_us // 1000)
        for frame in self.session.data_to_send():
            if not client.send_text(frame):
                break  # closed before we could subscribe: ``closed`` says how
        self.planner.connected(now_us)
        log.info(
            "%s: connected (%d), %d streams subscribed",
            self.config.ws_url,
            self.stats.connects,
            self._stream_count,
        )
        if self._fetcher is not None:
            self._fetcher.pump()
        watchdog = asyncio.create_task(watch(client, self.config, self._silent_for_s))
        try:
            closed = await client.closed
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
            self._client = None
            self._wire_bytes += client.bytes_received
        if watchdog.done() and not watchdog.cancelled():
            return watchdog.result()  # the watchdog aborted: silence or keepalive
        if closed.code == 1001:
            return "server_close"
        if closed.error is not None:
            return "reset"
        return "closed"

    def _silent_for_s(self) -> float:
        """Seconds since the last frame (or since the connection opened)."""
        return (self._clock() - self._last_rx_us) / 1e6

    def _on_text(self, data: bytes, recv_us: int) -> None:
        """One text frame, straight from the socket: the hot path."""
        event = self._receive(data, recv_us)
        if self._tap is not None:
            self._tap.frame(data, recv_us, _is_json_object(event))
        out = self._out
        if not out:
            self._signal()
        try:
            if type(event) is Frame:
                payload = event.data
                if type(payload) is not Depth:
                    out.append(event)
                    if type(payload) is Trade and self.gaps is not None:
                        self._check_trade_id(event.stream, payload, recv_us)
                else:
                    sync = self._syncs.get(event.stream)
                    if sync is not None and sync.continues(payload):
                        out.append(event)
                    else:
                        self._route(event)
            else:
                self._route(event)
        except AuthError as exc:  # fatal: stop this connection and surface it
            self._fatal = exc
            if self._client is not None:
                self._client.abort()
            return
        self._last_rx_us = self.last_frame_us = recv_us
        self._frames_this_connection += 1
        self._out_bytes += len(data)
        if (
            len(self._out) >= self.config.max_pending
            or self._out_bytes >= self.config.max_pending_bytes
        ) and not self._paused:
            self._pause()

    # Trade backfill.

    def _check_trade_id(self, stream: str, trade: Trade, recv_us: int) -> None:
        found = self.planner.trade_seen(stream, trade.s, trade.t, recv_us)
        if found is None:
            return
        if isinstance(found, TradeBackfill):
            self._report_backfill(found)
            return
        log.info(
            "%s: trades %d..%d missed; fetching them back",
            stream,
            found.first,
            found.last,
        )
        if self._fetcher is not None:
            self._fetcher.pump()

    def _count(self, kind: FetchKind, answered: bool) -> None:
        """A fetch ended: depth snapshots are counted in the stats (and metrics)."""
        if kind is FetchKind.DEPTH:
            if answered:
                self.stats.snapshots += 1
            else:
                self.stats.snapshot_failures += 1

    def _deliver(self, records: list[Any]) -> None:
        """Records from the fetches (and a close): reports are logged and noted."""
        for record in records:
            if type(record) is TradeBackfill:
                self._report_backfill(record)
            else:
                self._emit(record)

    def _report_backfill(self, report: TradeBackfill) -> None:
        if report.reason is None:
            log.info(
                "%s: trades %d..%d backfilled (%d requests)",
                report.stream,
                report.first,
                report.last,
                report.requests,
            )
        else:
            log.warning(
                "%s: trades %d..%d not backfilled (%s): %d of %d still missing",
                report.stream,
                report.first,
                report.last,
                report.reason,
                report.missing,
                report.last - report.first + 1,
            )
        note = getattr(self._tap, "backfill", None)
        if note is not None:
            note(report)
        self._emit(report)

    def _pause(self) -> None:
        # The consumer is behind: stop reading, so TCP pushes back on the server.
        self.stats.pushback_waits += 1
        self._paused = True
        if self._client is not None:
            self._client.pause_reading()

    def _signal(self) -> None:
        """Records are (about to be) ready: wake whoever waits for them."""
        self._ready.set()
        if self.on_ready is not None:
            self.on_ready()

    def _on_binary(self, size: int, recv_us: int) -> None:
        """A binary frame: the exchange sends text only, so it is a dead letter."""
        self.session.count_bad(BadReason.BINARY.value)
        detail = f"a binary frame of {size} bytes"
        self._emit(BadFrame(None, BadReason.BINARY, detail, None, "", recv_us))

    # Routing and book sync.

    def _route(self, event: Decoded) -> None:
        if isinstance(event, Frame):
            records = self.books.on_frame(event)
            if records is None:
                self._emit(event)
                return
            for record in records:
                if type(record) is Resync:
                    log.info("%s: book resync (%s)", record.stream, record.reason)
                self._emit(record)
            if self._fetcher is not None:
                self._fetcher.pump()
        elif isinstance(event, ServerError):
            code, message = event.error.code, event.error.message
            if self._has_private and refuses_subscription(code, message):
                msg = (
                    "the exchange refused the private subscription: "
                    f"{printable(message)[:200]} (code {code}); {auth_hint(message)}"
                )
                raise AuthError(msg)
            log.warning("server error frame: %s %s", code, printable(message)[:200])
            self._emit(event)
        else:
            self._emit(event)

    def _emit(self, record: Record) -> None:
        if not self._out:
            self._signal()
        self._out.append(record)

    def _disconnected(self, cause: str) -> None:
        self.stats.disconnects[cause] += 1
        recv_us = self._clock()
        if self._tap is not None:
            self._tap.disconnected(cause, recv_us)
        for record in self.planner.disconnected(recv_us):
            self._emit(record)


def _is_json_object(event: Decoded) -> bool:
    return not isinstance(event, BadFrame) or event.reason not in _NOT_OBJECT


def _is_fatal(exc: BaseException) -> bool:
    """Only our own refusals end a connection; any answer of the peer is a fault."""
    if isinstance(exc, HandshakeError):
        return False  # any HTTP status on the upgrade, redirects included
    return classify(exc) is Decision.FATAL and isinstance(exc, BpxError)


def _cause_of(exc: BaseException) -> str:
    if isinstance(exc, HandshakeError):
        return f"http_{exc.status}" if exc.status else "handshake"
    if isinstance(exc, OSError | TimeoutError):
        return "unreachable"
    return "error"
