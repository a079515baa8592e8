"""The simulator's network face: WebSocket streams and REST on one loopback port.

``/api/v1/...`` answers REST, ``/sim/...`` is the test control surface (pause, resume,
faults, the engine's own book), and every other path is the WebSocket endpoint speaking
the exchange protocol: SUBSCRIBE/UNSUBSCRIBE, no acknowledgements, error frames with
``"id": null``, signed private subscriptions, server pings, Close 1001 on shutdown.
(Over 450 lines: the WebSocket and HTTP halves share one client table, one fault
list and one rate limit; REST answers live in ``rest``, frames in ``encode``.)

Past the usual module size because the fan-out, the fault injection, the replay
cursors and the HTTP routes all act on the same per-client state (`_Client`).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import http
import logging
import math
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, urlsplit

import msgspec
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ..backpack.signing import verify_subscribe
from ..backpack.streams import Channel, StreamName, parse_stream
from ..errors import AuthError, ConfigError
from .catalog import assets, securities
from .encode import Dialect, FrameEncoder
from .engine import MarketSpec
from .exchange import Exchange, Output, SimConfig
from .faults import Fault, FaultKind, parse_fault
from .replay import RecordingFeed, replay_markets
from .rest import RestAnswer, answer

__all__ = ["AUTH_ERROR_CODE", "ServerConfig", "SimServer"]

# Tick, step and start price of a replayed market: not recorded, never checked.
_ANY = ("0.00000001", "0.00000001", "1")

log = logging.getLogger("bpx_flows.sim")

AUTH_ERROR_CODE = 4003  # the simulator's choice: the exchange's code is undocumented
_MALFORMED = b'{"stream":"trade.SOL_USDC","data":{"e":"trade","E":17'
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """How the simulator listens and paces itself.

    Attributes:
        host: listen address; keep it on loopback.
        port: listen port; 0 picks a free one.
        speed: simulated seconds per wall-clock second.
        tick_s: how often the clock advances the exchange, seconds.
        ping_interval_s: server Ping period (the exchange: 60 s).
        ping_timeout_s: Pong deadline before the server closes (the exchange: 120 s).
        dialect: which form of the protocol to speak (see ``encode.py``).
        account_key: base64 public key of the simulated account; ``None`` refuses
            every private subscription.
        clock_skew_ms: added to wall time when checking signature windows.
        max_buffer_bytes: a client whose unsent backlog exceeds this is cut off with
            Close 1008 (slow consumer), as an exchange protects itself.
        start_us: simulated time at start; ``None`` is now.
        rest_limit: ``(requests, seconds)``: the REST requests allowed in any window
            of that many wall seconds (Backpack: 2,000 a minute); beyond, 429 with
            the exchange's body and a ``Retry-After``. ``None``: no limit.
        close_after_replay: replay mode: close each connection (1000) after its
            last frame; ``False`` keeps it open and silent (benchmarks: a client
            that reconnected would read the recording again).
        replay_delay_s: replay mode: start a connection's replay this long after
            its first SUBSCRIBE, so a client that subscribes stream by stream (ccxt
            does) gets every frame of each.
        history_limit: the same for historical candles and trades
            (``/api/v1/klines``, ``/api/v1/trades/history``; Backpack: 30 a minute),
            counted on top of ``rest_limit``.
    """

    host: str = "127.0.0.1"
    port: int = 0
    speed: float = 1.0
    tick_s: float = 0.01
    ping_interval_s: float = 60.0
    ping_timeout_s: float = 120.0
    dialect: Dialect = Dialect.WIRE
    account_key: str | None = None
    clock_skew_ms: int = 0
    max_buffer_bytes: int = 32 * 1024 * 1024
    start_us: int | None = None
    rest_limit: tuple[int, float] | None = (2_000, 60.0)
    close_after_replay: bool = True
    replay_delay_s: float = 0.0
    history_limit: tuple[int, float] | None = (30, 60.0)


@dataclass(eq=False, slots=True)
class _Client:
    ws: ServerConnection
    streams: set[str] = field(default_factory=set)
    frames: int = 0
    depth_frames: int = 0
    skip_depth: int = 0
    stalled_until: float = 0.0
    closing: bool = False  # dropped or closed by a fault: fire nothing more on it
    recent_depth: deque[bytes] = field(default_factory=lambda: deque(maxlen=64))
    pending: list[bytes] = field(default_factory=list)


@dataclass(slots=True)
class SimStats:
    """What the simulator did, for tests and ``/sim/status``."""

    connections: int = 0
    frames_sent: int = 0
    rest_requests: int = 0
    rest_throttled: int = 0  # REST requests answered 429 by the rate limits
    slow_consumers_cut: int = 0
    errors: int = 0
    faults_fired: dict[str, int] = field(default_factory=dict)
    fault_times_us: list[int] = field(default_factory=list)  # wall clock, each firing


_HISTORY_PATHS = frozenset({"/api/v1/klines", "/api/v1/trades/history"})
_TOO_MANY = b'{"code":"TOO_MANY_REQUESTS","message":"Too many requests"}'


class _Window:
    """At most ``count`` events in any ``seconds`` of wall time (a sliding window)."""

    def __init__(self, count: int, seconds: float) -> None:
        self._count = count
        self._seconds = seconds
        self._times: deque[float] = deque()

    def wait_s(self, now: float) -> float:
        """0 if an event may happen now (and counts it), else seconds until one may."""
        times = self._times
        while times and times[0] <= now - self._seconds:
            times.popleft()
        if len(times) >= self._count:
            return times[0] + self._seconds - now
        times.append(now)
        return 0.0


class _RateLimits:
    """The exchange's REST limits: all requests, and historical data on top."""

    def __init__(
        self, rest: tuple[int, float] | None, history: tuple[int, float] | None
    ) -> None:
        self._rest = _Window(*rest) if rest else None
        self._history = _Window(*history) if history else None

    def refuse(self, path: str) -> int | None:
        """``None`` to serve ``path`` now, else the seconds for ``Retry-After``."""
        now = time.monotonic()
        for window, applies in (
            (self._history, path in _HISTORY_PATHS),
            (self._rest, True),
        ):
            if window is not None and applies:
                wait = window.wait_s(now)
                if wait > 0:
                    return max(1, math.ceil(wait))
        return None


class SimServer:
    """A running simulated exchange; ``await start()``, then connect to ``ws_url``."""

    def __init__(
        self,
        exchange: SimConfig | None = None,
        config: ServerConfig | None = None,
        faults: list[Fault] | None = None,
        replay: RecordingFeed | None = None,
    ) -> None:
        self.config = config or ServerConfig()
        self.replay = replay
        self._replay_tasks: set[asyncio.Task[None]] = set()
        self._max_cursor = 0
        self._exchange_config = exchange or SimConfig()
        self.faults: list[Fault] = list(faults or [])
        self.encoder = FrameEncoder(self.config.dialect)
        self.stats = SimStats()
        self._limits = _RateLimits(self.config.rest_limit, self.config.history_limit)
        self.exchange: Exchange | None = None
        self._clients: set[_Client] = set()
        self._subscribers: dict[str, set[_Client]] = {}
        self._server: Server | None = None
        self._clock: asyncio.Task[None] | None = None
        self._paused_at: float | None = None
        self._running = asyncio.Event()  # cleared while paused
        self._running.set()
        self._paused_total = 0.0
        self._t0 = 0.0
        self._start_us = 0
        self.port = 0

    # Lifecycle.

    async def start(self) -> None:
        """Bind, build the exchange at the start time, and start the clock."""
        cfg = self.config
        self._start_us = cfg.start_us or time.time_ns() // 1000
        self.exchange = Exchange(self._exchange_config, self._start_us)
        self._t0 = time.monotonic()
        self._server = await serve(
            self._handle,
            cfg.host,
            cfg.port,
            process_request=self._process_request,
            ping_interval=cfg.ping_interval_s,
            ping_timeout=cfg.ping_timeout_s,
            close_timeout=2.0,
            max_queue=64,
        )
        self.port = next(iter(self._server.sockets)).getsockname()[1]
        if self.replay is None:
            self._clock = asyncio.create_task(self._run_clock(), name="sim-clock")

    async def stop(self) -> None:
        """Send Close 1001 to every client, wait for them briefly, then stop."""
        for task in [self._clock, *self._replay_tasks]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._server is not None:
            self._server.close(close_connections=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5.0)

    @property
    def ws_url(self) -> str:
        """The WebSocket endpoint."""
        return f"ws://{self.config.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        """The REST base URL."""
        return f"http://{self.config.host}:{self.port}"

    # Control.

    def pause(self) -> None:
        """Freeze simulated time: no more events until ``resume``."""
        if self._paused_at is None:
            self._paused_at = time.monotonic()
            self._running.clear()

    def resume(self) -> None:
        """Let simulated time run again from where it stopped."""
        if self._paused_at is not None:
            self._paused_total += time.monotonic() - self._paused_at
            self._paused_at = None
            self._running.set()

    def set_speed(self, speed: float) -> None:
        """Change simulated seconds per wall second; simulated time stays continuous."""
        now_us = self.sim_now_us()
        self._start_us, self._t0, self._paused_total = now_us, time.monotonic(), 0.0
        if self._paused_at is not None:
            self._paused_at = self._t0
        self.config = replace(self.config, speed=speed)

    def set_clock_skew(self, skew_ms: int) -> None:
        """Pretend the server clock is ``skew_ms`` ahead when checking signatures."""
        self.config = replace(self.config, clock_skew_ms=skew_ms)

    def arm(self, fault: Fault) -> None:
        """Arm a fault; it fires when its condition is met on some connection."""
        self.faults.append(fault)

    @property
    def start_us(self) -> int:
        """Simulated time at start (scheduled cascades count from it), microseconds."""
        return self._start_us

    def sim_now_us(self) -> int:
        """The simulated clock, microseconds since the epoch."""
        now = self._paused_at if self._paused_at is not None else time.monotonic()
        elapsed = now - self._t0 - self._paused_total
        return self._start_us + int(elapsed * self.config.speed * 1_000_000)

    # The clock and fan-out.

    async def _run_clock(self) -> None:
        assert self.exchange is not None
        while True:
            await asyncio.sleep(self.config.tick_s)
            if self._paused_at is not None:
                continue
            try:
                self._dispatch(self.exchange.advance_to(self.sim_now_us()))
            except Exception:  # a simulator bug must be loud, and must not stop time
                self.stats.errors += 1
                log.exception("simulator clock tick failed")

    # Replay mode: one cursor per client through the recording.

    async def _replay_to(self, client: _Client) -> None:
        assert self.replay is not None
        frames = self.replay.frames
        speed = self.config.speed
        if self.config.replay_delay_s:
            await asyncio.sleep(self.config.replay_delay_s)
        first_us = frames[0].recv_us
        started = time.monotonic()
        chunk = 0
        for cursor, frame in enumerate(frames):
            await self._running.wait()
            self._max_cursor = max(self._max_cursor, cursor)
            if speed > 0:
                due_s = (frame.recv_us - first_us) / 1e6 / speed
                wait_s = due_s - (time.monotonic() - started)
                if wait_s > 0:
                    self._flush(client)
                    await asyncio.sleep(wait_s)
            if frame.stream not in client.streams:
                continue
            self._queue(client, frame.raw, frame.stream.startswith("depth."))
            chunk += 1
            if chunk >= 512:  # write in chunks; TCP pushes back on a slow reader
                chunk = 0
                self._flush(client)
                await client.ws.drain()
        self._flush(client)
        if self.config.close_after_replay:
            await client.ws.close(1000, "end of replay")

    def _start_replay(self, client: _Client) -> None:
        task = asyncio.create_task(self._replay_to(client), name="sim-replay")
        self._replay_tasks.add(task)
        task.add_done_callback(self._replay_tasks.discard)

    # Synthetic mode: fan the exchange's frames out to subscribers.

    def _dispatch(self, out: list[Output]) -> None:
        subscribers = self._subscribers
        encode = self.encoder.encode
        touched: set[_Client] = set()
        for stream, record in out:
            clients = subscribers.get(stream)
            if not clients:
                continue
            data = encode(stream, record)
            is_depth = stream.startswith("depth.")
            for client in clients:
                self._queue(client, data, is_depth)
                touched.add(client)
        for client in touched:
            self._flush(client)

    def _queue(self, client: _Client, data: bytes, is_depth: bool) -> None:
        if client.stalled_until:
            if time.monotonic() < client.stalled_until:
                return
            client.stalled_until = 0.0
        if is_depth:
            if client.skip_depth:
                client.skip_depth -= 1
                client.depth_frames += 1
                return
            client.recent_depth.append(data)
            client.depth_frames += 1
        client.frames += 1
        client.pending.append(data)
        if self.faults:
            self._maybe_fire(client, is_depth)

    def _maybe_fire(self, client: _Client, is_depth: bool) -> None:
        if client.closing:
            return
        for fault in list(self.faults):
            kind = fault.kind
            depth_fault = kind in (FaultKind.SKIP_DEPTH, FaultKind.REPEAT_DEPTH)
            if kind in (FaultKind.REST_STATUS, FaultKind.REST_DELAY):
                continue
            if depth_fault and (not is_depth or client.depth_frames < fault.after):
                continue
            if not depth_fault and client.frames < fault.after:
                continue
            self._fired(fault)
            if kind is FaultKind.SKIP_DEPTH:
                client.skip_depth = fault.count
            elif kind is FaultKind.REPEAT_DEPTH:
                client.pending.extend(list(client.recent_depth)[-fault.count - 1 : -1])
            elif kind is FaultKind.MALFORMED:
                client.pending.append(_MALFORMED)
            elif kind is FaultKind.OVERSIZED:
                client.pending.append(b'"' + b"x" * max(fault.count - 2, 0) + b'"')
            elif kind is FaultKind.STALL:
                client.stalled_until = time.monotonic() + fault.seconds
            elif kind is FaultKind.DROP:
                client.closing = True
                self._flush(client)
                client.ws.transport.abort()
                return
            elif kind is FaultKind.CLOSE:
                client.closing = True
                self._flush(client)
                asyncio.get_running_loop().create_task(
                    client.ws.close(1001, "server restarting")
                )
                return

    def _fired(self, fault: Fault) -> None:
        fault.times -= 1
        if fault.times <= 0:
            self.faults.remove(fault)
        self.stats.faults_fired[fault.kind.value] = (
            self.stats.faults_fired.get(fault.kind.value, 0) + 1
        )
        self.stats.fault_times_us.append(time.time_ns() // 1000)
        log.info("fault fired: %s", fault.kind.value)

    def _flush(self, client: _Client) -> None:
        if not client.pending:
            return
        ws = client.ws
        pending, client.pending = client.pending, []
        if ws.protocol.state.name != "OPEN" or ws.transport.is_closing():
            return  # dropped (by a fault or the peer): writing would only warn
        for data in pending:
            ws.protocol.send_text(data)
        ws.send_data()
        self.stats.frames_sent += len(pending)
        if ws.transport.get_write_buffer_size() > self.config.max_buffer_bytes:
            self.stats.slow_consumers_cut += 1
            log.warning("cutting off a slow consumer (%s)", ws.remote_address)
            ws.transport.abort()

    # WebSocket connections.

    async def _handle(self, ws: ServerConnection) -> None:
        client = _Client(ws)
        self._clients.add(client)
        self.stats.connections += 1
        try:
            async for message in ws:
                await self._control(client, message)
        except ConnectionClosed:
            pass
        finally:
            self._clients.discard(client)
            for stream in list(client.streams):
                self._unsubscribe(client, stream)
            self._refresh_wanted()

    async def _control(self, client: _Client, message: str | bytes) -> None:
        try:
            request = msgspec.json.decode(message)
        except msgspec.DecodeError:
            await self._error(client, 4002, "Parse error")
            return
        method = request.get("method") if isinstance(request, dict) else None
        params = request.get("params") if isinstance(request, dict) else None
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE") or not isinstance(params, list):
            await self._error(client, 4002, "Parse error")
            return
        names: list[StreamName] = []
        for param in params:
            try:
                names.append(parse_stream(str(param)))
            except ConfigError as exc:
                is_window = "depth window" in str(exc)
                code, text = (
                    (4008, "Invalid depth window")
                    if is_window
                    else (4006, "Invalid stream")
                )
                await self._error(client, code, text)
        if method == "UNSUBSCRIBE":
            for name in names:
                self._unsubscribe(client, str(name))
            self._refresh_wanted()
            return
        if any(n.private for n in names) and not await self._authorised(
            client, request
        ):
            names = [n for n in names if not n.private]
        assert self.exchange is not None
        known = self._symbols()
        first = not client.streams
        for name in names:
            if name.symbol is not None and name.symbol not in known:
                continue  # the exchange answers unknown symbols with silence
            self._subscribe(client, str(name))
            if name.channel is Channel.POSITION_UPDATE and self.replay is None:
                rows = self.exchange.position_snapshot(name.symbol)
                client.pending.extend(
                    self.encoder.encode(str(name), row) for row in rows
                )
                self._flush(client)
        self._refresh_wanted()
        if self.replay is not None and first and client.streams:
            self._start_replay(client)

    def _symbols(self) -> set[str]:
        if self.replay is not None:
            return set(self.replay.symbols())
        assert self.exchange is not None
        return set(self.exchange.engines)

    async def _authorised(self, client: _Client, request: dict[str, object]) -> bool:
        now_ms = time.time_ns() // 1_000_000 + self.config.clock_skew_ms
        try:
            key = verify_subscribe(request.get("signature"), now_ms)
            if key != self.config.account_key:
                msg = "Unknown API key"
                raise AuthError(msg)
        except AuthError as exc:
            await self._error(client, AUTH_ERROR_CODE, str(exc))
            return False
        return True

    async def _error(self, client: _Client, code: int, message: str) -> None:
        frame = _encode({"id": None, "error": {"code": code, "message": message}})
        with contextlib.suppress(ConnectionClosed):
            await client.ws.send(frame.decode())

    def _subscribe(self, client: _Client, stream: str) -> None:
        client.streams.add(stream)
        self._subscribers.setdefault(stream, set()).add(client)

    def _unsubscribe(self, client: _Client, stream: str) -> None:
        client.streams.discard(stream)
        clients = self._subscribers.get(stream)
        if clients is not None:
            clients.discard(client)
            if not clients:
                del self._subscribers[stream]

    def _refresh_wanted(self) -> None:
        assert self.exchange is not None
        self.exchange.wanted = set(self._subscribers)

    # REST and control over HTTP.

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        url = urlsplit(request.path)
        query = dict(parse_qsl(url.query))
        if url.path.startswith("/api/"):
            self.stats.rest_requests += 1
            return _response(await self._rest(url.path, query), self.sim_now_us())
        if url.path.startswith("/sim/"):
            return _response(self._sim_control(url.path, query))
        if "upgrade" not in request.headers.get("Connection", "").lower():
            return _response(RestAnswer(404, b"Not Found", "text/plain"))
        return None

    async def _rest(self, path: str, query: Mapping[str, str]) -> RestAnswer:
        assert self.exchange is not None
        refused = self._limits.refuse(path)
        if refused is not None:
            self.stats.rest_throttled += 1
            body = _encode(
                {"code": "TOO_MANY_REQUESTS", "message": "Too many requests"}
            )
            return RestAnswer(429, body, retry_after_s=refused)
        for fault in list(self.faults):
            if fault.kind is FaultKind.REST_DELAY:
                self._consume(fault)
                await asyncio.sleep(fault.seconds)
            elif fault.kind is FaultKind.REST_STATUS and path == "/api/v1/depth":
                self._consume(fault)
                if fault.status == 429:
                    body = _encode(
                        {"code": "TOO_MANY_REQUESTS", "message": "Too many requests"}
                    )
                    return RestAnswer(429, body, retry_after_s=1)
                return RestAnswer(fault.status, b"Service unavailable", "text/plain")
        if self.replay is not None:
            return self._replay_rest(path, query)
        # Serve the state as of now, even between clock ticks.
        if self._paused_at is None:
            self._dispatch(self.exchange.advance_to(self.sim_now_us()))
        return answer(self.exchange, path, query)

    def _replay_rest(self, path: str, query: Mapping[str, str]) -> RestAnswer:
        assert self.replay is not None
        if path == "/api/v1/markets":
            return RestAnswer(200, _encode(replay_markets(self.replay.symbols())))
        if path == "/api/v1/depth":
            body = self.replay.snapshot(query.get("symbol", ""), self._max_cursor)
            if body is None:
                error = {
                    "code": "INVALID_CLIENT_REQUEST",
                    "message": "Invalid market symbol",
                }
                return RestAnswer(400, _encode(error))
            return RestAnswer(200, body)
        if path in ("/api/v1/assets", "/api/v1/securities"):
            # What clients such as ccxt read while loading markets, for the
            # replayed markets (bases and quotes from the names).
            specs = tuple(
                MarketSpec(m.symbol, m.baseSymbol, m.quoteSymbol, m.marketType, *_ANY)
                for m in replay_markets(self.replay.symbols())
            )
            rows = assets(specs) if path == "/api/v1/assets" else securities(specs)
            return RestAnswer(200, _encode(rows))
        text = b"Not Found (replay mode serves markets, assets, securities and depth)"
        return RestAnswer(404, text, "text/plain")

    def _consume(self, fault: Fault) -> None:
        fault.count -= 1
        self.stats.faults_fired[fault.kind.value] = (
            self.stats.faults_fired.get(fault.kind.value, 0) + 1
        )
        if fault.count <= 0:
            self.faults.remove(fault)

    def _sim_control(self, path: str, query: Mapping[str, str]) -> RestAnswer:
        assert self.exchange is not None
        if path == "/sim/pause":
            self.pause()
        elif path == "/sim/resume":
            self.resume()
        elif path == "/sim/fault":
            try:
                self.arm(parse_fault(query))
            except ConfigError as exc:
                return RestAnswer(400, str(exc).encode(), "text/plain")
        elif path == "/sim/book":
            symbol = query.get("symbol", "")
            if symbol not in self.exchange.engines:
                return RestAnswer(400, b"unknown symbol", "text/plain")
            return RestAnswer(200, _encode(self.exchange.depth_snapshot(symbol, 10**9)))
        elif path != "/sim/status":
            return RestAnswer(404, b"Not Found", "text/plain")
        status = {
            "paused": self._paused_at is not None,
            "sim_now_us": self.sim_now_us(),
            "connections": len(self._clients),
            "stats": msgspec.to_builtins(self.stats),
        }
        return RestAnswer(200, _encode(status))


def _response(result: RestAnswer, now_us: int | None = None) -> Response:
    headers = Headers(
        [
            ("Content-Type", result.content_type),
            ("Content-Length", str(len(result.body))),
        ]
    )
    if now_us is not None:  # the exchange's clock, as its answers carry it
        headers["Date"] = email.utils.formatdate(now_us / 1e6, usegmt=True)
    if result.retry_after_s is not None:
        headers["Retry-After"] = str(result.retry_after_s)
    phrase = http.HTTPStatus(result.status).phrase
    return Response(result.status, phrase, headers, result.body)
