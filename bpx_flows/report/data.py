"""What ``--parquet DIR`` wrote, read back for the report: one table per kind.

``DIR/<kind>/symbol=<S>/date=<D>/part-*.parquet`` (``connectors/sinks/parquet.py``).
Exact decimals become floats here: a chart needs no more, and the report shows
no number it did not draw.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl

from bpx_flows.connectors.errors import ConfigError

__all__ = ["Dataset", "load"]

# The column that dates a record of each kind, in order of preference.
_TIME_COLUMNS = (
    "start_time",
    "event_time",
    "detected_time",
    "recv_time",
    "engine_time",
    "end_time",
    "emit_time",
)


@dataclass
class Dataset:
    """Every kind's table (rows of all markets), and what dates it."""

    folder: Path
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)

    def kind(self, name: str, symbol: str | None = None) -> pl.DataFrame | None:
        """The rows of ``name`` (of one market), sorted by time; ``None``: none."""
        table = self.tables.get(name)
        if table is None:
            return None
        if symbol is not None and "symbol" in table.columns:
            table = table.filter(pl.col("symbol") == symbol)
        return table if table.height else None

    def markets(self) -> list[str]:
        """Every market some record names, sorted."""
        names: set[str] = set()
        for table in self.tables.values():
            if "symbol" in table.columns:
                names.update(table.get_column("symbol").drop_nulls().unique())
        return sorted(names)

    def counts(self) -> dict[str, int]:
        """Records per kind, most first."""
        pairs = sorted(self.tables.items(), key=lambda kv: (-kv[1].height, kv[0]))
        return {name: table.height for name, table in pairs}

    def span(self) -> tuple[datetime, datetime] | None:
        """The first and last time any record carries."""
        lows: list[datetime] = []
        highs: list[datetime] = []
        for table in self.tables.values():
            column = time_column(table)
            if column is not None:
                times = table.get_column(column).drop_nulls()
                if times.len():
                    lows.append(times.min())  # type: ignore[arg-type]
                    highs.append(times.max())  # type: ignore[arg-type]
        if not lows:
            return None
        return min(lows), max(highs)


def time_column(table: pl.DataFrame) -> str | None:
    """The column that dates the table's records."""
    return next((c for c in _TIME_COLUMNS if c in table.columns), None)


def load(folder: Path) -> Dataset:
    """Read every kind under ``folder``.

    Raises:
        ConfigError: not a folder, or no dataset in it.
    """
    if not folder.is_dir():
        msg = f"{str(folder)!r} is not a folder (give what --parquet DIR wrote)"
        raise ConfigError(msg)
    data = Dataset(folder)
    for kind in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = sorted(kind.glob("**/*.parquet"))
        if not files:
            continue
        try:
            table = pl.read_parquet(files, hive_partitioning=True)
        except (pl.exceptions.PolarsError, OSError) as exc:
            msg = f"{kind.name}: cannot read its Parquet files ({exc})"
            raise ConfigError(msg.splitlines()[0]) from None
        data.tables[kind.name] = _floats(table)
    if not data.tables:
        msg = f"no Parquet datasets under {str(folder)!r} (write them with --parquet)"
        raise ConfigError(msg)
    return data


def _floats(table: pl.DataFrame) -> pl.DataFrame:
    """Decimals as floats, sorted by time."""
    decimals = [n for n, t in table.schema.items() if isinstance(t, pl.Decimal)]
    if decimals:
        table = table.with_columns(pl.col(decimals).cast(pl.Float64))
    column = time_column(table)
    return table.sort(column) if column is not None else table
