"""Every output record to Parquet with polars: one dataset per kind, by symbol and date.

Layout: ``ROOT/<kind>/symbol=<symbol>/date=<YYYY-MM-DD>/part-<worker>-<n>.parquet``,
``kind`` the record type in snake case (``candle``, ``book_stats``, ``burst_alert``,
``order_fill``...; for the tape's frames the event type: ``trade``, ``depth``...).
``symbol`` and ``date`` live in the path only (Hive partitioning), never in the file as
well, so every reader sees one type for them: ``polars.scan_parquet(
"ROOT/candle/**/*.parquet", hive_partitioning=True)``, ``pyarrow.parquet.read_table(
"ROOT/candle")``, ``pandas.read_parquet("ROOT/candle")``, DuckDB's
``read_parquet('ROOT/candle/**/*.parquet', hive_partitioning = true)``. A kind without
a symbol (none of ours today) is partitioned by date only.

Columns follow the record's fields (docs/parquet.md lists every kind):

| field | column |
| --- | --- |
| ``str``, enum, ``Literal`` | String |
| ``int`` | Int64 |
| ``bool`` | Boolean |
| ``Decimal`` | Decimal(38, 18), rounded to 18 decimals (a value beyond: null) |
| ``X_us``, ``X_ms`` (a time) | ``X_time``: Datetime(us, UTC) |
| ``*latency_us``, ``*age_us``, ``time_to_*`` | Int64, a duration (unit: suffix) |
| a tuple or list | List of the element's column type |
| a nested record | Struct of its fields' columns |

``date`` is the UTC day of the record's first time among ``start``, ``event``,
``engine``, ``detected`` and ``recv`` (the day it was written if it has none).
"""

from __future__ import annotations

import decimal
import enum
import logging
import os
import re
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from ..backpack.wire import Frame
from ..kinds import kind_of

__all__ = ["ParquetSink", "schema_of", "type_name"]

log = logging.getLogger("bpx_flows.sinks")

_DEC = pl.Decimal(38, 18)
_SCALE = Decimal("1e-18")
_LIMIT = Decimal(10) ** 20  # Decimal(38, 18) holds 20 integer digits
_TIME = pl.Datetime("us", "UTC")
_DURATION = re.compile(r"(latency|age)_(us|ms)$|^time_to_")
_DATE_FROM = ("start_us", "event_us", "engine_us", "detected_us", "recv_us")
_QUANTIZE = decimal.Context(prec=60, traps=[decimal.InvalidOperation])


def _time_column(name: str) -> tuple[str, int] | None:
    """``(column, factor to µs)`` for a field that is a point in time."""
    for suffix, factor in (("_us", 1), ("_ms", 1_000)):
        if name.endswith(suffix) and not _DURATION.search(name):
            return name.removesuffix(suffix) + "_time", factor
    return None


def _decimal(value: Decimal | None) -> Decimal | None:
    if value is None or not value.is_finite() or abs(value) >= _LIMIT:
        return None
    return value.quantize(_SCALE, context=_QUANTIZE)


_Convert = Callable[[Any], Any]


def _identity(value: Any) -> Any:
    return value


def _to_us(factor: int) -> _Convert:
    def convert(value: int | None) -> int | None:
        return None if value is None else value * factor

    return convert


def _column(tp: msgspec.inspect.Type) -> tuple[Any, _Convert]:
    """The polars type of a field's type, and how its value becomes a cell."""
    inspect = msgspec.inspect
    if isinstance(tp, inspect.UnionType):
        inner = [t for t in tp.types if not isinstance(t, inspect.NoneType)]
        if len(inner) == 1:
            dtype, convert = _column(inner[0])
            return dtype, lambda v: None if v is None else convert(v)
        return pl.String, lambda v: None if v is None else str(v)  # e.g. str | int
    if isinstance(tp, inspect.BoolType):
        return pl.Boolean, _identity
    if isinstance(tp, inspect.IntType):
        return pl.Int64, _identity
    if isinstance(tp, inspect.FloatType):
        return pl.Float64, _identity
    if isinstance(tp, inspect.DecimalType):
        return _DEC, _decimal
    if isinstance(tp, inspect.EnumType | inspect.LiteralType):
        return pl.String, lambda v: v.value if isinstance(v, enum.Enum) else str(v)
    if isinstance(tp, inspect.StrType):
        return pl.String, _identity
    if isinstance(tp, inspect.VarTupleType | inspect.ListType):
        dtype, convert = _column(tp.item_type)
        return pl.List(dtype), lambda v: [convert(x) for x in v]
    if isinstance(tp, inspect.TupleType):  # fixed tuples, e.g. (price, quantity)
        kinds = {type(t) for t in tp.item_types}
        if len(kinds) == 1:
            dtype, convert = _column(tp.item_types[0])
            return pl.List(dtype), lambda v: [convert(x) for x in v]
        return pl.List(pl.String), lambda v: [str(x) for x in v]
    if isinstance(tp, inspect.StructType):
        fields, converts = _fields(tp.cls)
        return pl.Struct(fields), lambda v: {
            name: convert(getattr(v, field))
            for name, (field, convert) in converts.items()
        }
    return pl.String, lambda v: None if v is None else str(v)


def _fields(
    cls: type,
) -> tuple[dict[str, Any], dict[str, tuple[str, _Convert]]]:
    """A record type's columns: ``{column: dtype}``, ``{column: (field, convert)}``."""
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    schema: dict[str, Any] = {}
    converts: dict[str, tuple[str, _Convert]] = {}
    for field in info.fields:
        timed = _time_column(field.name)
        tp = field.type
        plain = tp.types if isinstance(tp, msgspec.inspect.UnionType) else (tp,)
        if timed and all(
            isinstance(t, msgspec.inspect.IntType | msgspec.inspect.NoneType)
            for t in plain
        ):
            column, factor = timed
            schema[column] = _TIME
            converts[column] = (field.name, _to_us(factor))
            continue
        dtype, convert = _column(tp)
        schema[field.name] = dtype
        converts[field.name] = (field.name, convert)
    return schema, converts


class _Kind:
    """How the records of one type become rows."""

    def __init__(self, cls: type, frame: bool) -> None:
        self.frame = frame
        schema, converts = _fields(cls)
        if frame:  # a frame's event, plus the frame's own stream and receive time
            schema = {"stream": pl.String, "recv_time": _TIME, **schema}
        self.symbol_field = next((f for f in ("symbol", "s") if f in converts), None)
        self.date_field = next((f for f in _DATE_FROM if f in _names(converts)), None)
        if self.symbol_field is not None:
            del schema[self.symbol_field]  # in the path only
        self.schema = schema
        self._converts = converts

    def row(self, record: Any) -> tuple[str | None, str, dict[str, Any]]:
        """``(symbol, date, row)`` of one record."""
        data = record.data if self.frame else record
        row = {
            column: convert(getattr(data, field))
            for column, (field, convert) in self._converts.items()
        }
        if self.frame:
            row["stream"], row["recv_time"] = record.stream, record.recv_us
        symbol = None
        if self.symbol_field is not None:
            symbol = row.pop(self.symbol_field)
        at = (
            getattr(record if self.frame else data, self.date_field, None)
            if self.date_field
            else None
        )
        if at is None and self.frame:
            at = record.recv_us
        day = datetime.fromtimestamp(
            (at if at is not None else time.time_ns() // 1000) / 1e6, UTC
        ).date()
        return symbol, day.isoformat(), row


def _names(converts: dict[str, tuple[str, _Convert]]) -> set[str]:
    return {field for field, _ in converts.values()}


def schema_of(cls: type) -> dict[str, Any]:
    """The file columns of a record type (without the ``symbol`` partition)."""
    return _Kind(cls, frame=False).schema


def type_name(dtype: Any) -> str:
    """A column type as the docs write it: ``Decimal(38, 18)``, ``List(String)``..."""
    if isinstance(dtype, pl.Decimal):
        return f"Decimal({dtype.precision}, {dtype.scale})"
    if isinstance(dtype, pl.Datetime):
        return f"Datetime({dtype.time_unit}, {dtype.time_zone})"
    if isinstance(dtype, pl.List):
        return f"List({type_name(dtype.inner)})"
    if isinstance(dtype, pl.Struct):
        inner = ", ".join(f"{f.name}: {type_name(f.dtype)}" for f in dtype.fields)
        return f"Struct({inner})"
    return str(dtype)


class _ParquetPartition(StatelessSinkPartition[Any]):
    def __init__(
        self, root: Path, worker: int, batch_rows: int, flush_every_s: float
    ) -> None:
        self._root = root
        self._worker = worker
        self._batch_rows = batch_rows
        self._flush_every_s = flush_every_s
        self._kinds: dict[type, _Kind | None] = {}
        self._rows: dict[tuple[str, str | None, str], list[dict[str, Any]]] = (
            defaultdict(list)
        )
        self._schemas: dict[str, dict[str, Any]] = {}
        self._buffered = 0
        self._last_flush = time.monotonic()
        self._files = 0

    def _kind(self, record: Any) -> _Kind | None:
        frame = type(record) is Frame
        cls = type(record.data) if frame else type(record)
        if cls not in self._kinds:
            try:
                self._kinds[cls] = _Kind(cls, frame)
            except (TypeError, AssertionError, ValueError):
                log.warning("parquet: %s records have no table form; skipped", cls)
                self._kinds[cls] = None
        return self._kinds[cls]

    def write_batch(self, items: list[Any]) -> None:
        for record in items:
            kind = self._kind(record)
            if kind is None:
                continue
            symbol, day, row = kind.row(record)
            name = kind_of(record)
            self._schemas[name] = kind.schema
            self._rows[(name, symbol, day)].append(row)
            self._buffered += 1
        due = time.monotonic() - self._last_flush >= self._flush_every_s
        if self._buffered >= self._batch_rows or (due and self._buffered):
            self.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        for (name, symbol, day), rows in self._rows.items():
            frame = pl.DataFrame(rows, schema=self._schemas[name], orient="row")
            directory = self._root / name
            if symbol is not None:
                directory /= f"symbol={symbol}"
            directory /= f"date={day}"
            directory.mkdir(parents=True, exist_ok=True)
            self._files += 1
            file = f"part-{self._worker}-{time.time_ns()}-{self._files}.parquet"
            temporary = directory / f".{file}.tmp"  # dot files: no reader lists them
            frame.write_parquet(temporary)
            os.replace(temporary, directory / file)  # readers never see half a file
        self._rows.clear()
        self._buffered = 0

    def close(self) -> None:
        self.flush()


class ParquetSink(DynamicSink[Any]):
    """Every record to Parquet, a dataset per kind (see the module docstring).

    Partition: one per worker, each writing its own files. Rows are buffered and
    written every ``batch_rows`` rows or ``flush_every_s`` seconds, and at the end.
    Delivery: at-least-once (a recovered epoch writes again); files appear atomically.
    Records with no table form (none of the flows' outputs) are skipped with a log
    line.

    Args:
        root: the directory of the datasets (created if missing).
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
