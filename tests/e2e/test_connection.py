"""The live connection against the simulator over real WebSockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import random

import pytest

from bpx_flows.connectors.backpack import Credentials, parse_streams
from bpx_flows.connectors.backpack.booksync import Resync, ResyncReason
from bpx_flows.connectors.backpack.decode import BadFrame, BadReason
from bpx_flows.connectors.backpack.streams import Channel
from bpx_flows.connectors.backpack.wire import (
    BookTicker,
    Kline,
    Liquidation,
    MarkPrice,
    OpenInterest,
    OrderUpdate,
    PositionUpdate,
    RfqUpdate,
    Ticker,
    Trade,
)
from bpx_flows.connectors.connection import Connection, ConnectionConfig
from bpx_flows.connectors.errors import AuthError
from bpx_flows.connectors.rest import RestClient
from bpx_flows.connectors.sim import Fault, FaultKind, SimThread
from tests.conftest import OTHER_SECRET
from tests.e2e.helpers import (
    Collected,
    assert_books_match_after_pause,
    drain_for,
    pump,
    run,
)

pytestmark = pytest.mark.e2e

BOOK_SYMBOLS = ["SOL_USDC", "BTC_USDC_PERP"]


def make_connection(
    thread: SimThread, names: list[str], creds: Credentials | None = None, **cfg: object
) -> tuple[Connection, RestClient]:
    server = thread.server
    config = ConnectionConfig(
        ws_url=server.ws_url,
        backoff_initial_s=0.05,
        backoff_max_s=0.5,
        ping_interval_s=2.0,
        ping_timeout_s=5.0,
        **cfg,  # type: ignore[arg-type]
    )
    rest = RestClient(server.rest_url, backoff_initial_s=0.05)
    conn = Connection(parse_streams(names), config, creds, rest, rng=random.Random(1))
    return conn, rest


async def open_books(
    thread: SimThread, **cfg: object
) -> tuple[Connection, RestClient, Collected]:
    names = [f"depth.{s}" for s in BOOK_SYMBOLS] + [f"trade.{s}" for s in BOOK_SYMBOLS]
    conn, rest = make_connection(thread, names, **cfg)
    got = Collected()
    await pump(
        conn, got, lambda g: {f"depth.{s}" for s in BOOK_SYMBOLS} <= g.live, 10.0
    )
    return conn, rest, got


async def close(conn: Connection, rest: RestClient) -> None:
    await conn.close()
    await rest.aclose()


def test_every_channel_is_subscribed_and_decoded(
    fresh_sim: SimThread, credentials: Credentials
) -> None:
    names = [
        "bookTicker.SOL_USDC",
        "depth.SOL_USDC",
        "depth.200ms.SOL_USDC_PERP",
        "depth.600ms.BTC_USDC",
        "depth.1000ms.ETH_USDC_PERP",
        "kline.1s.SOL_USDC",
        "liquidation",
        "liquidation.SOL_USDC_PERP",
        "markPrice.SOL_USDC_PERP",
        "openInterest.SOL_USDC_PERP",
        "ticker.SOL_USDC",
        "trade.SOL_USDC",
        "account.orderUpdate",
        "account.orderUpdate.SOL_USDC_PERP",
        "account.positionUpdate",
        "account.positionUpdate.SOL_USDC_PERP",
        "account.rfqUpdate",
        "account.rfqUpdate.SOL_USDC_RFQ",
    ]
    # Open interest comes every 60 s: run simulated time 20x to see it.
    fresh_sim.call(lambda: fresh_sim.server.set_speed(20.0))

    async def scenario() -> Collected:
        conn, rest = make_connection(fresh_sim, names, credentials)
        got = Collected()
        wanted = {
            BookTicker,
            Kline,
            Liquidation,
            MarkPrice,
            OpenInterest,
            Ticker,
            Trade,
            OrderUpdate,
            PositionUpdate,
            RfqUpdate,
        }

        def seen_all(g: Collected) -> bool:
            kinds = {type(f.data) for f in g.frames()}
            depth_live = {"depth.SOL_USDC", "depth.200ms.SOL_USDC_PERP"} <= g.live
            return wanted <= kinds and depth_live and len(g.live) == 4

        try:
            await pump(conn, got, seen_all, 30.0)
        finally:
            await close(conn, rest)
        return got

    got = run(scenario())
    assert not got.bad()
    streams = {f.stream for f in got.frames()}
    assert {"liquidation", "account.orderUpdate", "markPrice.SOL_USDC_PERP"} <= streams


def test_private_streams_with_a_wrong_key_fail_clearly(fresh_sim: SimThread) -> None:
    wrong = Credentials.from_secret(OTHER_SECRET)

    async def scenario() -> None:
        conn, rest = make_connection(fresh_sim, ["account.orderUpdate"], wrong)
        try:
            with pytest.raises(AuthError, match="Unknown API key"):
                await pump(conn, Collected(), lambda g: False, 10.0)
        finally:
            await close(conn, rest)

    run(scenario())


def test_expired_signature_window_is_refused(
    fresh_sim: SimThread, credentials: Credentials
) -> None:
    fresh_sim.call(lambda: fresh_sim.server.set_clock_skew(120_000))

    async def scenario() -> None:
        conn, rest = make_connection(fresh_sim, ["account.positionUpdate"], credentials)
        try:
            with pytest.raises(AuthError, match="expired"):
                await pump(conn, Collected(), lambda g: False, 10.0)
        finally:
            await close(conn, rest)

    run(scenario())


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        pytest.param(Fault(FaultKind.DROP, after=300), "closed", id="disconnect"),
        pytest.param(
            Fault(FaultKind.CLOSE, after=300), "server_close", id="server-close"
        ),
        pytest.param(
            Fault(FaultKind.STALL, after=300, seconds=3.0), "silence", id="stall"
        ),
    ],
)
def test_connection_faults_reconnect_and_books_recover(
    fresh_sim: SimThread, fault: Fault, cause: str
) -> None:
    async def scenario() -> None:
        conn, rest, got = await open_books(fresh_sim, silence_s=1.0)
        try:
            fresh_sim.call(lambda: fresh_sim.server.arm(fault))
            await pump(conn, got, lambda g: conn.stats.disconnects[cause] >= 1, 15.0)
            resyncs = [r for r in got.records if isinstance(r, Resync)]
            assert {r.reason for r in resyncs} == {ResyncReason.RECONNECT}
            await assert_books_match_after_pause(
                conn, got, fresh_sim, fresh_sim.server, BOOK_SYMBOLS
            )
            assert conn.stats.connects >= 2
        finally:
            await close(conn, rest)

    run(scenario())


@pytest.mark.parametrize(
    ("fault", "expect"),
    [
        pytest.param(Fault(FaultKind.SKIP_DEPTH, after=50, count=3), "gap", id="gap"),
        pytest.param(
            Fault(FaultKind.REPEAT_DEPTH, after=50, count=5), "duplicates", id="dups"
        ),
        pytest.param(
            Fault(FaultKind.MALFORMED, after=100), "bad_frame", id="malformed"
        ),
    ],
)
def test_stream_faults_are_contained_and_books_recover(
    fresh_sim: SimThread, fault: Fault, expect: str
) -> None:
    async def scenario() -> None:
        conn, rest, got = await open_books(fresh_sim)
        try:
            fresh_sim.call(lambda: fresh_sim.server.arm(fault))

            def happened(g: Collected) -> bool:
                syncs = conn.books.syncs.values()
                if expect == "gap":
                    return any(s.stats.gaps for s in syncs)
                if expect == "duplicates":
                    return any(s.stats.duplicates for s in syncs)
                return any(isinstance(r, BadFrame) for r in g.records)

            await pump(conn, got, happened, 15.0)
            if expect == "gap":
                gap = next(r for r in got.records if isinstance(r, Resync))
                assert gap.reason is ResyncReason.GAP
                assert gap.got is not None and gap.expected is not None
                assert gap.got > gap.expected
            if expect == "bad_frame":
                bad = next(r for r in got.records if isinstance(r, BadFrame))
                assert bad.reason is BadReason.NOT_JSON
                assert conn.session.stats.bad_frames["not_json"] == 1
            assert conn.stats.connects == 1  # contained without reconnecting
            await assert_books_match_after_pause(
                conn, got, fresh_sim, fresh_sim.server, BOOK_SYMBOLS
            )
        finally:
            await close(conn, rest)

    run(scenario())


@pytest.mark.parametrize("status", [429, 503, 500])
def test_rest_errors_during_sync_are_retried(fresh_sim: SimThread, status: int) -> None:
    fresh_sim.call(
        lambda: fresh_sim.server.arm(
            Fault(FaultKind.REST_STATUS, status=status, count=2)
        )
    )

    async def scenario() -> None:
        conn, rest, got = await open_books(fresh_sim)
        try:
            assert rest.retries >= 2
            await assert_books_match_after_pause(
                conn, got, fresh_sim, fresh_sim.server, BOOK_SYMBOLS
            )
            # Retried inside the client: every book's snapshot counted, none failed.
            assert conn.stats.snapshots >= len(BOOK_SYMBOLS)
            assert conn.stats.snapshot_failures == 0
        finally:
            await close(conn, rest)

    run(scenario())


def test_unknown_stream_gets_an_error_frame_not_a_crash(fresh_sim: SimThread) -> None:
    async def scenario() -> None:
        conn, rest = make_connection(fresh_sim, ["trade.SOL_USDC"])
        try:
            got = Collected()
            await pump(conn, got, lambda g: bool(g.frames(Trade)), 10.0)
            assert conn.stats.connects == 1
            assert Channel.TRADE.value == "trade"
        finally:
            await close(conn, rest)

    run(scenario())


def test_a_slow_consumer_pauses_reading_and_loses_nothing(fresh_sim: SimThread) -> None:
    fresh_sim.call(lambda: fresh_sim.server.set_speed(10.0))  # a fast feed

    async def scenario() -> None:
        conn, rest, got = await open_books(fresh_sim, max_pending=200)
        try:
            await asyncio.sleep(1.0)  # the consumer is busy elsewhere: nothing taken
            waiting = len(conn._out)
            assert conn.stats.pushback_waits >= 1
            assert waiting < 200 + 2_000  # at most one socket read beyond the bound
            await drain_for(conn, got, 1.0)
            assert not [r for r in got.records if isinstance(r, Resync)]
            assert all(s.stats.gaps == 0 for s in conn.books.syncs.values())
            await assert_books_match_after_pause(
                conn, got, fresh_sim, fresh_sim.server, BOOK_SYMBOLS
            )
        finally:
            await close(conn, rest)

    run(scenario())
