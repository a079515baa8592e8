"""One resilient WebSocket connection: subscribe, decode, sync books, reconnect.

The protocol work is done by the sans-I/O ``Session`` and ``BookSync``; this module
owns the socket, the timers and the REST calls. Records are handed over in batches
through ``take()``; when the consumer falls behind by ``max_pending`` records, the
reader stops reading, so the kernel's buffers fill and TCP pushes back on the server
(which may then cut us off as a slow consumer: counted as a reconnect, and every book
is resynced). Memory therefore stays bounded; nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bpx_flows.connectors.backpack.backfill import (
    HISTORY_PATH,
    TradeBackfill,
    TradeGaps,
    id_ranges,
)
from bpx_flows.connectors.backpack.books import BookRouter
from bpx_flows.connectors.backpack.booksync import BookSync, ResyncReason, SyncRecord
from bpx_flows.connectors.backpack.decode import BadFrame, BadReason, Decoded
from bpx_flows.connectors.backpack.kline_history import (
    KLINES_PATH,
    historical_klines,
    kline_pages,
)
from bpx_flows.connectors.backpack.retry import Decision, backoff, classify
from bpx_flows.connectors.backpack.seeds import (
    MARK_PRICES_PATH,
    OPEN_INTEREST_PATH,
    mark_price_rows,
    open_interest_rows,
)
from bpx_flows.connectors.backpack.session import Session
from bpx_flows.connectors.backpack.signing import Credentials
from bpx_flows.connectors.backpack.streams import Channel, StreamName
from bpx_flows.connectors.backpack.text import printable
from bpx_flows.connectors.backpack.wire import Depth, Frame, ServerError, Trade
from bpx_flows.connectors.clock import Watermark
from bpx_flows.connectors.errors import AuthError, BpxError
from bpx_flows.connectors.rest import RestClient
from bpx_flows.connectors.wsclient import HandshakeError, WsClient, open_client

__all__ = [
    "DEFAULT_WS_URL",
    "Connection",
    "ConnectionConfig",
    "ConnectionStats",
    "Record",
    "Tap",
]

log = logging.getLogger("bpx_flows.connection")

DEFAULT_WS_URL = "wss://ws.backpack.exchange"
# Error codes that mean a private subscription was refused. Backpack does not document
# its code; the simulator uses 4003. Messages are matched as a fallback.
_AUTH_CODES = {4003}
_AUTH_WORDS = ("signature", "api key", "unauthori", "expired")

_NOT_OBJECT = (BadReason.NOT_JSON, BadReason.NOT_A_FRAME)

_MAX_FETCHES = 8  # snapshot fetches in flight per connection

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


class Connection:
    """A fixed group of streams on one WebSocket, kept alive for as long as it runs.

    Args:
        streams: what to subscribe.
        config: timings and limits.
        credentials: for ``account.*`` streams.
        rest: the REST client for depth snapshots (required for depth streams).
        tap: receives raw frames and REST answers (the recorder).
        rng: randomness for backoff jitter.

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
    ) -> None:
        self.config = config
        self.session = Session(streams, credentials, config.window_ms)
        self._open_interest = [
            s for s in streams if s.channel is Channel.OPEN_INTEREST and s.symbol
        ]
        self._mark_prices = [
            s for s in streams if s.channel is Channel.MARK_PRICE and s.symbol
        ]
        self._kline_history = [
            s
            for s in streams
            if s.channel is Channel.KLINE and s.symbol and s.interval is not None
        ]
        self._kline_history_started = False
        self.stats = ConnectionStats()
        self._rest = rest
        self._tap = tap
        self._rng = rng or random.Random()
        self.books = BookRouter(str(s) for s in streams if s.channel is Channel.DEPTH)
        self._fetch_attempts: dict[str, int] = {}
        self._fetching = 0  # snapshot fetches in flight
        if self.books.syncs and rest is None:
            msg = "depth streams need a REST client for their snapshots"
            raise ValueError(msg)
        self._out: list[Record] = []
        self._out_bytes = 0  # frame bytes behind the records in ``_out``
        self._wire_bytes = 0  # received by the connections that have ended
        self._paused = False  # reading paused until the consumer catches up
        self._ready = asyncio.Event()
        self.on_ready: Callable[[], None] | None = None  # called as records arrive
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: WsClient | None = None
        self._last_rx_us = time.time_ns() // 1000
        self.last_frame_us: int | None = None  # receive time of the last text frame
        self.started_us = self._last_rx_us  # when the connection object was made
        self._receive = self.session.receive
        self._syncs = self.books.syncs
        self._fatal: AuthError | None = None
        self._cause: str | None = None  # set by the watchdog before it aborts
        self._closing = False
        self._has_private = any(s.private for s in streams)
        self._frames_this_connection = 0
        self._episode_failures = 0  # connection faults since data last flowed
        self.gaps: TradeGaps | None = None  # trade ids missed, being fetched back
        if config.backfill_trades and any(s.channel is Channel.TRADE for s in streams):
            if rest is None:
                msg = "trade backfill needs a REST client"
                raise ValueError(msg)
            self.gaps = TradeGaps(max_wait_us=int(config.backfill_max_wait_s * 1e6))
        self._backfilling: asyncio.Task[None] | None = None

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
        if self.gaps is not None:
            for report in self.gaps.close(time.time_ns() // 1000):
                self._report_backfill(report)
        if self._client is not None:
            await self._client.close()
        for task in [self._task, *self._tasks]:
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
        delays = backoff(cfg.backoff_initial_s, cfg.backoff_max_s, rng=self._rng)
        failures = 0
        while not self._closing:
            started = time.monotonic()
            self._frames_this_connection = 0
            try:
                client = await open_client(
                    cfg.ws_url,
                    self._on_text,
                    compression=cfg.compression,
                    on_binary=self._on_binary,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # classified right below: retry or fatal
                if _is_fatal(exc):
                    raise
                failures += 1
                if cfg.max_reconnects is not None and failures > cfg.max_reconnects:
                    raise
                cause = _cause_of(exc)
                detail = printable(str(exc))[:200]
            else:
                try:
                    cause = await self._serve(client)
                except Exception as exc:  # the socket broke under us: reconnect
                    if _is_fatal(exc):
                        raise
                    client.abort()
                    cause, detail = "error", printable(repr(exc))[:200]
                else:
                    detail = cause
                stable = (
                    self._frames_this_connection > 0
                    and time.monotonic() - started >= cfg.stable_s
                )
                if stable:
                    failures = 0
                    if self._episode_failures:
                        log.info(
                            "%s: recovered after %d connection fault(s)",
                            cfg.ws_url,
                            self._episode_failures,
                        )
                    self._episode_failures = 0
                    delays = backoff(
                        cfg.backoff_initial_s, cfg.backoff_max_s, rng=self._rng
                    )
                else:
                    failures += 1
            if self._fatal is not None:
                raise self._fatal
            if self._closing:
                break
            self._disconnected(cause)
            # A planned server restart is not a failure: reconnect at once (once).
            planned = cause == "server_close" and self._episode_failures == 0
            delay = 0.0 if planned else next(delays)
            self._episode_failures += 1
            level = logging.WARNING if self._episode_failures == 1 else logging.DEBUG
            log.log(
                level,
                "%s: connection fault (%s: %s); reconnecting in %.2f s%s",
                cfg.ws_url,
                cause,
                detail,
                delay,
                "; further faults until it recovers are logged at debug level"
                if self._episode_failures == 1
                else "",
            )
            await asyncio.sleep(delay)

    async def _serve(self, client: WsClient) -> str:
        """Subscribe and keep the connection alive until it ends; returns the cause."""
        self._client = client
        if self._paused:
            client.pause_reading()  # the consumer has not caught up yet
        self.stats.connects += 1
        self._last_rx_us = time.time_ns() // 1000
        self.session.connected(time.time_ns() // 1_000_000)
        for frame in self.session.data_to_send():
            if not client.send_text(frame):
                break  # closed before we could subscribe: ``closed`` says how
        self._seed_from_rest()
        self._start_kline_history()
        watchdog = asyncio.create_task(self._watch(client))
        try:
            closed = await client.closed
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
            self._client = None
            self._wire_bytes += client.bytes_received
        if self._cause is not None:
            cause, self._cause = self._cause, None
            return cause
        if closed.code == 1001:
            return "server_close"
        if closed.error is not None:
            return "reset"
        return "closed"

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
        assert self.gaps is not None
        found = self.gaps.see(stream, trade.s, trade.t, recv_us)
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
        if self._backfilling is None or self._backfilling.done():
            self._backfilling = asyncio.get_running_loop().create_task(
                self._backfill(), name="bpx-backfill"
            )
            self._tasks.add(self._backfilling)
            self._backfilling.add_done_callback(self._tasks.discard)

    async def _backfill(self) -> None:
        """Fetch the open gaps one request at a time, within the history budget."""
        gaps, rest = self.gaps, self._rest
        assert gaps is not None
        assert rest is not None
        while not self._closing:
            request, ended = gaps.next_request(time.time_ns() // 1000)
            for report in ended:
                self._report_backfill(report)
            if request is None:
                return
            try:
                body = await rest.raw(HISTORY_PATH, request.params, history=True)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # RestError, or anything else: the gap's count
                log.warning(
                    "trade history for %s failed: %s",
                    request.gap.symbol,
                    printable(str(exc)),
                )
                given_up = gaps.failed(request, time.time_ns() // 1000)
                if given_up is not None:
                    self._report_backfill(given_up)
                continue
            recv_us = time.time_ns() // 1000
            frames, done = gaps.answered(request, body, recv_us)
            if self._tap is not None:
                params = {**request.params, "ids": id_ranges(f.data.t for f in frames)}
                self._tap.rest(request.gap.stream, HISTORY_PATH, params, body, recv_us)
            for frame in frames:
                self._emit(frame)
            if done is not None:
                self._report_backfill(done)

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

    async def _watch(self, client: WsClient) -> None:
        cfg = self.config
        tick_s = min(x for x in (cfg.silence_s, cfg.ping_interval_s, 1.0) if x)
        last_ping = time.monotonic()
        while True:
            await asyncio.sleep(tick_s / 4)
            now = time.monotonic()
            # Dead lines are caught by the pings; the silence bound catches a live line
            # whose streams stopped (a stalled feed), which pings cannot see.
            silent_s = (time.time_ns() // 1000 - self._last_rx_us) / 1e6
            if cfg.silence_s is not None and silent_s > cfg.silence_s:
                log.warning("no frame for %.1f s; reconnecting", silent_s)
                self._cause = "silence"
                client.abort()
                return
            if cfg.ping_interval_s is None:
                continue
            if cfg.ping_timeout_s is not None:
                pong_age_s = now - client.last_pong_ns / 1e9
                if pong_age_s > cfg.ping_interval_s + cfg.ping_timeout_s:
                    log.warning("no pong for %.1f s; reconnecting", pong_age_s)
                    self._cause = "keepalive"
                    client.abort()
                    return
            if now - last_ping >= cfg.ping_interval_s:
                client.ping()
                last_ping = now

    # Routing and book sync.

    def _route(self, event: Decoded) -> None:
        if isinstance(event, Frame):
            records = self.books.on_frame(event)
            if records is None:
                self._emit(event)
                return
            for record in records:
                self._emit(record)
            self._start_fetches()
        elif isinstance(event, ServerError):
            message = event.error.message.lower()
            refused = event.error.code in _AUTH_CODES or any(
                w in message for w in _AUTH_WORDS
            )
            if self._has_private and refused:
                msg = (
                    "the exchange refused the private subscription: "
                    f"{printable(event.error.message)[:200]} (code "
                    f"{event.error.code}); {_auth_hint(message)}"
                )
                raise AuthError(msg)
            log.warning(
                "server error frame: %s %s",
                event.error.code,
                printable(event.error.message)[:200],
            )
            self._emit(event)
        else:
            self._emit(event)

    def _emit(self, record: Record) -> None:
        if not self._out:
            self._signal()
        self._out.append(record)

    def _seed_from_rest(self) -> None:
        """Ask REST for what the streams send only later: open interest, mark price."""
        if self._rest is None:
            return
        for wanted, seed in (
            (self._open_interest, self._open_interest_seed),
            (self._mark_prices, self._mark_price_seed),
        ):
            if wanted:
                task = asyncio.create_task(seed())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def _start_kline_history(self) -> None:
        """Once a run: the candles before it, for ``kline_backfill_s``."""
        wanted = self.config.kline_backfill_s
        if self._rest is None or not self._kline_history or wanted <= 0:
            return
        if self._kline_history_started:
            return  # a reconnect: trade backfill covers what it lost
        self._kline_history_started = True
        before_us = time.time_ns() // 1000
        task = asyncio.create_task(
            self._fetch_kline_history(before_us - int(wanted * 1e6), before_us),
            name="bpx-kline-history",
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fetch_kline_history(self, start_us: int, before_us: int) -> None:
        # One stream after another, each within the history budget (30 requests a
        # minute at the exchange, shared with trade backfill): progress is logged.
        assert self._rest is not None
        total = 0
        for stream in self._kline_history:
            assert stream.symbol is not None
            assert stream.interval is not None
            pages = kline_pages(stream.symbol, stream.interval, start_us, before_us)
            got = 0
            for params in pages:
                try:
                    body = await self._rest.raw(KLINES_PATH, params, history=True)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the live candles go on without it
                    log.warning(
                        "%s: kline history not fetched: %s",
                        stream,
                        printable(str(exc)),
                    )
                    break
                recv_us = time.time_ns() // 1000
                frames = historical_klines(stream, body, params, before_us, recv_us)
                if self._tap is not None:
                    noted = {**params, "before_us": str(before_us)}
                    self._tap.rest(str(stream), KLINES_PATH, noted, body, recv_us)
                for frame in frames:
                    self._emit(frame)
                got += len(frames)
            total += got
            log.info("%s: %d klines of history (%d requests)", stream, got, len(pages))
        log.info(
            "kline history: %d klines for %d streams", total, len(self._kline_history)
        )

    async def _seed_answer(self, path: str, what: str) -> tuple[bytes, int] | None:
        """The answer of ``path`` with the server's time of it; ``None`` if it failed.

        The time is the answer's ``Date`` less ``Age`` (``RestClient.dated``), or
        the receive time without one. A failure is only logged: the stream brings
        the value itself, later.
        """
        assert self._rest is not None
        try:
            body, server_us = await self._rest.dated(path, {})
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # RestError, or anything else: never the task's end
            log.info("%s not seeded: %s", what, printable(str(exc)))
            return None
        return body, time.time_ns() // 1000 if server_us is None else server_us

    def _emit_seeds(
        self,
        path: str,
        seeds: dict[str, tuple[bytes, list[Frame[Any]]]],
        recv_us: int,
        extra: dict[str, str],
    ) -> None:
        """Record each stream's row of a seeding answer and emit its frames."""
        for stream, (row, frames) in seeds.items():
            if self._tap is not None:
                params = {"symbol": frames[0].data.s, **extra}
                self._tap.rest(stream, path, params, row, recv_us)
            for frame in frames:
                self._emit(frame)

    async def _mark_price_seed(self) -> None:
        # The stream sends every second, but a view needs both sides at once: one
        # request for every perp, dated by the answer (its rows have no time).
        answer = await self._seed_answer(MARK_PRICES_PATH, "mark prices")
        if answer is None:
            return
        body, server_us = answer
        recv_us = time.time_ns() // 1000
        # The CDN may hold an answer a second before its Date: date it no later.
        at_us = server_us - 1_000_000
        streams = [(str(s), s.symbol or "") for s in self._mark_prices]
        seeds = mark_price_rows(streams, body, at_us, recv_us)
        self._emit_seeds(MARK_PRICES_PATH, dict(seeds), recv_us, {"at_us": str(at_us)})

    async def _open_interest_seed(self) -> None:
        # One request for every market (``symbol`` is optional), whatever the number
        # of this connection's open-interest streams; rows carry their own time.
        answer = await self._seed_answer(OPEN_INTEREST_PATH, "open interest")
        if answer is None:
            return
        recv_us = time.time_ns() // 1000
        streams = [(str(s), s.symbol or "") for s in self._open_interest]
        seeds = open_interest_rows(streams, answer[0], recv_us)
        self._emit_seeds(OPEN_INTEREST_PATH, dict(seeds), recv_us, {})

    def _start_fetches(self) -> None:
        # A bounded number in flight: after a mass reconnect the rest wait their
        # turn here (the process's REST budget spaces the requests themselves).
        room = _MAX_FETCHES - self._fetching
        if room <= 0:
            return
        for sync in self.books.start_fetches(room):
            self._fetching += 1
            attempts = self._fetch_attempts.get(sync.stream, 0)
            delay_s = min(5.0, 0.05 * 2**attempts) if attempts else 0.0
            self._fetch_attempts[sync.stream] = attempts + 1
            task = asyncio.create_task(self._snapshot(sync, delay_s))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _snapshot(self, sync: BookSync, delay_s: float) -> None:
        try:
            await self._fetch_snapshot(sync, delay_s)
        finally:
            self._fetching -= 1
        if not self._closing:
            self._start_fetches()  # the next waiting book, or this one again (stale)

    async def _fetch_snapshot(self, sync: BookSync, delay_s: float) -> None:
        assert self._rest is not None
        if delay_s:
            await asyncio.sleep(delay_s)
        limit = self.config.snapshot_limit
        try:
            snapshot, body = await self._rest.depth(sync.symbol, limit)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # RestError, or anything else: never the task's end
            self.stats.snapshot_failures += 1
            log.warning(
                "depth snapshot for %s failed: %s", sync.symbol, printable(str(exc))
            )
            self.books.snapshot_failed(sync.stream)
        else:
            recv_us = time.time_ns() // 1000
            self.stats.snapshots += 1
            if self._tap is not None:
                params = {"symbol": sync.symbol, "limit": str(limit)}
                self._tap.rest(sync.stream, "/api/v1/depth", params, body, recv_us)
            for record in self.books.on_snapshot(sync.stream, snapshot, recv_us):
                self._emit(record)
            if sync.live:
                self._fetch_attempts.pop(sync.stream, None)

    def _disconnected(self, cause: str) -> None:
        self.stats.disconnects[cause] += 1
        recv_us = time.time_ns() // 1000
        if self._tap is not None:
            self._tap.disconnected(cause, recv_us)
        for record in self.books.reset_all(ResyncReason.RECONNECT, recv_us):
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


def _auth_hint(message: str) -> str:
    """What to do about a refused subscription, from the server's lower-case reason."""
    if "expired" in message or "timestamp" in message:
        return (
            "this machine's clock differs from the exchange's by more than the "
            "signature window: synchronise it (NTP)"
        )
    if "api key" in message:
        return (
            "BPX_API_SECRET is not the secret of an API key of this account: "
            "set the secret of a key pair created for it"
        )
    if "signature" in message:
        return "the signature did not verify: set the full base64 secret, unchanged"
    return "check BPX_API_SECRET and the clock"
