"""Every REST rule without a socket: the planner's fetches, and what answers give."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bpx_flows.connectors.backpack.backfill import BackfilledTrade, TradeBackfill
from bpx_flows.connectors.backpack.books import BookRouter
from bpx_flows.connectors.backpack.booksync import BookSnapshot, Resync
from bpx_flows.connectors.backpack.decode import FrameDecoder
from bpx_flows.connectors.backpack.fetches import (
    Answer,
    Fetch,
    FetchKind,
    answers,
    records_of,
)
from bpx_flows.connectors.backpack.kline_history import HistoricalKline
from bpx_flows.connectors.backpack.planner import FetchPlanner, PlannerConfig
from bpx_flows.connectors.backpack.seeds import SeededMarkPrice
from bpx_flows.connectors.backpack.streams import parse_stream
from bpx_flows.connectors.backpack.wire import DepthSnapshot, Frame, OpenInterest
from bpx_flows.connectors.errors import ProtocolError

S = 1_000_000
T0 = 1_790_000_000 * S


def planner(*names: str, **config: Any) -> FetchPlanner:
    return FetchPlanner([parse_stream(n) for n in names], PlannerConfig(**config))


def depth_frame(stream: str, first: int, last: int, recv_us: int = T0) -> Frame[Any]:
    symbol = stream.rsplit(".", maxsplit=1)[-1]
    text = json.dumps(
        {
            "stream": stream,
            "data": {
                "e": "depth",
                "E": recv_us,
                "s": symbol,
                "a": [["10.2", "1"]],
                "b": [["10.1", "1"]],
                "U": first,
                "u": last,
                "T": recv_us,
            },
        }
    )
    frame = FrameDecoder().decode(text, recv_us)
    assert isinstance(frame, Frame)
    return frame


def snapshot_body(last_update_id: int) -> bytes:
    return json.dumps(
        {
            "asks": [["10.2", "3"]],
            "bids": [["10.1", "2"]],
            "lastUpdateId": str(last_update_id),
            "timestamp": T0 // 1000,
        }
    ).encode()


def trade_rows(ids: range) -> bytes:
    return json.dumps(
        [
            {
                "id": i,
                "price": "10.5",
                "quantity": "1",
                "quoteQuantity": "10.5",
                "timestamp": T0 // 1000 + i,
                "isBuyerMaker": False,
            }
            for i in ids
        ]
    ).encode()


# Depth snapshots.


def test_a_book_waiting_for_a_snapshot_asks_for_one_and_its_answer_seeds_it() -> None:
    plan = planner("depth.SOL_USDC", snapshot_limit=50)
    assert plan.books.on_frame(depth_frame("depth.SOL_USDC", 11, 12)) == []
    fetches, ended = plan.due(T0)
    assert ended == []
    assert [(f.kind, dict(f.params), f.streams, f.delay_s) for f in fetches] == [
        (
            FetchKind.DEPTH,
            {"symbol": "SOL_USDC", "limit": "50"},
            ("depth.SOL_USDC",),
            0.0,
        )
    ]
    assert plan.due(T0) == ([], [])  # in flight: not asked twice
    got, records = plan.answered(fetches[0], snapshot_body(11), T0 + 5)
    assert [(a.stream, a.path, dict(a.params)) for a in got] == [
        ("depth.SOL_USDC", "/api/v1/depth", {"symbol": "SOL_USDC", "limit": "50"})
    ]
    assert [type(r) for r in records] == [BookSnapshot, Frame]  # then the diff kept
    assert plan.books.syncs["depth.SOL_USDC"].live


def test_snapshots_in_flight_are_bounded_and_the_rest_wait_their_turn() -> None:
    names = [f"depth.M{i}_USDC" for i in range(5)]
    plan = planner(*names, max_snapshots=2)
    for name in names:
        plan.books.on_frame(depth_frame(name, 11, 12))
    first, _ = plan.due(T0)
    assert len(first) == 2
    assert plan.due(T0) == ([], [])
    plan.failed(first[0], T0)
    after, _ = plan.due(T0)
    assert len(after) == 1


def test_a_failed_snapshot_is_asked_again_after_a_growing_delay() -> None:
    plan = planner("depth.SOL_USDC")
    plan.books.on_frame(depth_frame("depth.SOL_USDC", 11, 12))
    delays = []
    for _ in range(4):
        (fetch,), _ = plan.due(T0)
        delays.append(fetch.delay_s)
        plan.failed(fetch, T0)
    assert delays == [0.0, 0.1, 0.2, 0.4]


def test_a_body_that_is_not_a_snapshot_is_a_protocol_error_then_a_retry() -> None:
    plan = planner("depth.SOL_USDC")
    plan.books.on_frame(depth_frame("depth.SOL_USDC", 11, 12))
    (fetch,), _ = plan.due(T0)
    with pytest.raises(ProtocolError, match="not a snapshot"):
        plan.answered(fetch, b'{"asks": 3}', T0)
    plan.failed(fetch, T0)
    (again,), _ = plan.due(T0)
    assert again.kind is FetchKind.DEPTH and again.delay_s > 0


def test_a_disconnect_resyncs_live_books_and_asks_again() -> None:
    plan = planner("depth.SOL_USDC")
    plan.books.on_frame(depth_frame("depth.SOL_USDC", 11, 12))
    (fetch,), _ = plan.due(T0)
    plan.answered(fetch, snapshot_body(11), T0)
    assert [type(r) for r in plan.disconnected(T0 + 1)] == [Resync]
    plan.books.on_frame(depth_frame("depth.SOL_USDC", 20, 21))
    (again,), _ = plan.due(T0 + 2)
    assert again.delay_s == 0.0  # it was live: the attempts started over


# Trade gaps.


def test_a_trade_gap_is_fetched_one_page_at_a_time_and_reported_filled() -> None:
    plan = planner("trade.SOL_USDC", trade_gaps=True)
    assert plan.trade_seen("trade.SOL_USDC", "SOL_USDC", 100, T0) is None
    assert plan.trade_seen("trade.SOL_USDC", "SOL_USDC", 110, T0) is not None
    (fetch,), _ = plan.due(T0)
    assert fetch.kind is FetchKind.TRADES and fetch.history
    assert dict(fetch.params) == {"symbol": "SOL_USDC", "limit": "1000", "offset": "1"}
    assert plan.trade_seen("trade.SOL_USDC", "SOL_USDC", 120, T0) is not None
    assert plan.due(T0) == ([], [])  # one page in flight at a time
    got, records = plan.answered(fetch, trade_rows(range(95, 121)), T0 + 1)
    assert dict(got[0].params)["ids"] == "101-109"  # the ids the page was for
    assert [r.data.t for r in records if isinstance(r, Frame)] == list(range(101, 110))
    assert isinstance(records[-1], TradeBackfill) and records[-1].reason is None
    (second,), _ = plan.due(T0 + 2)
    _, records = plan.answered(second, trade_rows(range(95, 121)), T0 + 3)
    assert [r.data.t for r in records if isinstance(r, Frame)] == list(range(111, 120))


def test_a_trade_page_that_keeps_failing_gives_the_gap_up() -> None:
    plan = planner("trade.SOL_USDC", trade_gaps=True)
    plan.trade_seen("trade.SOL_USDC", "SOL_USDC", 1, T0)
    plan.trade_seen("trade.SOL_USDC", "SOL_USDC", 5, T0)
    reports: list[Any] = []
    for _ in range(3):
        (fetch,), _ = plan.due(T0)
        reports += plan.failed(fetch, T0)
    assert [(r.outcome, r.reason, r.missing) for r in reports] == [
        ("unfillable", "failed", 3)
    ]
    assert plan.due(T0) == ([], [])


def test_closing_ends_open_gaps_unfilled() -> None:
    plan = planner("trade.SOL_USDC", trade_gaps=True)
    plan.trade_seen("trade.SOL_USDC", "SOL_USDC", 1, T0)
    plan.trade_seen("trade.SOL_USDC", "SOL_USDC", 5, T0)
    assert [r.reason for r in plan.close(T0)] == ["closed"]


# Kline history and seeds.


def kline_rows(starts_s: list[int]) -> bytes:
    def stamp(s: int) -> str:
        import datetime as dt

        at = dt.datetime.fromtimestamp(s, tz=dt.UTC)
        return at.strftime("%Y-%m-%d %H:%M:%S")

    return json.dumps(
        [
            {
                "start": stamp(s),
                "end": stamp(s + 60),
                "open": "1",
                "high": "2",
                "low": "1",
                "close": "2",
                "volume": "3",
                "quoteVolume": "4.5",
                "trades": "7",
            }
            for s in starts_s
        ]
    ).encode()


def test_kline_history_is_planned_once_a_run_one_page_at_a_time() -> None:
    plan = planner(
        "kline.1m.SOL_USDC", "kline.1m.BTC_USDC", kline_backfill_us=3 * 60 * S
    )
    now = T0 + 30 * S  # mid-minute: the minute the run started in is left out
    plan.connected(now)
    (page,), _ = plan.due(now)
    assert page.kind is FetchKind.KLINES and page.before_us == now
    assert plan.due(now) == ([], [])
    start_s = int(page.params["startTime"])
    got, records = plan.answered(page, kline_rows([start_s, start_s + 60]), now + 1)
    assert got[0].params["before_us"] == str(now)
    assert all(isinstance(r.data, HistoricalKline) for r in records)
    assert [p.stream for p in plan.kline_progress] == ["kline.1m.SOL_USDC"]
    (other,), _ = plan.due(now)
    assert other.stream == "kline.1m.BTC_USDC"
    plan.failed(other, now)
    assert plan.kline_progress[-1].failed
    plan.disconnected(now + 2)
    plan.connected(now + 3)  # a reconnect: no second history
    assert all(f.kind is not FetchKind.KLINES for f in plan.due(now + 3)[0])


def test_seeds_are_asked_once_per_connect_and_split_by_stream() -> None:
    plan = planner("openInterest.SOL_USDC_PERP", "markPrice.SOL_USDC_PERP")
    assert plan.due(T0) == ([], [])
    plan.connected(T0)
    fetches, _ = plan.due(T0)
    kinds = {f.kind: f for f in fetches}
    assert set(kinds) == {FetchKind.OPEN_INTEREST, FetchKind.MARK_PRICES}
    assert kinds[FetchKind.MARK_PRICES].dated
    marks = json.dumps(
        [
            {
                "symbol": "SOL_USDC_PERP",
                "markPrice": "150.1",
                "indexPrice": "150.0",
                "fundingRate": "0.0001",
                "nextFundingTimestamp": T0 // 1000 + 3_600_000,
            },
            {
                "symbol": "ETH_USDC_PERP",
                "markPrice": "3000",
                "indexPrice": "3000",
                "fundingRate": "0",
                "nextFundingTimestamp": T0 // 1000,
            },
        ]
    ).encode()
    got, records = plan.answered(kinds[FetchKind.MARK_PRICES], marks, T0 + 9, T0)
    assert [(a.stream, dict(a.params)) for a in got] == [
        ("markPrice.SOL_USDC_PERP", {"symbol": "SOL_USDC_PERP", "at_us": str(T0 - S)})
    ]
    (frame,) = records
    assert isinstance(frame, Frame) and isinstance(frame.data, SeededMarkPrice)
    assert frame.data.E == T0 - S  # the server's Date less a second
    oi = json.dumps(
        [{"symbol": "SOL_USDC_PERP", "openInterest": "12", "timestamp": T0 // 1000}]
    ).encode()
    _, records = plan.answered(kinds[FetchKind.OPEN_INTEREST], oi, T0 + 9)
    assert [type(r.data) for r in records if isinstance(r, Frame)] == [OpenInterest]


# The one reader, live and replayed.


def test_every_answer_gives_the_same_records_when_read_again() -> None:
    """What a recording keeps of an answer reads back to the live records."""
    fetch = Fetch(FetchKind.OPEN_INTEREST, {}, ("openInterest.SOL_USDC_PERP",))
    body = json.dumps(
        [{"symbol": "SOL_USDC_PERP", "openInterest": "12", "timestamp": T0 // 1000}]
    ).encode()
    (answer,) = answers(fetch, body, T0)
    live = records_of(answer, BookRouter(None))
    again = Answer(
        answer.stream, answer.path, dict(answer.params), answer.body, answer.recv_us
    )
    assert records_of(again, BookRouter(None)) == live


@pytest.mark.parametrize(
    ("path", "params", "match"),
    [
        pytest.param("/api/v1/nope", {}, "no reader", id="unknown-path"),
        pytest.param("/api/v1/trades/history", {"ids": "x"}, "ids", id="bad-ids"),
        pytest.param("/api/v1/klines", {}, "before_us", id="no-before"),
        pytest.param("/api/v1/markPrices", {"at_us": "1e9"}, "at_us", id="bad-at"),
    ],
)
def test_an_answer_that_cannot_be_read_is_a_protocol_error(
    path: str, params: dict[str, str], match: str
) -> None:
    stream = {
        "/api/v1/klines": "kline.1m.SOL_USDC",
        "/api/v1/markPrices": "markPrice.SOL_USDC_PERP",
    }.get(path, "trade.SOL_USDC")
    with pytest.raises(ProtocolError, match=match):
        records_of(Answer(stream, path, params, b"[]", T0), BookRouter(None))


def test_an_answer_for_a_name_that_is_not_a_stream_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="not a stream"):
        records_of(Answer("nope", "/api/v1/depth", {}, b"{}", T0), BookRouter(None))


def test_backfilled_trades_are_their_own_type() -> None:
    fetch_params = {"symbol": "SOL_USDC", "ids": "3-4"}
    answer = Answer(
        "trade.SOL_USDC",
        "/api/v1/trades/history",
        fetch_params,
        trade_rows(range(5)),
        T0,
    )
    records = records_of(answer, BookRouter(None))
    assert [type(r.data) for r in records if isinstance(r, Frame)] == [
        BackfilledTrade,
        BackfilledTrade,
    ]


def test_history_left_when_the_run_ends_counts_the_page_in_flight() -> None:
    plan = planner("kline.1s.SOL_USDC", kline_backfill_us=2_500 * S)
    plan.connected(T0)
    assert plan.history_left() == {"kline.1s.SOL_USDC": (3, 3)}
    (page,), _ = plan.due(T0)
    assert plan.history_left() == {"kline.1s.SOL_USDC": (3, 3)}  # in flight
    plan.answered(page, b"[]", T0)
    assert plan.history_left() == {"kline.1s.SOL_USDC": (2, 3)}


def test_books_wait_for_a_snapshot_only_until_its_fetch_starts() -> None:
    streams = ["depth.A_USDC", "depth.B_USDC", "depth.C_USDC"]
    router = BookRouter(streams)
    for stream in streams:
        router.on_frame(depth_frame(stream, 1, 1))
    first = router.start_fetches(1)
    assert [s.stream for s in first] == ["depth.A_USDC"] and router.wanting
    rest = router.start_fetches()
    assert [s.stream for s in rest] == ["depth.B_USDC", "depth.C_USDC"]
    # Every snapshot is on its way: more diffs leave nothing to start.
    for stream in streams:
        router.on_frame(depth_frame(stream, 2, 2))
    assert not router.wanting and router.start_fetches() == []
    # A failed fetch waits again; a live book's gap asks for another snapshot.
    router.snapshot_failed("depth.B_USDC")
    snapshot = DepthSnapshot([["10.2", "1"]], [["10.1", "1"]], 1, T0)
    router.on_snapshot("depth.A_USDC", snapshot, T0)
    assert router.syncs["depth.A_USDC"].live
    assert [s.stream for s in router.start_fetches()] == ["depth.B_USDC"]
    assert not router.wanting
    router.on_frame(depth_frame("depth.A_USDC", 9, 9))  # 3..8 missed
    assert router.wanting
    assert [s.stream for s in router.start_fetches()] == ["depth.A_USDC"]
