"""One human-readable line per record, for the console tape."""

from __future__ import annotations

from typing import Any

from bpx_flows.connectors.backpack.booksync import BookSnapshot, Resync
from bpx_flows.connectors.backpack.decode import BadFrame
from bpx_flows.connectors.backpack.klines import format_kline_time
from bpx_flows.connectors.backpack.text import printable
from bpx_flows.connectors.backpack.wire import (
    BookTicker,
    Depth,
    Frame,
    Kline,
    Liquidation,
    MarkPrice,
    OpenInterest,
    OrderUpdate,
    PositionUpdate,
    RfqUpdate,
    ServerError,
    Ticker,
    Trade,
)
from bpx_flows.operators.account import AutoCloseAlert
from bpx_flows.operators.book_state import BookIntegrity, BookStats
from bpx_flows.operators.bursts import BurstAlert, LiquidationStats
from bpx_flows.operators.candles import (
    Candle,
    HistoricalCandle,
    KlineMismatch,
    KlineResolved,
    TradeGap,
)
from bpx_flows.operators.derivatives import DerivativesView
from bpx_flows.operators.orders import OrderFill, OrderState
from bpx_flows.operators.positions import MarginAlert, PositionView
from bpx_flows.operators.rfqs import RfqOutcome

__all__ = ["describe", "kind_of"]


def kind_of(record: Any) -> str:
    """What the record is, for counting: ``Trade``, ``OrderUpdate.orderFill``..."""
    if isinstance(record, BookIntegrity):
        return f"BookIntegrity.{record.kind.value}"
    if isinstance(record, BurstAlert):
        return f"BurstAlert.{record.phase.value}"
    if isinstance(record, OrderState):
        return f"OrderState.{record.status.value}"
    if isinstance(record, RfqOutcome):
        return f"RfqOutcome.{record.role.value}.{record.end.value}"
    if isinstance(record, Frame):
        data = record.data
        if isinstance(data, OrderUpdate | RfqUpdate):
            return f"{type(data).__name__}.{data.e.value}"
        if isinstance(data, PositionUpdate):
            return f"PositionUpdate.{data.e.value if data.e else 'snapshot'}"
        return type(data).__name__
    return type(record).__name__


def describe(record: Any) -> str:
    """One line saying what happened, with the numbers that matter."""
    if isinstance(record, BookStats):
        band = record.bands[0] if record.bands else None
        depth = f" ±{band.bps}bps {band.bid_base}/{band.ask_base}" if band else ""
        return (
            f"{record.stream:<28} book      {record.best_bid} | {record.best_ask} "
            f"spread {_bps(record.spread_bps)} imb {_fixed(record.imbalance)}{depth} "
            f"levels {record.bid_levels}/{record.ask_levels} id={record.update_id}"
        )
    if isinstance(record, BookIntegrity):
        return f"{record.stream:<28} INTEGRITY {record.kind.value}: {record.detail}"
    if isinstance(record, DerivativesView):
        return _describe_view(record)
    if isinstance(record, Candle):
        tag = " (filled)" if record.filled else " (partial)" if record.partial else ""
        return (
            f"{record.symbol:<20} candle {record.interval.value:<5} "
            f"{format_kline_time(record.start_us)}Z o={record.open} h={record.high} "
            f"l={record.low} c={record.close} v={record.volume} n={record.trades}{tag}"
        )
    if isinstance(record, HistoricalCandle):
        return (
            f"{record.symbol:<20} candle {record.interval.value:<5} "
            f"{format_kline_time(record.start_us)}Z o={record.open} h={record.high} "
            f"l={record.low} c={record.close} v={record.volume} n={record.trades} "
            "(history)"
        )
    if isinstance(record, TradeGap):
        return (
            f"{record.symbol:<28} TRADE GAP ids {record.first_missing}.."
            f"{record.last_missing} ({record.count} missing)"
        )
    if isinstance(record, KlineMismatch):
        fields = ", ".join(
            f"{name} ours {a} theirs {b}"
            for name, a, b in zip(
                record.fields, record.ours, record.theirs, strict=True
            )
        )
        again = f" (revision {record.revision})" if record.revision else ""
        return (
            f"{record.symbol:<28} KLINE MISMATCH {record.interval.value}{again}: "
            f"{fields}"
        )
    if isinstance(record, KlineResolved):
        return (
            f"{record.symbol:<28} KLINE RESOLVED {record.interval.value} "
            f"{format_kline_time(record.start_us)}Z by revision {record.revision}"
        )
    if isinstance(record, LiquidationStats):
        window = record.windows[0] if record.windows else None
        recent = (
            f" {window.window_s}s: {window.count} / {window.notional:.0f}"
            if window
            else ""
        )
        return (
            f"{record.symbol:<28} liquidated {record.side.value} {record.quantity} @ "
            f"{record.price} = {record.notional:.2f}{recent}"
        )
    if isinstance(record, BurstAlert):
        return (
            f"{record.symbol:<28} BURST {record.phase.value.upper()} "
            f"{record.side.value} {record.severity.value}: "
            f"{record.count} liquidations, "
            f"{record.total_notional:.0f} notional (threshold {record.threshold:.0f})"
        )
    account = _describe_account(record)
    if account is not None:
        return account
    if isinstance(record, BookSnapshot):
        return (
            f"{record.stream:<28} snapshot  id={record.lastUpdateId} "
            f"{len(record.bids)} bids / {len(record.asks)} asks"
        )
    if isinstance(record, Resync):
        return (
            f"{record.stream:<28} RESYNC    {record.reason.value} "
            f"expected={record.expected} got={record.got}"
        )
    if isinstance(record, BadFrame):
        stream = printable(record.stream or "?")
        detail = printable(record.detail)
        return f"{stream:<28} BAD FRAME {record.reason.value}: {detail}"
    if isinstance(record, ServerError):
        message = printable(record.error.message)
        return f"{'(server)':<28} ERROR     {record.error.code} {message}"
    if isinstance(record, Trade):  # a late trade, out of its frame
        return f"{record.s:<28} LATE {_describe_data(record)}"
    if isinstance(record, Frame):
        return f"{printable(record.stream):<28} {_describe_data(record.data)}"
    return printable(repr(record))  # a kind without a line of its own yet


def _describe_data(data: Any) -> str:
    match data:
        case Trade():
            side = "ask" if data.m else "bid"  # the taker's order: m = buyer made
            return f"trade     {side} {data.q} @ {data.p} (t={data.t})"
        case Depth():
            return (
                f"depth     U={data.U} u={data.u} {len(data.b)} bids {len(data.a)} asks"
            )
        case BookTicker():
            return f"top       {data.b} x {data.B} | {data.a} x {data.A} (u={data.u})"
        case Kline():
            state = "closed" if data.X else "open  "
            prices = f"o={data.o} h={data.h} l={data.l} c={data.c}"
            return f"kline     {state} {data.t} {prices}"
        case Ticker():
            return f"ticker    last={data.c} 24h vol={data.v} trades={data.n}"
        case MarkPrice():
            return f"mark      {data.p} index={data.i} funding={data.f}"
        case OpenInterest():
            return f"open int  {data.o}"
        case Liquidation():
            return f"LIQUIDATE {data.S.value.lower()} {data.q} @ {data.p}"
        case OrderUpdate():
            what = f"{data.S.value.lower()} {data.q} @ {data.p}"
            return f"order     {data.e.value} {what} [{data.X}]"
        case PositionUpdate():
            kind = data.e.value if data.e else "snapshot"
            return f"position  {kind} q={data.q} entry={data.B} uPnL={data.P}"
        case RfqUpdate():
            what = f"R={data.R} {data.S.value.lower()} q={data.q} p={data.p}"
            return f"rfq       {data.e.value} {what}"
    return type(data).__name__


def _bps(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}bps"


def _fixed(value: Any) -> str:
    return "-" if value is None else f"{value:+.3f}"


def _describe_view(view: DerivativesView) -> str:
    stale = " STALE mark" if view.mark_stale else ""
    stale += " STALE oi" if view.oi_stale else ""
    change = view.oi_changes[0].change if view.oi_changes else None
    return (
        f"{view.symbol:<28} mark {_or_dash(view.mark)} index {_or_dash(view.index)} "
        f"premium {_bps(view.premium_bps)} funding {_or_dash(view.funding_rate)} "
        f"OI {_or_dash(view.open_interest)} ({_or_dash(view.oi_notional)} quote) "
        f"1m {_or_dash(change)}{stale}"
    )


def _or_dash(value: Any) -> str:
    return "-" if value is None else str(value)


def _describe_account(record: Any) -> str | None:
    match record:
        case OrderState():
            price = f" @ {record.price}" if record.price is not None else ""
            return (
                f"{record.symbol:<28} order {record.order_id} {record.status.value} "
                f"{record.side.value} {record.quantity}{price} "
                f"filled {record.executed} ({record.origin}, {record.open_orders} open)"
            )
        case OrderFill():
            slip = (
                ""
                if record.slippage_bps is None
                else f" slip {_bps(record.slippage_bps)}"
            )
            role = {True: "maker", False: "taker", None: "?"}[record.maker]
            return (
                f"{record.symbol:<28} FILL {record.side.value} {record.quantity} @ "
                f"{record.price} fee {record.fee} {record.fee_asset} {role}{slip}"
            )
        case PositionView():
            liq = (
                ""
                if record.liquidation_price is None
                else f" liq {record.liquidation_price:.4f} "
                f"({_bps(record.distance_to_liquidation_bps)} away)"
            )
            use = (
                ""
                if record.margin_use is None
                else f" margin use {record.margin_use:.3f}"
            )
            return (
                f"{record.symbol:<28} position {record.side.value} {record.quantity} "
                f"entry {record.entry_price} mark {record.mark_price} "
                f"uPnL {record.unrealized_pnl:.4f}{liq}{use}"
            )
        case MarginAlert():
            away = _bps(record.distance_to_liquidation_bps)
            return (
                f"{record.symbol:<28} MARGIN USE {record.margin_use:.3f} crossed "
                f"{record.level} (liquidation {away} away)"
            )
        case AutoCloseAlert():
            return (
                f"{record.symbol:<28} AUTO-CLOSE by the exchange ({record.origin}): "
                f"order {record.order_id} {record.side.value} {record.quantity}"
            )
        case RfqOutcome():
            fill = (
                ""
                if record.time_to_fill_us is None
                else f" in {record.time_to_fill_us / 1000:.1f} ms"
            )
            return (
                f"{record.symbol:<28} rfq {record.rfq_id} {record.role.value} "
                f"{record.end.value}{fill} @ {record.price} "
                f"(fill ratio {record.fill_ratio:.2f})"
            )
    return None
