"""Kline history at start, as pure code: the pages asked for and the rows kept."""

from __future__ import annotations

import json

from bpx_flows.connectors.backpack.kline_history import (
    PAGE,
    HistoricalKline,
    historical_klines,
    kline_pages,
)
from bpx_flows.connectors.backpack.klines import format_rest_time
from bpx_flows.connectors.backpack.streams import KlineInterval as I, parse_stream
from bpx_flows.connectors.backpack.wire import Kline

S = 1_000_000
T0 = 1_796_000_400 * S  # a whole hour
STREAM = "kline.1m.SOL_USDC"
KLINES = parse_stream(STREAM)


def row(start_us: int, width_us: int = 60 * S, **values: object) -> dict[str, object]:
    base: dict[str, object] = {
        "start": format_rest_time(start_us),
        "end": format_rest_time(start_us + width_us),
        "open": "10",
        "high": "12",
        "low": "9",
        "close": "11",
        "volume": "3",
        "quoteVolume": "31.5",
        "trades": "4",  # a string on the wire
    }
    base.update(values)
    return base


def decode(
    rows: list[dict[str, object]], before_us: int, since_us: int = T0 - 3600 * S
) -> list[HistoricalKline]:
    body = json.dumps(rows).encode()
    page = {"startTime": str(since_us // S), "endTime": str(-(-before_us // S))}
    frames = historical_klines(KLINES, body, page, before_us, 7)
    assert all(f.stream == STREAM and f.recv_us == 7 for f in frames)
    return [f.data for f in frames]


def test_pages_cover_the_span_once_in_whole_seconds() -> None:
    before = T0 + 3600 * S + 500_000
    pages = kline_pages("SOL_USDC", I.S1, before - 3600 * S, before)
    assert len(pages) == 4  # 3,601 seconds touched, 1,000 a page
    starts = [int(p["startTime"]) for p in pages]
    ends = [int(p["endTime"]) for p in pages]
    assert starts[0] == (before - 3600 * S) // S
    assert starts[1:] == ends[:-1]  # contiguous, no overlap
    assert ends[-1] == -(-before // S)
    assert all(e - s <= PAGE for s, e in zip(starts, ends, strict=True))
    assert {p["interval"] for p in pages} == {"1s"}
    # A month page stays one request; nothing to ask for an empty span.
    assert len(kline_pages("SOL_USDC", I.MONTH1, T0 - 400 * 86_400 * S, T0)) == 1
    assert kline_pages("SOL_USDC", I.M1, T0, T0) == []


def test_rows_become_closed_klines_of_the_stream_oldest_first() -> None:
    klines = decode([row(T0 + 60 * S), row(T0), row(T0)], T0 + 120 * S)
    assert [k.t for k in klines] == ["2026-11-30T01:00:00", "2026-11-30T01:01:00"]
    first = klines[0]
    assert (first.o, first.h, first.l, first.c, first.v, first.V, first.n) == (
        "10",
        "12",
        "9",
        "11",
        "3",
        "31.5",
        4,
    )
    assert first.X and first.E == T0 + 60 * S and first.T == "2026-11-30T01:01:00"
    assert type(first) is not Kline  # never taken for a live kline


def test_rows_that_are_open_empty_misaligned_or_out_of_range_are_left_out() -> None:
    before = T0 + 150 * S  # the window at T0 + 120 s is still open
    rows = [
        row(T0),
        row(T0 + 120 * S),  # open at the start
        row(T0 + 60 * S, open=None, high=None, low=None, close=None),  # no trades
        row(T0 + 30 * S),  # not on a minute
        row(T0 - 300 * S, width_us=300 * S),  # a 5 minute row on a 1 minute stream
        row(T0 - 60 * S, high="1e999"),
        row(T0 - 120 * S, quoteVolume="NaN"),
        row(T0 - 180 * S, trades="-1"),
        {"start": "yesterday", "end": "today"},
    ]
    assert [k.t for k in decode(rows, before)] == ["2026-11-30T01:00:00"]


def test_rows_outside_the_page_asked_for_are_left_out() -> None:
    rows = [row(T0 - 120 * S), row(T0), row(T0 + 60 * S)]
    kept = decode(rows, before_us=T0 + 60 * S, since_us=T0)
    assert [k.t for k in kept] == ["2026-11-30T01:00:00"]  # not before the page


def test_a_hostile_answer_gives_nothing() -> None:
    page = {"startTime": "0", "endTime": str(T0 // S)}
    assert historical_klines(parse_stream("trade.SOL_USDC"), b"[]", page, T0, 0) == []
    for body in (b"", b"{}", b"[1]", b'{"start": 1}', b"\xff" * 10):
        assert historical_klines(KLINES, body, page, T0, 0) == []
    good = json.dumps([row(T0 - 60 * S)]).encode()
    assert historical_klines(KLINES, good, {}, T0, 0) == []
