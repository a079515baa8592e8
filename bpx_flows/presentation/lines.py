"""One human-readable line per record, for the console tape; the summary's counting key.

``describe`` dispatches on the record's type (``functools.singledispatch``); the
account's lines live in ``account_lines`` and are registered here. A type without a
line of its own gets its ``repr``, escaped.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import singledispatch
from typing import Any

from bpx_flows.connectors.backpack.booksync import BookSnapshot, Resync
from bpx_flows.connectors.backpack.decode import BadFrame
from bpx_flows.connectors.backpack.klines import format_kline_time
from bpx_flows.connectors.backpack.text import printable
from bpx_flows.connectors.backpack.wire import (
    Frame,
    OrderUpdate,
    PositionUpdate,
    RfqUpdate,
    ServerError,
    Trade,
)
from bpx_flows.operators.book_state import (
    BookIntegrity,
    BookLadder,
    BookLevel,
    BookStats,
    BookTop,
    IntegrityKind,
)
from bpx_flows.operators.bursts import BurstAlert, LiquidationStats
from bpx_flows.operators.candles import (
    Candle,
    HistoricalCandle,
    KlineMismatch,
    KlineResolved,
    TradeGap,
)
from bpx_flows.operators.derivatives import DerivativesView
from bpx_flows.operators.orders import OrderState
from bpx_flows.operators.rfqs import RfqOutcome
from bpx_flows.presentation.account_lines import ACCOUNT_LINES
from bpx_flows.presentation.event_lines import describe_event
from bpx_flows.presentation.numbers import bps, dash, signed

__all__ = ["describe", "integrity_detail", "summary_key"]


@singledispatch
def describe(record: Any) -> str:
    """One line saying what happened, with the numbers that matter."""
    return printable(repr(record))  # a kind without a line of its own yet


for _type, _line in ACCOUNT_LINES.items():
    describe.register(_type, _line)


@describe.register
def _(record: BookStats) -> str:
    band = record.bands[0] if record.bands else None
    depth = f" ±{band.bps}bps {band.bid_base}/{band.ask_base}" if band else ""
    return (
        f"{record.stream:<28} book      {record.best_bid} | {record.best_ask} "
        f"spread {bps(record.spread_bps)} imb {signed(record.imbalance)}{depth} "
        f"levels {record.bid_levels}/{record.ask_levels} id={record.update_id}"
    )


@describe.register
def _(record: BookLadder) -> str:
    def side(levels: tuple[BookLevel, ...]) -> str:
        return " ".join(f"{level.price}x{level.qty}" for level in levels[:3]) or "-"

    return (
        f"{record.stream:<28} ladder    bids {side(record.bids)} | asks "
        f"{side(record.asks)} ({len(record.bids)}/{len(record.asks)} levels)"
    )


@describe.register
def _(record: BookIntegrity) -> str:
    detail = integrity_detail(record)
    return f"{record.stream:<28} INTEGRITY {record.kind.value}: {detail}"


def _top(top: BookTop | None) -> str:
    if top is None:
        return "-"
    return f"bid {top.bid} x {top.bid_qty} ask {top.ask} x {top.ask_qty}"


def _invalid_level(r: BookIntegrity) -> str:
    if r.skipped is not None:
        return f"{r.skipped} level(s) with a bad price or quantity skipped"
    return f"bookTicker u={r.update_id} has a non-numeric price or quantity"


def _crossed(r: BookIntegrity) -> str:
    bid, ask = (r.ours.bid, r.ours.ask) if r.ours else (None, None)
    return f"best bid {bid} >= best ask {ask}"


_DETAILS: dict[IntegrityKind, Callable[[BookIntegrity], str]] = {
    IntegrityKind.UNKNOWN_SYMBOL: lambda r: (
        f"{r.symbol} is not one of the configured symbols"
    ),
    IntegrityKind.RESYNC_FINISHED: lambda r: f"seeded at update id {r.update_id}",
    IntegrityKind.GAP: lambda r: f"expected update id {r.expected}, got {r.got}",
    IntegrityKind.RESYNC_STARTED: lambda r: (
        f"{r.reason}; the book is invalid until the next snapshot"
    ),
    IntegrityKind.DIFF_BEFORE_SNAPSHOT: lambda r: (
        f"diff U={r.got} u={r.update_id} arrived before any snapshot; waiting for one"
    ),
    IntegrityKind.OUT_OF_ORDER: lambda r: (
        f"expected update id {r.expected}, got U={r.got}; resync needed"
    ),
    IntegrityKind.INVALID_LEVEL: _invalid_level,
    IntegrityKind.UNCROSSED: lambda r: "best bid < best ask again",
    IntegrityKind.CROSSED: _crossed,
    IntegrityKind.LOCKED: _crossed,
    IntegrityKind.TICKER_MISMATCH: lambda r: (
        f"ours {_top(r.ours)}; bookTicker {_top(r.theirs)}"
    ),
}


def integrity_detail(record: BookIntegrity) -> str:
    """What a book integrity event's values say, in words (one table by kind)."""
    return _DETAILS[record.kind](record)


@describe.register
def _(view: DerivativesView) -> str:
    stale = " STALE mark" if view.mark_stale else ""
    stale += " STALE oi" if view.oi_stale else ""
    change = view.oi_changes[0].change if view.oi_changes else None
    return (
        f"{view.symbol:<28} mark {dash(view.mark)} index {dash(view.index)} "
        f"premium {bps(view.premium_bps)} funding {dash(view.funding_rate)} "
        f"OI {dash(view.open_interest)} ({dash(view.oi_notional)} quote) "
        f"1m {dash(change)}{stale}"
    )


def _candle_line(record: Candle | HistoricalCandle, tag: str) -> str:
    return (
        f"{record.symbol:<20} candle {record.interval.value:<5} "
        f"{format_kline_time(record.start_us)}Z o={record.open} h={record.high} "
        f"l={record.low} c={record.close} v={record.volume} n={record.trades}{tag}"
    )


@describe.register
def _(record: Candle) -> str:
    tag = " (filled)" if record.filled else " (partial)" if record.partial else ""
    return _candle_line(record, tag)


@describe.register
def _(record: HistoricalCandle) -> str:
    return _candle_line(record, " (history)")


@describe.register
def _(record: TradeGap) -> str:
    return (
        f"{record.symbol:<28} TRADE GAP ids {record.first_missing}.."
        f"{record.last_missing} ({record.count} missing)"
    )


@describe.register
def _(record: KlineMismatch) -> str:
    fields = ", ".join(
        f"{name} ours {a} theirs {b}"
        for name, a, b in zip(record.fields, record.ours, record.theirs, strict=True)
    )
    again = f" (revision {record.revision})" if record.revision else ""
    return (
        f"{record.symbol:<28} KLINE MISMATCH {record.interval.value}{again}: {fields}"
    )


@describe.register
def _(record: KlineResolved) -> str:
    return (
        f"{record.symbol:<28} KLINE RESOLVED {record.interval.value} "
        f"{format_kline_time(record.start_us)}Z by revision {record.revision}"
    )


@describe.register
def _(record: LiquidationStats) -> str:
    window = record.windows[0] if record.windows else None
    recent = (
        f" {window.window_s}s: {window.count} / {window.notional:.0f}" if window else ""
    )
    return (
        f"{record.symbol:<28} liquidated {record.side.value} {record.quantity} @ "
        f"{record.price} = {record.notional:.2f}{recent}"
    )


@describe.register
def _(record: BurstAlert) -> str:
    return (
        f"{record.symbol:<28} BURST {record.phase.value.upper()} "
        f"{record.side.value} {record.severity.value}: "
        f"{record.count} liquidations, "
        f"{record.total_notional:.0f} notional (threshold {record.threshold:.0f})"
    )


@describe.register
def _(record: BookSnapshot) -> str:
    return (
        f"{record.stream:<28} snapshot  id={record.lastUpdateId} "
        f"{len(record.bids)} bids / {len(record.asks)} asks"
    )


@describe.register
def _(record: Resync) -> str:
    return (
        f"{record.stream:<28} RESYNC    {record.reason.value} "
        f"expected={record.expected} got={record.got}"
    )


@describe.register
def _(record: BadFrame) -> str:
    stream = printable(record.stream or "?")
    return f"{stream:<28} BAD FRAME {record.reason.value}: {printable(record.detail)}"


@describe.register
def _(record: ServerError) -> str:
    message = printable(record.error.message)
    return f"{'(server)':<28} ERROR     {record.error.code} {message}"


@describe.register
def _(record: Trade) -> str:  # a late trade, out of its frame
    return f"{record.s:<28} LATE {describe_event(record)}"


@describe.register
def _(record: Frame) -> str:  # type: ignore[type-arg]  # singledispatch takes the bare class
    return f"{printable(record.stream):<28} {describe_event(record.data)}"


# The summary's counting key: the kind, and for some kinds what became of it.

_VARIANTS: dict[type[Any], Callable[[Any], str]] = {
    BookIntegrity: lambda r: r.kind.value,
    BurstAlert: lambda r: r.phase.value,
    OrderState: lambda r: r.status.value,
    RfqOutcome: lambda r: f"{r.role.value}.{r.end.value}",
    OrderUpdate: lambda e: e.e.value,
    RfqUpdate: lambda e: e.e.value,
    PositionUpdate: lambda e: e.e.value if e.e else "snapshot",
}


def summary_key(record: Any) -> str:
    """What the summary counts a record as: ``Candle``, ``OrderUpdate.orderFill``.

    The record's type as people read it in the API (``kind_of`` is the name of
    files, datasets and headers), and for some types what became of it.
    """
    subject = record.data if type(record) is Frame else record
    variant = _VARIANTS.get(type(subject))
    name = type(subject).__name__
    return name if variant is None else f"{name}.{variant(subject)}"
