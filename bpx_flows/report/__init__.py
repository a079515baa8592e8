"""``bpx-flows report DIR --out report.html``: what ``--parquet DIR`` wrote, as charts.

One self-contained HTML file (plotly.js inline: no network needed to view it;
zoom and pan on every chart). Per market: candlesticks with volume (the exchange's
history grey, revised candles marked), liquidations on the price with bursts
shaded, spread, imbalance and depth bands with book integrity events, premium,
funding and open interest, and every integrity event on a timeline; first a summary
(records by kind, time span, markets, gaps, mismatches).

- ``data``: the Parquet datasets, read back;
- ``charts``: the figures of one market;
- ``page``: the HTML around them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .charts import book_chart, candle_charts, derivatives_chart, events_chart
from .data import Dataset, load
from .page import Section, render

__all__ = ["Report", "build_report"]


@dataclass(frozen=True)
class Report:
    """What was written: the file, its charts, its markets and its size."""

    path: Path
    charts: int
    markets: int
    size_bytes: int


def build_report(folder: Path, out: Path) -> Report:
    """Write the report of ``folder`` to ``out``.

    Raises:
        ConfigError: ``folder`` holds no dataset.
    """
    from plotly.offline import get_plotlyjs

    data = load(folder)
    sections = [
        Section(symbol, _anchor(symbol), figures)
        for symbol in data.markets()
        if (figures := _figures(data, symbol))
    ]
    page = render(
        f"bpx-flows report: {folder.name or folder}",
        _summary(data),
        data.counts(),
        sections,
        get_plotlyjs(),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    charts = sum(len(s.figures) for s in sections)
    return Report(out, charts, len(sections), out.stat().st_size)


def _figures(data: Dataset, symbol: str) -> list[object]:
    figures: list[object] = [*candle_charts(data, symbol)]
    for chart in (book_chart, derivatives_chart, events_chart):
        figure = chart(data, symbol)
        if figure is not None:
            figures.append(figure)
    return figures


def _anchor(symbol: str) -> str:
    return "m-" + re.sub(r"[^A-Za-z0-9_-]", "-", symbol)


def _summary(data: Dataset) -> list[tuple[str, str]]:
    counts = data.counts()
    span = data.span()
    rows = [("folder", str(data.folder)), ("markets", ", ".join(data.markets()))]
    if span is not None:
        first, last = span
        seconds = (last - first).total_seconds()
        rows.append(
            (
                "time span",
                f"{first:%Y-%m-%d %H:%M:%S} to {last:%H:%M:%S} UTC ({seconds:,.0f} s)",
            )
        )
    rows += [
        ("records", f"{sum(counts.values()):,} of {len(counts)} kinds"),
        (
            "trade gaps (filled from REST)",
            f"{counts.get('trade_gap', 0):,} "
            f"({counts.get('trade_backfill', 0):,} backfills)",
        ),
        ("kline mismatches", f"{counts.get('kline_mismatch', 0):,}"),
        ("book integrity events", f"{counts.get('book_integrity', 0):,}"),
        ("revised candles", f"{_revised(data):,}"),
    ]
    return rows


def _revised(data: Dataset) -> int:
    table = data.tables.get("candle")
    if table is None or "revision" not in table.columns:
        return 0
    return int((table.get_column("revision") > 0).sum())
