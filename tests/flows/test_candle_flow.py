"""The candle flow with Bytewax windowing: late trades, gaps, and a polars oracle."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import polars as pl
import pytest
from bytewax.testing import TestingSource, cluster_main, run_main

from bpx_flows.connectors.backpack.kline_history import HistoricalKline
from bpx_flows.connectors.backpack.klines import format_kline_time
from bpx_flows.connectors.backpack.streams import KlineInterval as I
from bpx_flows.connectors.backpack.wire import Frame, Trade
from bpx_flows.connectors.sim import Exchange, SimConfig
from bpx_flows.flows.candles import CandleConfig
from bpx_flows.operators.candles import (
    Candle,
    HistoricalCandle,
    KlineMismatch,
    TradeGap,
)
from tests.wired import candle_settings, wired

S = 1_000_000
T0 = 1_790_000_040_000_000


def frame(
    t: int, at_us: int, p: str = "10", q: str = "1", symbol: str = "SOL_USDC"
) -> Frame[Trade]:
    data = Trade(E=at_us, s=symbol, p=p, q=q, b="1", a="2", t=t, T=at_us, m=t % 3 == 0)
    return Frame(f"trade.{symbol}", data, recv_us=at_us)


def run(
    records: list[Any], config: CandleConfig, workers: int = 1
) -> tuple[list, list, list]:
    section, replay = candle_settings(config)
    out: list[Any] = []
    flow = wired(
        "candles", TestingSource(records), out, sections=[section], replay=replay
    )
    if workers == 1:
        run_main(flow)
    else:
        cluster_main(flow, [], 0, worker_count_per_proc=workers)
    candles = [r for r in out if isinstance(r, Candle | HistoricalCandle)]
    late = [r for r in out if isinstance(r, Trade)]
    integrity = [r for r in out if not isinstance(r, Candle | HistoricalCandle | Trade)]
    return candles, integrity, late


CONFIG = CandleConfig(
    intervals=(I.S1, I.M1), allowed_lateness_us=2 * S, wall_clock=False
)


@pytest.mark.parametrize("workers", [1, 2])
def test_late_trades_go_to_their_own_output_and_gaps_are_reported(workers: int) -> None:
    records = [frame(1, T0), frame(2, T0 + 500_000), frame(3, T0 + 5 * S)]
    records.append(
        frame(4, T0 + 100_000)
    )  # 4.9 s behind the newest: late (2 s allowed)
    records.append(frame(5, T0 + 4 * S))  # 1 s behind: still on time
    records.append(frame(8, T0 + 6 * S))  # ids 6 and 7 never arrive
    records += [
        frame(10, T0 + 10 * S, symbol="BTC_USDC"),
        frame(11, T0 + 11 * S, symbol="BTC_USDC"),
    ]
    candles, integrity, late = run(records, CONFIG, workers)
    assert [t.t for t in late] == [4]
    seconds = sorted(
        (c.symbol, (c.start_us - T0) // S, c.trades)
        for c in candles
        if c.interval is I.S1
    )
    assert seconds == [
        ("BTC_USDC", 10, 1),
        ("BTC_USDC", 11, 1),
        ("SOL_USDC", 0, 2),
        ("SOL_USDC", 4, 1),
        ("SOL_USDC", 5, 1),
        ("SOL_USDC", 6, 1),
    ]
    gaps = [g for g in integrity if isinstance(g, TradeGap)]
    assert [(g.symbol, g.first_missing, g.last_missing) for g in gaps] == [
        ("SOL_USDC", 6, 7)
    ]


def test_quiet_intervals_make_no_candles_unless_filled() -> None:
    records = [frame(1, T0), frame(2, T0 + 4 * S)]
    candles, _, _ = run(records, CONFIG)
    assert [c.start_us for c in candles if c.interval is I.S1] == [T0, T0 + 4 * S]
    filled = CandleConfig(
        intervals=(I.S1,),
        allowed_lateness_us=2 * S,
        wall_clock=False,
        forward_fill=True,
    )
    candles, _, _ = run(records, filled)
    assert [(c.start_us - T0) // S for c in candles] == [0, 1, 2, 3, 4]
    assert [c.filled for c in candles] == [False, True, True, True, False]


def simulated_tape(seconds: int) -> list[Frame[Trade]]:
    exchange = Exchange(SimConfig(seed=21, rate_scale=5.0, account_every_s=None), T0)
    exchange.wanted = {"trade.SOL_USDC", "trade.BTC_USDC_PERP"}
    return [Frame(stream, rec) for stream, rec in exchange.advance_to(T0 + seconds * S)]


def test_candles_equal_a_polars_group_by_dynamic_oracle_exactly() -> None:
    tape = simulated_tape(900)
    intervals = (I.S1, I.M1, I.M5)
    config = CandleConfig(intervals=intervals, allowed_lateness_us=0, wall_clock=False)
    candles, integrity, late = run(tape, config)
    assert not late and not integrity
    trades = (
        pl.DataFrame(
            {
                "symbol": [f.data.s for f in tape],
                "time": [f.data.T for f in tape],
                "id": [f.data.t for f in tape],
                "price": [Decimal(f.data.p) for f in tape],
                "qty": [Decimal(f.data.q) for f in tape],
            },
            schema_overrides={"price": pl.Decimal(38, 12), "qty": pl.Decimal(38, 12)},
        )
        .with_columns(pl.col("time").cast(pl.Datetime("us", "UTC")))
        .sort("symbol", "time", "id")
    )
    checked = 0
    for interval, every in ((I.S1, "1s"), (I.M1, "1m"), (I.M5, "5m")):
        expected = trades.group_by_dynamic(
            "time", every=every, group_by="symbol", closed="left", label="left"
        ).agg(
            pl.col("price").first().alias("open"),
            pl.col("price").max().alias("high"),
            pl.col("price").min().alias("low"),
            pl.col("price").last().alias("close"),
            pl.col("qty").sum().alias("volume"),
            (pl.col("price") * pl.col("qty")).sum().alias("quote"),
            pl.len().alias("trades"),
        )
        oracle = {
            (row["symbol"], int(row["time"].timestamp()) * S): row
            for row in expected.iter_rows(named=True)
        }
        ours = [c for c in candles if c.interval is interval]
        assert len(ours) >= len(oracle) - 2  # the last window per symbol stays open
        for candle in ours:
            row = oracle[(candle.symbol, candle.start_us)]
            assert (candle.open, candle.high, candle.low, candle.close) == (
                row["open"],
                row["high"],
                row["low"],
                row["close"],
            )
            assert candle.volume == row["volume"]
            assert candle.quote_volume == row["quote"]
            assert candle.trades == row["trades"]
            checked += 1
    assert checked > 1000


def test_interval_validation() -> None:
    assert CandleConfig(intervals=(I.M1, I.MONTH1)).base is I.M1
    with pytest.raises(ValueError, match="fixed-length"):
        CandleConfig(intervals=(I.MONTH1,))
    with pytest.raises(ValueError, match="not multiples"):
        CandleConfig(intervals=(I.M3, I.M5))


def test_history_fetched_at_start_becomes_historical_candles_never_compared() -> None:
    def kline(start_us: int, c: str = "11", v: str = "2") -> Frame[HistoricalKline]:
        data = HistoricalKline(
            E=start_us + 60 * S,
            T=format_kline_time(start_us + 60 * S),
            X=True,
            c=c,
            h="12",
            l="9",
            n=3,
            o="10",
            s="SOL_USDC",
            t=format_kline_time(start_us),
            v=v,
            V="21.5",
        )
        return Frame("kline.1m.SOL_USDC", data, recv_us=T0)

    first = T0 - 180 * S - T0 % (60 * S)
    records: list[Any] = [kline(first), kline(first + 60 * S, v="x"), frame(1, T0)]
    candles, integrity, _ = run(records, CONFIG)
    history = [c for c in candles if isinstance(c, HistoricalCandle)]
    assert history == [
        HistoricalCandle(
            symbol="SOL_USDC",
            interval=I.M1,
            start_us=first,
            end_us=first + 60 * S,
            open=Decimal(10),
            high=Decimal(12),
            low=Decimal(9),
            close=Decimal(11),
            volume=Decimal(2),
            quote_volume=Decimal("21.5"),
            trades=3,
        )
    ]  # the kline whose volume is not a number is left out
    assert not [e for e in integrity if isinstance(e, KlineMismatch)]
    assert [(c.interval, c.trades) for c in candles if isinstance(c, Candle)] == [
        (I.S1, 1)
    ]
