"""``top``'s panels as Rich text, from a market snapshot: pure, any size.

Each function takes what it draws and the room it has (columns, rows) and returns
a ``rich.text.Text`` that fits; the app only places them. Green is bid/up, red is
ask/down, yellow is a warning (resyncing, stale, an active burst).
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from rich.text import Text

from bpx_flows.operators.book_state import BookLadder, BookStats

from .state import MarketSnapshot

__all__ = [
    "account_panel",
    "book_panel",
    "candle_panel",
    "derivatives_panel",
    "health_panel",
    "liquidations_panel",
]

UP, DOWN, WARN, DIM = "green", "red", "yellow", "grey50"
_BLOCKS = " ▁▂▃▄▅▆▇█"


def _fmt(value: Any, places: int | None = None) -> str:
    if value is None:
        return "-"
    if places is not None:
        return f"{Decimal(value):,.{places}f}"
    return f"{value}"


def book_panel(snap: MarketSnapshot, width: int, height: int) -> Text:
    """The ladder (asks above bids, sizes as bars) and the book's figures."""
    out = Text()
    stats, ladder = snap.stats, snap.ladder
    if stats is None:
        return Text("waiting for the book…", style=DIM)
    valid = stats.valid
    state = Text("valid", style=UP) if valid else Text("RESYNCING", style=WARN)
    out.append_text(Text("book ") + state)
    out.append(f"  id {stats.update_id}\n", style=DIM)
    out.append(f"spread {_fmt(stats.spread)} ({_fmt(stats.spread_bps, 2)} bps)\n")
    out.append(f"micro {_fmt(stats.microprice, 4)}  imb {_fmt(stats.imbalance, 3)}\n")
    rows = max(height - 3, 2)
    if ladder is not None:
        out.append_text(_ladder(ladder, width, rows))
    else:
        out.append_text(_top_only(stats))
    return out


def _ladder(ladder: BookLadder, width: int, rows: int) -> Text:
    each = max((rows - 1) // 2, 1)
    asks = list(reversed(ladder.asks[:each]))
    bids = list(ladder.bids[:each])
    largest = max((level.qty for level in (*asks, *bids)), default=Decimal(1)) or 1
    price_w = max((len(str(level.price)) for level in (*asks, *bids)), default=6)
    qty_w = max((len(str(level.qty)) for level in (*asks, *bids)), default=4)
    bar_w = max(width - price_w - qty_w - 3, 1)
    out = Text()
    for levels, style in ((asks, DOWN), (bids, UP)):
        for level in levels:
            filled = int(bar_w * level.qty / largest)
            out.append(f"{level.price!s:>{price_w}} ", style=style)
            out.append(f"{level.qty!s:>{qty_w}} ")
            out.append("█" * max(filled, 1 if level.qty else 0) + "\n", style=style)
        if style == DOWN:
            out.append("-" * min(width, price_w + qty_w + bar_w) + "\n", style=DIM)
    return out


def _top_only(stats: BookStats) -> Text:
    out = Text()
    out.append(f"ask {_fmt(stats.best_ask)} x {_fmt(stats.ask_qty)}\n", style=DOWN)
    out.append(f"bid {_fmt(stats.best_bid)} x {_fmt(stats.bid_qty)}\n", style=UP)
    return out


def candle_panel(snap: MarketSnapshot, interval: str, width: int, height: int) -> Text:
    """The last candles of ``interval`` as bars with wicks, and volume below."""
    candles = snap.candles.get(interval, [])
    if not candles:
        return Text(f"no {interval} candles yet…", style=DIM)
    chart_h = max(height - 3, 3)
    shown = candles[-max(width - 10, 1) :]
    high = max(c.high for c in shown)
    low = min(c.low for c in shown)
    span = (high - low) or Decimal(1)

    def row_of(price: Decimal) -> int:
        return int((high - price) / span * (chart_h - 1))

    grid = [[(" ", "")] * len(shown) for _ in range(chart_h)]
    for x, candle in enumerate(shown):
        style = UP if candle.close >= candle.open else DOWN
        if getattr(candle, "revision", 0):
            style = WARN
        top, bottom = (
            row_of(max(candle.open, candle.close)),
            row_of(min(candle.open, candle.close)),
        )
        for y in range(row_of(candle.high), row_of(candle.low) + 1):
            grid[y][x] = ("█" if top <= y <= bottom else "│", style)
    out = Text()
    for y, row in enumerate(grid):
        label = high - span * y / (chart_h - 1)
        out.append(f"{label:>9.6g} ", style=DIM)
        for char, style in row:
            out.append(char, style=style)
        out.append("\n")
    out.append_text(_volume(shown, width))
    last = candles[-1]
    out.append(f"{interval} o {last.open} h {last.high} l {last.low} c {last.close}")
    return out


def _volume(candles: list[Any], width: int) -> Text:
    largest = max((c.volume for c in candles), default=Decimal(0)) or Decimal(1)
    out = Text(f"{'volume':>9} ", style=DIM)
    for candle in candles:
        step = int(candle.volume / largest * (len(_BLOCKS) - 1))
        out.append(_BLOCKS[step], style=UP if candle.close >= candle.open else DOWN)
    out.append("\n")
    return out


def derivatives_panel(snap: MarketSnapshot, width: int, height: int) -> Text:
    """Mark, index, premium, funding and the time to it, open interest and change."""
    view = snap.derivatives
    if view is None:
        return Text("no derivatives (a spot market, or none yet)", style=DIM)
    out = Text()
    stale = view.mark_stale or view.oi_stale
    out.append(f"mark {_fmt(view.mark)}  index {_fmt(view.index)}\n")
    out.append(f"premium {_fmt(view.premium_bps, 2)} bps\n")
    rate = view.funding_rate
    pct = f"{rate * 100:.4f}%" if rate is not None else "-"
    out.append(f"funding {pct} in {_duration(view.time_to_funding_ms)}\n")
    out.append(f"open interest {_fmt(view.open_interest)}")
    first = snap.first_open_interest
    if first is not None and view.open_interest is not None:
        change = view.open_interest - first
        out.append(f" ({change:+})", style=UP if change >= 0 else DOWN)
    out.append("\n")
    for oi in view.oi_changes[: max(height - 5, 0)]:
        out.append(f"  {oi.horizon_s}s change {_fmt(oi.change)}\n", style=DIM)
    if stale:
        out.append("STALE input\n", style=WARN)
    return out


def _duration(ms: int | None) -> str:
    if ms is None:
        return "-"
    seconds = max(ms // 1000, 0)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


def liquidations_panel(snap: MarketSnapshot, width: int, height: int) -> Text:
    """Active bursts first (highlighted), then the latest liquidations."""
    out = Text()
    for burst in snap.bursts:
        out.append(
            f"BURST {burst.side.value} {burst.severity.value}: {burst.count} liq., "
            f"{burst.total_notional:,.0f} notional\n",
            style=f"bold {WARN}",
        )
    rows = max(height - len(snap.bursts), 1)
    if not snap.liquidations:
        out.append("no liquidations yet", style=DIM)
        return out
    for liq in reversed(snap.liquidations[-rows:]):
        clock = time.strftime("%H:%M:%S", time.gmtime(liq.event_us / 1e6))
        style = UP if liq.side.value == "bid" else DOWN
        who = "short" if liq.side.value == "bid" else "long"
        out.append(f"{clock} {who:<5} {liq.quantity} @ {liq.price}\n", style=style)
    return out


def health_panel(health: dict[str, Any], width: int, height: int) -> Text:
    """The feed: connections, frames/s, resyncs, gaps, REST backlog, latency."""
    out = Text()
    up, total = health.get("connections_up", 0), health.get("connections", 0)
    if total:
        style = UP if up == total else WARN
        out.append(f"connections {up}/{total} up\n", style=style)
        out.append(f"frames/s {health.get('frames_per_s', 0):,.0f}\n")
        out.append(f"resyncs {health.get('resyncs', 0)}  reconnects ")
        out.append(f"{health.get('reconnects', 0)}\n")
        out.append(f"REST backlog {health.get('backlog', 0)}  ")
        out.append(f"queued {health.get('queued', 0)}\n")
        gaps = health.get("trade_gaps", 0)
        out.append(f"trade gaps open {gaps}\n", style=WARN if gaps else "")
    else:
        out.append(f"{health.get('source', 'replay')}\n", style=DIM)
    out.append(f"records/s {health.get('records_per_s', 0):,.0f}\n")
    gaps = health.get("integrity", 0)
    out.append(f"gaps/integrity {gaps}\n", style=WARN if gaps else "")
    latency = health.get("latency_ms")
    if latency is not None:
        out.append(f"receive latency p50 {latency[0]:.1f} p99 {latency[1]:.1f} ms\n")
    for line in health.get("warnings", [])[-2:]:
        out.append(line[: max(width, 10)] + "\n", style=WARN)
    return out


def account_panel(snap: MarketSnapshot, width: int, height: int) -> Text:
    """The position (PnL, liquidation distance, margin), open orders, last fills."""
    out = Text()
    position = snap.position
    if position is not None:
        side = UP if position.side.value == "long" else DOWN
        out.append(f"{position.side.value} {position.quantity} @ ", style=side)
        out.append(f"{position.entry_price}\n", style=side)
        pnl = position.unrealized_pnl
        out.append(f"uPnL {pnl:+,.2f}  ", style=UP if pnl >= 0 else DOWN)
        out.append(f"mark {position.mark_price}\n")
        distance = position.distance_to_liquidation_bps
        out.append(f"to liquidation {_fmt(distance, 0)} bps  ")
        out.append(f"margin {_fmt(position.margin_use, 3)}\n")
    else:
        out.append("no position\n", style=DIM)
    if snap.margin_alert is not None:
        alert = snap.margin_alert
        out.append(f"MARGIN {alert.margin_use:.3f} past {alert.level}\n", style=WARN)
    out.append(f"open orders {len(snap.orders)}\n")
    for order in snap.orders[: max(height // 3, 1)]:
        style = UP if order.side.value == "bid" else DOWN
        out.append(
            f"  {order.side.value} {_fmt(order.quantity)} @ {_fmt(order.price)} "
            f"{order.status.value}\n",
            style=style,
        )
    for fill in reversed(snap.fills[-max(height // 3, 1) :]):
        who = "maker" if fill.maker else "taker"
        out.append(
            f"fill {fill.side.value} {fill.quantity} @ {fill.price} {who} "
            f"fee {fill.fee}\n",
            style=DIM,
        )
    return out
