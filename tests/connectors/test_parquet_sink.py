from decimal import Decimal
from pathlib import Path

import bytewax.operators as op
import msgspec
import polars as pl
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSource, run_main

from bpx_flows.connectors.backpack.streams import KlineInterval as I
from bpx_flows.connectors.sinks.parquet import ParquetSink, schema_of
from bpx_flows.operators.candles import Candle

T0 = 1_790_000_040_000_000  # 2026-09-21


def candle(symbol: str, start_us: int, close: str, filled: bool = False) -> Candle:
    price = Decimal(close)
    return Candle(
        symbol=symbol,
        interval=I.M1,
        start_us=start_us,
        end_us=start_us + 60_000_000,
        open=price,
        high=price,
        low=price,
        close=price,
        volume=Decimal("1.5"),
        quote_volume=price * Decimal("1.5"),
        vwap=None if filled else Decimal(1) / 3,
        trades=0 if filled else 3,
        buy_volume=Decimal(1),
        buy_trades=2,
        sell_volume=Decimal("0.5"),
        sell_trades=1,
        first_trade_id=None if filled else 7,
        last_trade_id=None if filled else 9,
        filled=filled,
    )


def test_candles_round_trip_through_parquet_partitions(tmp_path: Path) -> None:
    candles = [
        candle("SOL_USDC", T0, "186.51"),
        candle("SOL_USDC", T0 + 86_400_000_000, "190.00000001"),  # the next day
        candle("AAPL.US_USDC_PERP", T0, "227.3", filled=True),
    ]
    flow = Dataflow("parquet")
    op.output(
        "out",
        op.input("in", flow, TestingSource(candles)),
        ParquetSink(tmp_path, batch_rows=2),
    )
    run_main(flow)
    files = sorted(
        p.relative_to(tmp_path).as_posix().rsplit("/", 1)[0]
        for p in tmp_path.rglob("*.parquet")
    )
    assert files == [
        "candle/symbol=AAPL.US_USDC_PERP/date=2026-09-21",
        "candle/symbol=SOL_USDC/date=2026-09-21",
        "candle/symbol=SOL_USDC/date=2026-09-22",
    ]
    assert not list(tmp_path.rglob("*.tmp"))
    frame = pl.read_parquet(
        tmp_path / "candle" / "**/*.parquet", hive_partitioning=True
    ).sort("symbol", "start_time")
    rows = frame.to_dicts()
    assert [r["close"] for r in rows] == [
        Decimal("227.3"),
        Decimal("186.51"),
        Decimal("190.00000001"),
    ]
    assert rows[1]["vwap"] == (Decimal(1) / 3).quantize(Decimal("1e-18"))
    assert (
        rows[0]["vwap"] is None
        and rows[0]["filled"] is True
        and rows[0]["first_trade_id"] is None
    )
    assert rows[1]["start_time"].timestamp() * 1_000_000 == T0
    assert "symbol" not in schema_of(Candle)  # in the path only


def test_values_a_decimal_column_cannot_hold_are_null(tmp_path: Path) -> None:
    big = candle("SOL_USDC", T0, "1")
    records = [
        msgspec.structs.replace(big, volume=Decimal(10) ** 21),  # 22 integer digits
        msgspec.structs.replace(
            big, high=Decimal("Infinity"), start_us=T0 + 60_000_000
        ),
    ]
    flow = Dataflow("parquet")
    op.output(
        "out", op.input("in", flow, TestingSource(records)), ParquetSink(tmp_path)
    )
    run_main(flow)
    rows = (
        pl.read_parquet(tmp_path / "candle" / "**/*.parquet", hive_partitioning=True)
        .sort("start_time")
        .to_dicts()
    )
    assert rows[0]["volume"] is None and rows[0]["close"] == Decimal(1)
    assert rows[1]["high"] is None and rows[1]["volume"] == Decimal("1.5")
