"""The report's charts, one market at a time: plotly figures from the datasets.

Each function returns a figure, or ``None`` when the datasets hold nothing for it
(a spot market has no derivatives chart). Colours say one thing each: green/red
for up/down candles and bid/ask, grey for the exchange's own history, orange for
alerts and integrity events.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from .data import Dataset, time_column

__all__ = ["book_chart", "candle_charts", "derivatives_chart", "events_chart"]

BID, ASK, ALERT, HISTORY = "#26a269", "#c01c28", "#e66100", "#9a9996"
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_MOST_INTERVALS = 3  # candle charts per market, finest first


def _interval_s(name: str) -> int:
    digits = name.rstrip("smhdwM")
    unit = name[len(digits) :]
    return int(digits or 1) * (_UNIT_S.get(unit, 2_592_000))


def _layout(fig: Any, title: str, height: int) -> Any:
    fig.update_layout(
        title={"text": title, "x": 0.01},
        height=height,
        margin={"l": 60, "r": 20, "t": 50, "b": 30},
        legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right"},
        hovermode="x unified",
        template="plotly_white",
    )
    return fig


def candle_charts(data: Dataset, symbol: str) -> list[Any]:
    """Candlesticks with volume per interval; history, revisions, liquidations."""
    live = data.kind("candle", symbol)
    history = data.kind("historical_candle", symbol)
    intervals: set[str] = set()
    for table in (live, history):
        if table is not None:
            intervals.update(table.get_column("interval").unique())
    charts = []
    for interval in sorted(intervals, key=_interval_s)[:_MOST_INTERVALS]:
        fig = make_subplots(
            rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25],
            vertical_spacing=0.03,
        )  # fmt: skip
        for table, name, up, down in (
            (history, "history (exchange)", HISTORY, "#5e5c64"),
            (live, "candles", BID, ASK),
        ):
            rows = _of_interval(table, interval)
            if rows is not None:
                _add_candles(fig, rows, name, up, down)
        _add_revisions(fig, _of_interval(live, interval))
        _add_liquidations(fig, data.kind("liquidation_stats", symbol))
        _add_bursts(fig, data.kind("burst_alert", symbol))
        fig.update_xaxes(rangeslider_visible=False)
        fig.update_yaxes(title_text="price", row=1, col=1)
        fig.update_yaxes(title_text="volume", row=2, col=1)
        charts.append(_layout(fig, f"{symbol}: candles {interval}", 520))
    return charts


def _of_interval(table: pl.DataFrame | None, interval: str) -> pl.DataFrame | None:
    if table is None:
        return None
    rows = table.filter(pl.col("interval") == interval)
    return rows if rows.height else None


def _add_candles(fig: Any, rows: pl.DataFrame, name: str, up: str, down: str) -> None:
    x = rows.get_column("start_time").to_list()
    fig.add_trace(
        go.Candlestick(
            x=x,
            open=rows.get_column("open").to_list(),
            high=rows.get_column("high").to_list(),
            low=rows.get_column("low").to_list(),
            close=rows.get_column("close").to_list(),
            name=name,
            increasing_line_color=up,
            decreasing_line_color=down,
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Bar(
            x=x,
            y=rows.get_column("volume").to_list(),
            name=f"{name} volume",
            marker_color=up,
            opacity=0.6,
            showlegend=False,
        ),
        row=2,
        col=1,
    )


def _add_revisions(fig: Any, rows: pl.DataFrame | None) -> None:
    if rows is None or "revision" not in rows.columns:
        return
    revised = rows.filter(pl.col("revision") > 0)
    if not revised.height:
        return
    fig.add_trace(
        go.Scatter(
            x=revised.get_column("start_time").to_list(),
            y=revised.get_column("close").to_list(),
            mode="markers",
            marker={"symbol": "diamond-open", "size": 10, "color": ALERT},
            name="revised (trades fetched back)",
        ),
        row=1,
        col=1,
    )


def _add_liquidations(fig: Any, rows: pl.DataFrame | None) -> None:
    if rows is None:
        return
    for side, colour, label in (("bid", BID, "shorts"), ("ask", ASK, "longs")):
        mine = rows.filter(pl.col("side") == side)
        if not mine.height:
            continue
        fig.add_trace(
            go.Scatter(
                x=mine.get_column("event_time").to_list(),
                y=mine.get_column("price").to_list(),
                mode="markers",
                marker={"symbol": "x", "size": 9, "color": colour},
                name=f"liquidated {label}",
                text=[f"{n:,.0f} notional" for n in mine.get_column("notional")],
            ),
            row=1,
            col=1,
        )


def _add_bursts(fig: Any, rows: pl.DataFrame | None) -> None:
    if rows is None:
        return
    for burst in rows.filter(pl.col("phase") == "started").iter_rows(named=True):
        ended = rows.filter(
            (pl.col("burst_id") == burst["burst_id"]) & (pl.col("phase") == "ended")
        )
        end = (
            ended.get_column("end_time")[0] if ended.height else burst["detected_time"]
        )
        fig.add_vrect(
            x0=burst["start_time"],
            x1=end if end is not None else burst["detected_time"],
            fillcolor=ALERT,
            opacity=0.2,
            line_width=0,
            annotation_text=f"burst {burst['side']} ({burst['severity']})",
            row=1,
            col=1,
        )


def book_chart(data: Dataset, symbol: str) -> Any | None:
    """Spread and imbalance, and depth bands (quote) per side."""
    rows = data.kind("book_stats", symbol)
    if rows is None:
        return None
    fig = make_subplots(
        rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.04,
        subplot_titles=("spread, bps", "imbalance (top levels)", "depth, quote"),
    )  # fmt: skip
    x = rows.get_column("recv_time").to_list()
    fig.add_trace(
        go.Scatter(x=x, y=rows.get_column("spread_bps").to_list(), name="spread bps"),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(x=x, y=rows.get_column("imbalance").to_list(), name="imbalance"),
        row=2,
        col=1,
    )
    if "bands" in rows.columns:
        bands = rows.select("recv_time", "bands").explode("bands").unnest("bands")
        for bps in sorted(bands.get_column("bps").drop_nulls().unique()):
            band = bands.filter(pl.col("bps") == bps)
            bx = band.get_column("recv_time").to_list()
            for side, colour in (("bid", BID), ("ask", ASK)):
                fig.add_trace(
                    go.Scatter(
                        x=bx,
                        y=band.get_column(f"{side}_quote").to_list(),
                        name=f"{side} within {bps} bps",
                        line={"color": colour, "width": 1},
                        opacity=0.4 + 0.6 / (1 + bps / 25),
                    ),
                    row=3,
                    col=1,
                )
    _mark_events(fig, data.kind("book_integrity", symbol), row=1)
    return _layout(fig, f"{symbol}: order book", 620)


def _mark_events(fig: Any, rows: pl.DataFrame | None, row: int) -> None:
    if rows is None:
        return
    column = time_column(rows)
    if column is None:
        return
    fig.add_trace(
        go.Scatter(
            x=rows.get_column(column).to_list(),
            y=[0] * rows.height,
            mode="markers",
            marker={"symbol": "triangle-up", "size": 11, "color": ALERT},
            name="book integrity",
            text=[str(k) for k in rows.get_column("kind")],
        ),
        row=row,
        col=1,
    )


def derivatives_chart(data: Dataset, symbol: str) -> Any | None:
    """Premium, funding rate and open interest of a perpetual."""
    rows = data.kind("derivatives_view", symbol)
    if rows is None:
        return None
    fig = make_subplots(
        rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.05,
        subplot_titles=("premium over index, bps", "funding rate", "open interest"),
    )  # fmt: skip
    x = rows.get_column("event_time").to_list()
    for row, column, name in (
        (1, "premium_bps", "premium bps"),
        (2, "funding_rate", "funding rate"),
        (3, "open_interest", "open interest"),
    ):
        values = rows.get_column(column).to_list()
        fig.add_trace(
            go.Scatter(x=x, y=values, name=name, connectgaps=True), row=row, col=1
        )
    return _layout(fig, f"{symbol}: derivatives", 560)


_EVENT_KINDS = ("book_integrity", "trade_gap", "trade_backfill", "kline_mismatch")


def events_chart(data: Dataset, symbol: str) -> Any | None:
    """Every integrity event on one timeline: gaps, resyncs, kline mismatches."""
    fig = go.Figure()
    for kind in _EVENT_KINDS:
        rows = data.kind(kind, symbol)
        column = time_column(rows) if rows is not None else None
        if rows is None or column is None:
            continue
        labels = (
            [f"{kind}: {k}" for k in rows.get_column("kind")]
            if "kind" in rows.columns
            else [kind] * rows.height
        )
        fig.add_trace(
            go.Scatter(
                x=rows.get_column(column).to_list(),
                y=labels,
                mode="markers",
                marker={"size": 10, "color": ALERT},
                name=kind,
            )
        )
    if not fig.data:
        return None
    return _layout(fig, f"{symbol}: integrity events", 320)
