"""Candles to Parquet with polars: batched, partitioned by symbol and date.

Layout: ``ROOT/symbol=<symbol>/date=<YYYY-MM-DD>/part-<worker>-<n>.parquet`` (the date
of the candle start, UTC); readable as one dataset with
``polars.scan_parquet("ROOT/**/*.parquet", hive_partitioning=True)``.

Schema (one row per candle):

| column | type |
| --- | --- |
| symbol, interval | String |
| start, end | Datetime(us, UTC) |
| open, high, low, close, vwap | Decimal(38, 18) (vwap null for filled candles) |
| volume, quote_volume, buy_volume, sell_volume | Decimal(38, 18) |
| trades, buy_trades, sell_trades | Int64 |
| first_trade_id, last_trade_id | Int64 (null for filled candles) |
| filled, partial | Boolean |
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from bpx_flows.operators.candles import Candle

__all__ = ["CANDLE_SCHEMA", "CandleParquetSink"]

_DEC = pl.Decimal(38, 18)
_SCALE = Decimal("1e-18")
CANDLE_SCHEMA: dict[str, Any] = {
    "symbol": pl.String,
    "interval": pl.String,
    "start": pl.Datetime("us", "UTC"),
    "end": pl.Datetime("us", "UTC"),
    "open": _DEC,
    "high": _DEC,
    "low": _DEC,
    "close": _DEC,
    "volume": _DEC,
    "quote_volume": _DEC,
    "vwap": _DEC,
    "trades": pl.Int64,
    "buy_volume": _DEC,
    "buy_trades": pl.Int64,
    "sell_volume": _DEC,
    "sell_trades": pl.Int64,
    "first_trade_id": pl.Int64,
    "last_trade_id": pl.Int64,
    "filled": pl.Boolean,
    "partial": pl.Boolean,
}


def _dec(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(_SCALE)


def _row(candle: Candle) -> dict[str, Any]:
    return {
        "symbol": candle.symbol,
        "interval": candle.interval.value,
        "start": candle.start_us,
        "end": candle.end_us,
        "open": _dec(candle.open),
        "high": _dec(candle.high),
        "low": _dec(candle.low),
        "close": _dec(candle.close),
        "volume": _dec(candle.volume),
        "quote_volume": _dec(candle.quote_volume),
        "vwap": _dec(candle.vwap),
        "trades": candle.trades,
        "buy_volume": _dec(candle.buy_volume),
        "buy_trades": candle.buy_trades,
        "sell_volume": _dec(candle.sell_volume),
        "sell_trades": candle.sell_trades,
        "first_trade_id": candle.first_trade_id,
        "last_trade_id": candle.last_trade_id,
        "filled": candle.filled,
        "partial": candle.partial,
    }


class _ParquetPartition(StatelessSinkPartition[Candle]):
    def __init__(
        self, root: Path, worker: int, batch_rows: int, flush_every_s: float
    ) -> None:
        self._root = root
        self._worker = worker
        self._batch_rows = batch_rows
        self._flush_every_s = flush_every_s
        self._rows: list[dict[str, Any]] = []
        self._last_flush = time.monotonic()
        self._files = 0

    def write_batch(self, items: list[Candle]) -> None:
        self._rows.extend(_row(c) for c in items)
        due = time.monotonic() - self._last_flush >= self._flush_every_s
        if len(self._rows) >= self._batch_rows or (due and self._rows):
            self.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self._rows:
            return
        groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for row in self._rows:
            day = (
                datetime.fromtimestamp(row["start"] // 1_000_000, UTC)
                .date()
                .isoformat()
            )
            groups[(row["symbol"], day)].append(row)
        for (symbol, day), rows in groups.items():
            frame = pl.DataFrame(rows, schema=CANDLE_SCHEMA, orient="row")
            directory = self._root / f"symbol={symbol}" / f"date={day}"
            directory.mkdir(parents=True, exist_ok=True)
            self._files += 1
            name = f"part-{self._worker}-{time.time_ns()}-{self._files}.parquet"
            temporary = directory / f".{name}.tmp"
            frame.write_parquet(temporary)
            os.replace(temporary, directory / name)  # readers never see half a file
        self._rows.clear()

    def close(self) -> None:
        self.flush()


class CandleParquetSink(DynamicSink[Candle]):
    """Candles to Parquet files (see the module docstring for layout and schema).

    Partition: one per worker, each writing its own files. Rows are buffered and
    written every ``batch_rows`` rows or ``flush_every_s`` seconds, and at the end.
    Delivery: at-least-once (a recovered epoch writes again); files appear atomically.

    Args:
        root: the dataset directory (created if missing).
        batch_rows: rows buffered before a write.
        flush_every_s: the longest a row waits, seconds (checked when batches arrive).
    """

    def __init__(
        self, root: str | Path, batch_rows: int = 50_000, flush_every_s: float = 60.0
    ) -> None:
        self._root = Path(root)
        self._batch_rows = batch_rows
        self._flush_every_s = flush_every_s

    def build(
        self, step_id: str, worker_index: int, worker_count: int
    ) -> _ParquetPartition:
        """One writer per worker."""
        return _ParquetPartition(
            self._root, worker_index, self._batch_rows, self._flush_every_s
        )
