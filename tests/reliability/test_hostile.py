"""A hostile server of our own (not the simulator) cannot stop a connection.

``Hostile`` is a WebSocket server (websockets) and a hand-written HTTP server on
127.0.0.1 whose every answer a test scripts: odd frames, absurd values, HTTP errors
on the upgrade, dropped sockets, bad gzip, huge bodies, snapshots ahead of the
stream, closes right after SUBSCRIBE. Each test runs the real ``Connection`` against
it and asserts that it stays up, that what it publishes as a valid book is the true
book, that the fault is counted, and that memory and reconnect rates stay bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from bpx_flows.connectors.backpack.booksync import BookSnapshot, Resync, ResyncReason
from bpx_flows.connectors.backpack.decode import BadFrame, BadReason
from bpx_flows.connectors.backpack.seeds import SeededMarkPrice
from bpx_flows.connectors.backpack.streams import parse_streams
from bpx_flows.connectors.backpack.wire import Frame, Trade
from bpx_flows.connectors.connection import Connection, ConnectionConfig
from bpx_flows.connectors.rest import RestClient
from bpx_flows.operators.book_state import BookConfig, BookStats, step

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

SYMBOL = "SOL_USDC"
NOW_US = 1_790_000_000_000_000

Script = Callable[[ServerConnection], Awaitable[None]]
RestAnswer = tuple[int, dict[str, str], bytes, float]  # status, headers, body, delay


def depth(first: int, last: int, bids: Any = (), asks: Any = ()) -> str:
    data = {
        "e": "depth",
        "E": NOW_US + last * 50_000,  # 50 ms of event time per update id
        "T": NOW_US + last * 50_000,
        "U": first,
        "u": last,
        "a": [list(x) for x in asks],
        "b": [list(x) for x in bids],
        "s": SYMBOL,
    }
    return json.dumps({"data": data, "stream": f"depth.{SYMBOL}"})


def trade(trade_id: int, engine_us: int, price: str = "10.1") -> str:
    data = {
        "e": "trade",
        "E": NOW_US,
        "T": engine_us,
        "a": "1",
        "b": "2",
        "m": True,
        "p": price,
        "q": "1",
        "s": SYMBOL,
        "t": trade_id,
    }
    return json.dumps({"data": data, "stream": f"trade.{SYMBOL}"})


def snapshot_body(last_id: int) -> bytes:
    return json.dumps(
        {
            "asks": [["10.5", "1"], ["11", "2"]],
            "bids": [["9", "2"], ["10", "1"]],
            "lastUpdateId": str(last_id),
            "timestamp": NOW_US,
        }
    ).encode()


@dataclass
class Hostile:
    """The server's behaviour, scripted by a test; it records what it saw."""

    script: Script | None = None
    upgrade_status: list[int] = field(default_factory=list)  # answered in turn
    rest: list[RestAnswer] = field(default_factory=list)  # answered in turn
    connects: list[float] = field(default_factory=list)
    rest_calls: int = 0
    ws_url: str = ""
    rest_url: str = ""

    def _process_request(self, connection: ServerConnection, request: Any) -> Any:
        if self.upgrade_status:
            status = self.upgrade_status.pop(0)
            return connection.respond(status, f"status {status}\n")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        self.connects.append(time.monotonic())
        await ws.recv()  # the SUBSCRIBE frame
        if self.script is not None:
            await self.script(ws)
        with contextlib.suppress(Exception):
            await ws.wait_closed()

    async def _rest(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        # A client that goes away mid-request (EOF before the headers end) must not
        # leave this side's socket open: every way out closes the writer.
        try:
            await reader.readuntil(b"\r\n\r\n")
            self.rest_calls += 1
            answer = self.rest.pop(0) if len(self.rest) > 1 else self.rest[0]
            status, headers, body, delay_s = answer
            await asyncio.sleep(delay_s)
            head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}"]
            head += [f"{k}: {v}" for k, v in headers.items()]
            head += ["Connection: close", "", ""]
            writer.write("\r\n".join(head).encode() + body)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    @contextlib.asynccontextmanager
    async def running(self) -> Any:
        async with serve(
            self._handler,
            "127.0.0.1",
            0,
            process_request=self._process_request,
            ping_interval=None,
        ) as ws_server:
            rest_server = await asyncio.start_server(self._rest, "127.0.0.1", 0)
            ws_port = next(iter(ws_server.sockets)).getsockname()[1]
            rest_port = rest_server.sockets[0].getsockname()[1]
            self.ws_url = f"ws://127.0.0.1:{ws_port}"
            self.rest_url = f"http://127.0.0.1:{rest_port}"
            try:
                yield self
            finally:
                rest_server.close()


async def collect(
    server: Hostile,
    streams: list[str],
    seconds: float,
    until: Callable[[list[Any]], bool] | None = None,
    **config: Any,
) -> tuple[list[Any], Connection]:
    async with server.running():
        rest = RestClient(
            server.rest_url,
            backoff_initial_s=0.01,
            timeout_s=config.pop("rest_timeout_s", 2.0),
            max_body_bytes=config.pop("max_body_bytes", 1 << 20),
        )
        conn = Connection(
            parse_streams(streams),
            ConnectionConfig(
                ws_url=server.ws_url,
                backoff_initial_s=config.pop("backoff_initial_s", 0.02),
                backoff_max_s=config.pop("backoff_max_s", 0.2),
                silence_s=None,
                ping_interval_s=None,
                **config,
            ),
            rest=rest,
        )
        records: list[Any] = []
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                records += await conn.take(0.05)
                if until is not None and until(records):
                    break
        finally:
            await conn.close()
            await rest.aclose()
        return records, conn


def book_after(records: list[Any]) -> BookStats:
    state = None
    stats = []
    for record in records:
        state, out = step(state, record, BookConfig(emit_every_us=0))
        stats += [o for o in out if isinstance(o, BookStats)]
    return stats[-1]


def _seen_trade(records: list[Any], trade_id: int) -> bool:
    return any(
        isinstance(r, Frame) and isinstance(r.data, Trade) and r.data.t == trade_id
        for r in records
    )


def _seen_diff(records: list[Any], last_id: int) -> bool:
    return any(
        isinstance(r, Frame) and getattr(r.data, "u", None) == last_id for r in records
    )


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_absurd_values_and_broken_frames_are_counted_and_the_book_stays_true() -> None:
    async def script(ws: ServerConnection) -> None:
        await asyncio.sleep(0.2)  # the snapshot is fetched meanwhile
        await ws.send(depth(101, 101, bids=[("1e999999999", "1")]))
        await ws.send(trade(1, 253_402_300_800_000_000))  # year 9999
        await ws.send(trade(2, 2**63 + 5))  # past int64
        await ws.send(trade(3, NOW_US, price="NaN"))
        not_utf8 = trade(5, NOW_US).encode().replace(b'"s": "SOL_USDC"', b'"s": "\xff"')
        await ws.send(not_utf8, text=True)
        await ws.send('{"stream":"x","data":' + "[" * 50_000 + "]" * 50_000 + "}")
        await ws.send(b"\x00\x01binary")
        await ws.send(depth(102, 102, bids=[("10.2", "3")]))
        await ws.send(trade(4, NOW_US))

    server = Hostile(script=script, rest=[(200, {}, snapshot_body(100), 0.0)])
    records, conn = run(
        collect(
            server,
            [f"depth.{SYMBOL}", f"trade.{SYMBOL}"],
            10,
            until=lambda rs: _seen_trade(rs, 4) and _seen_diff(rs, 102),
        )
    )
    bad = {r.reason for r in records if isinstance(r, BadFrame)}
    assert {
        BadReason.OUT_OF_RANGE,
        BadReason.NOT_UTF8,
        BadReason.TOO_DEEP,
        BadReason.BINARY,
    } <= bad
    counted = conn.session.stats.bad_frames
    assert counted["out_of_range"] >= 3 and counted["binary"] == 1
    assert conn.stats.connects == 1 and not conn.stats.disconnects  # stayed up
    trades = [r for r in records if isinstance(r, Frame) and isinstance(r.data, Trade)]
    assert [t.data.t for t in trades] == [4]
    book = book_after(records)
    assert book.valid
    assert (str(book.best_bid), str(book.best_ask)) == ("10.2", "10.5")


def test_any_upgrade_status_then_a_dropped_socket_is_retried() -> None:
    async def drop(ws: ServerConnection) -> None:
        ws.transport.abort()

    server = Hostile(upgrade_status=[403, 503, 302, 500], rest=[(200, {}, b"", 0)])
    scripts = iter([drop, drop])

    async def script(ws: ServerConnection) -> None:
        step_ = next(scripts, None)
        if step_ is not None:
            await step_(ws)
        else:
            await ws.send(trade(1, NOW_US))

    server.script = script
    records, conn = run(
        collect(
            server,
            [f"trade.{SYMBOL}"],
            15,
            until=lambda rs: any(isinstance(r, Frame) for r in rs),
        )
    )
    assert any(isinstance(r, Frame) for r in records)
    assert conn.stats.connects >= 3
    causes = conn.stats.disconnects
    assert {"http_403", "http_503", "http_302", "http_500"} <= set(causes)


def test_rest_faults_never_end_a_book(caplog: pytest.LogCaptureFixture) -> None:
    async def script(ws: ServerConnection) -> None:
        await ws.send(depth(101, 101, bids=[("10.1", "1")]))
        for n in range(102, 140):
            await asyncio.sleep(0.02)
            await ws.send(depth(n, n))

    rest = [
        (200, {"Content-Encoding": "gzip"}, b"not gzip", 0.0),
        (200, {}, b"x" * (2 << 20), 0.0),  # over the 1 MiB cap
        (200, {}, b"{not json", 0.0),
        (500, {}, b"\x1b[31mforged\nline", 0.0),
        (200, {}, snapshot_body(100), 0.0),
    ]
    server = Hostile(script=script, rest=rest)
    records, _ = run(
        collect(
            server,
            [f"depth.{SYMBOL}"],
            15,
            until=lambda rs: any(isinstance(r, BookSnapshot) for r in rs),
        )
    )
    assert any(isinstance(r, BookSnapshot) for r in records)
    assert server.rest_calls >= 5
    assert "\x1b" not in caplog.text


def test_a_snapshot_ahead_of_the_stream_resyncs_with_an_event() -> None:
    async def script(ws: ServerConnection) -> None:
        for n in range(1, 400):
            await ws.send(depth(n, n, bids=[("10", str(n))]))
            await asyncio.sleep(0.005)

    server = Hostile(
        script=script,
        rest=[
            (200, {}, snapshot_body(10_000_000), 0.0),
            (200, {}, snapshot_body(150), 0),
        ],
    )
    records, _ = run(
        collect(
            server,
            [f"depth.{SYMBOL}"],
            15,
            until=lambda rs: sum(isinstance(r, BookSnapshot) for r in rs) >= 2,
        )
    )
    reasons = [r.reason for r in records if isinstance(r, Resync)]
    assert ResyncReason.SNAPSHOT_AHEAD in reasons
    assert sum(isinstance(r, BookSnapshot) for r in records) >= 2


def test_a_server_that_closes_after_subscribe_is_backed_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def script(ws: ServerConnection) -> None:
        await ws.close()

    server = Hostile(script=script, rest=[(200, {}, b"", 0)])
    caplog.set_level(logging.DEBUG, logger="bpx_flows.connection")
    run(
        collect(
            server,
            [f"trade.{SYMBOL}"],
            4,
            backoff_initial_s=0.1,
            backoff_max_s=1.0,
        )
    )
    # Full jitter, growing from 0.1 s to a 1 s cap: ~11 connects expected in 4 s;
    # with the backoff reset by every handshake it was one per ~0.05 s (~80).
    assert 3 <= len(server.connects) <= 18
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]


def test_unsubscribed_stream_names_cannot_grow_metric_labels() -> None:
    async def script(ws: ServerConnection) -> None:
        for n in range(2_000):
            frame = json.loads(trade(n, NOW_US))
            frame["stream"] = f"trade.X{n}_USDC"
            frame["data"]["s"] = f"X{n}_USDC"
            await ws.send(json.dumps(frame))
        await ws.send(trade(99_999, NOW_US))

    server = Hostile(script=script, rest=[(200, {}, b"", 0)])
    _, conn = run(
        collect(
            server,
            [f"trade.{SYMBOL}"],
            10,
            until=lambda rs: any(
                isinstance(r, Frame) and r.stream == f"trade.{SYMBOL}" for r in rs
            ),
        )
    )
    assert set(conn.session.stats.frames) == {f"trade.{SYMBOL}", "other"}
    assert conn.session.stats.frames["other"] == 2_000


async def _preflight_refusal(server: Hostile) -> str:
    """The start-up check against ``server``: its one-line refusal."""
    from bpx_flows.connectors.errors import ConfigError
    from bpx_flows.connectors.preflight import preflight

    async with server.running():
        streams = parse_streams([f"trade.{SYMBOL}"])
        with pytest.raises(ConfigError) as caught:
            await asyncio.to_thread(
                preflight, streams, server.ws_url, server.rest_url, None, 5.0
            )
        return str(caught.value)


def test_the_start_up_check_never_follows_a_redirect() -> None:

    market = {
        "symbol": SYMBOL,
        "baseSymbol": "SOL",
        "quoteSymbol": "USDC",
        "marketType": "SPOT",
        "orderBookState": "Open",
        "filters": {
            "price": {"tickSize": "0.01"},
            "quantity": {"stepSize": "0.01"},
        },
    }
    server = Hostile(
        upgrade_status=[302], rest=[(200, {}, json.dumps([market]).encode(), 0)]
    )

    message = run(_preflight_refusal(server))
    assert "302" in message
    assert server.connects == []  # nothing was opened anywhere


def test_a_broken_markets_answer_at_start_is_one_clear_error() -> None:

    server = Hostile(rest=[(200, {"Content-Encoding": "gzip"}, b"not gzip", 0)])

    message = run(_preflight_refusal(server))
    assert message.startswith("cannot reach the REST API")
    assert "\n" not in message


def test_a_late_trade_prints_as_one_line() -> None:
    from bpx_flows.connectors.backpack.wire import Trade
    from bpx_flows.presentation import describe

    late = Trade(E=1, T=1, a="1", b="2", m=False, p="10", q="2", s=SYMBOL, t=7)
    assert describe(late).startswith(f"{SYMBOL}") and "LATE trade" in describe(late)


def _seeds_nothing(channel: str, body: bytes, headers: dict[str, str]) -> list[Any]:
    """The records of a connection whose seeding REST answer is ``body``.

    The trade stream must go on; returns the frames of ``channel``'s stream.
    """

    async def script(ws: ServerConnection) -> None:
        await ws.send(trade(1, NOW_US))

    body = body.replace(b"%s", SYMBOL.encode())
    server = Hostile(script=script, rest=[(200, headers, body, 0.0)])
    streams = [f"{channel}.{SYMBOL}", f"trade.{SYMBOL}"]
    records, _ = asyncio.run(
        collect(
            server,
            streams,
            3.0,
            until=lambda r: (
                server.rest_calls >= 1
                and any(isinstance(x, Frame) and isinstance(x.data, Trade) for x in r)
            ),
        )
    )
    assert any(isinstance(r, Frame) and isinstance(r.data, Trade) for r in records)
    return [r for r in records if isinstance(r, Frame) and r.stream == streams[0]]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"symbol": "SOL_USDC_PERP"}',  # an object, not the list of rows
        b'[{"symbol": "OTHER_USDC_PERP", "timestamp": 1, "openInterest": "5"}]',
        b'[{"symbol": "%s", "timestamp": 99999999999999, "openInterest": "5"}]',
        b'[{"symbol": "%s", "timestamp": 1795517047000, "openInterest": "1e999"}]',
    ],
    ids=["not-json", "not-a-list", "another-market", "time-out-of-range", "huge"],
)
def test_a_hostile_open_interest_answer_seeds_nothing_and_stops_nothing(
    body: bytes,
) -> None:
    assert _seeds_nothing("openInterest", body, {}) == []


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"[1, 2]", {}),
        (b'[{"symbol": "%s", "markPrice": "NaN"}]', {}),
        (b'[{"symbol": "%s", "markPrice": "1", "fundingRate": "1e5"}]', {}),
        (
            b'[{"symbol": "%s", "markPrice": "1"}]',
            {"Date": "Fri, 01 Jan 2200 00:00:00 GMT"},
        ),
    ],
    ids=["not-rows", "nan", "exponent", "dated-2200"],
)
def test_a_hostile_mark_price_answer_seeds_nothing_and_stops_nothing(
    body: bytes, headers: dict[str, str]
) -> None:
    assert _seeds_nothing("markPrice", body, headers) == []


def test_a_good_mark_price_answer_seeds_one_frame_dated_by_the_server() -> None:
    date = {"Date": "Tue, 01 Dec 2026 18:00:00 GMT", "Age": "2"}
    body = b'[{"symbol": "%s", "markPrice": "150.5", "indexPrice": "150.4"}]'
    (seed,) = _seeds_nothing("markPrice", body, date)
    assert type(seed.data) is SeededMarkPrice and seed.data.p == "150.5"
    assert seed.data.E == (1_796_148_000 - 2 - 1) * 1_000_000
