"""Metrics from flow outputs, served over HTTP on loopback."""

from __future__ import annotations

import re
from decimal import Decimal

import httpx
import msgspec

from bpx_flows.connectors import metrics as m
from bpx_flows.connectors.backpack.streams import KlineInterval
from bpx_flows.connectors.backpack.wire import Side
from bpx_flows.operators.book_state import (
    BandDepth,
    BookIntegrity,
    BookStats,
    IntegrityKind,
)
from bpx_flows.operators.bursts import BurstAlert, BurstPhase, Severity
from bpx_flows.operators.candles import Candle
from bpx_flows.presentation import observe


def stats() -> BookStats:
    return BookStats(
        stream="depth.MX_USDC",
        symbol="MX_USDC",
        update_id=1,
        engine_us=1,
        recv_us=2,
        best_bid=Decimal("10.1"),
        bid_qty=Decimal(1),
        best_ask=Decimal("10.2"),
        ask_qty=Decimal(2),
        spread=Decimal("0.1"),
        spread_bps=Decimal("9.85"),
        mid=Decimal("10.15"),
        microprice=None,
        imbalance=Decimal("-0.25"),
        bands=(
            BandDepth(10, Decimal(1), Decimal("10.1"), Decimal(2), Decimal("20.4")),
        ),
        bid_levels=3,
        ask_levels=4,
        trimmed_levels=0,
        latency_us=1,
        tickers_checked=5,
        tickers_mismatched=0,
    )


def value(name: str, **labels: str) -> float | None:
    return m.REGISTRY.get_sample_value(name, labels)


def test_book_candle_and_burst_records_update_the_metrics() -> None:
    observe(stats())
    assert value("bpx_book_best_bid", symbol="MX_USDC") == 10.1
    assert value("bpx_book_spread_bps", symbol="MX_USDC") == 9.85
    assert (
        value("bpx_book_depth_quote", symbol="MX_USDC", side="ask", band_bps="10")
        == 20.4
    )
    assert value("bpx_book_levels", symbol="MX_USDC", side="ask") == 4
    gap = BookIntegrity(
        stream="depth.MX_USDC",
        symbol="MX_USDC",
        kind=IntegrityKind.GAP,
        update_id=5,
        recv_us=1,
    )
    observe(gap)
    assert value("bpx_book_integrity_events_total", symbol="MX_USDC", kind="gap") == 1
    candle = Candle(
        symbol="MX_USDC",
        interval=KlineInterval.M1,
        start_us=0,
        end_us=60_000_000,
        open=Decimal(1),
        high=Decimal(2),
        low=Decimal(1),
        close=Decimal("1.5"),
        volume=Decimal(3),
        quote_volume=Decimal(4),
        vwap=None,
        trades=2,
        buy_volume=Decimal(1),
        buy_trades=1,
        sell_volume=Decimal(2),
        sell_trades=1,
        first_trade_id=1,
        last_trade_id=2,
    )
    observe(candle)
    assert value("bpx_candle_close", symbol="MX_USDC", interval="1m") == 1.5
    # A correction of an older window is counted, and leaves the last close alone.
    labels = {"symbol": "MX_USDC", "interval": "1m"}
    closed = value("bpx_candles_total", **labels)
    corrected = value("bpx_candle_corrections_total", **labels) or 0
    observe(msgspec.structs.replace(candle, close=Decimal(9), revision=1))
    assert value("bpx_candle_close", symbol="MX_USDC", interval="1m") == 1.5
    assert value("bpx_candle_corrections_total", **labels) == corrected + 1
    assert value("bpx_candles_total", **labels) == closed
    started = BurstAlert(
        burst_id="b",
        phase=BurstPhase.STARTED,
        symbol="MX_USDC",
        side=Side.BID,
        start_us=0,
        detected_us=0,
        end_us=None,
        peak_window_notional=Decimal(1),
        total_notional=Decimal(1),
        count=5,
        threshold=Decimal(1),
        baseline=None,
        severity=Severity.LOW,
    )
    observe(started)
    assert value("bpx_liquidation_burst_active", symbol="MX_USDC", side="bid") == 1
    assert (
        value(
            "bpx_liquidation_bursts_total", symbol="MX_USDC", side="bid", severity="low"
        )
        == 1
    )


def test_metrics_are_served_on_loopback() -> None:
    observe(stats())
    port = m.serve_metrics(0)
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'bpx_book_best_ask{symbol="MX_USDC"} 10.2' in text
    assert "process_resident_memory_bytes" in text


def test_exposition_follows_the_conventions() -> None:
    # No _created series, a build-info gauge, sides only bid/ask, counters for counts.
    observe(stats())
    port = m.serve_metrics(0)
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert "_created" not in text
    assert 'bpx_build_info{bytewax="0.21.1"' in text
    sides = set(re.findall(r'side="([^"]*)"', text))
    assert sides <= {"bid", "ask"}, sides
    assert "# TYPE bpx_book_ticker_mismatches_total counter" in text
    types = dict(re.findall(r"# TYPE (bpx_\w+) (\w+)", text))
    for name, kind in types.items():
        assert (kind == "counter") == name.endswith("_total"), (name, kind)


def test_ticker_mismatches_count_what_is_new() -> None:
    before = value("bpx_book_ticker_mismatches_total", symbol="MM_USDC") or 0.0
    for so_far in (0, 2, 2, 5):
        observe(
            msgspec.structs.replace(
                stats(), symbol="MM_USDC", tickers_mismatched=so_far
            )
        )
    assert value("bpx_book_ticker_mismatches_total", symbol="MM_USDC") == before + 5
