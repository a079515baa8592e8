"""The console lines of the account's records: orders, fills, positions, RFQs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bpx_flows.operators.account import AutoCloseAlert
from bpx_flows.operators.orders import OrderFill, OrderState
from bpx_flows.operators.positions import MarginAlert, PositionView
from bpx_flows.operators.rfqs import RfqOutcome
from bpx_flows.presentation.numbers import bps

__all__ = ["ACCOUNT_LINES"]


def _order(record: OrderState) -> str:
    price = f" @ {record.price}" if record.price is not None else ""
    return (
        f"{record.symbol:<28} order {record.order_id} {record.status.value} "
        f"{record.side.value} {record.quantity}{price} "
        f"filled {record.executed} ({record.origin}, {record.open_orders} open)"
    )


def _fill(record: OrderFill) -> str:
    slip = "" if record.slippage_bps is None else f" slip {bps(record.slippage_bps)}"
    role = {True: "maker", False: "taker", None: "?"}[record.maker]
    return (
        f"{record.symbol:<28} FILL {record.side.value} {record.quantity} @ "
        f"{record.price} fee {record.fee} {record.fee_asset} {role}{slip}"
    )


def _position(record: PositionView) -> str:
    liq = (
        ""
        if record.liquidation_price is None
        else f" liq {record.liquidation_price:.4f} "
        f"({bps(record.distance_to_liquidation_bps)} away)"
    )
    use = "" if record.margin_use is None else f" margin use {record.margin_use:.3f}"
    return (
        f"{record.symbol:<28} position {record.side.value} {record.quantity} "
        f"entry {record.entry_price} mark {record.mark_price} "
        f"uPnL {record.unrealized_pnl:.4f}{liq}{use}"
    )


def _margin(record: MarginAlert) -> str:
    away = bps(record.distance_to_liquidation_bps)
    return (
        f"{record.symbol:<28} MARGIN USE {record.margin_use:.3f} crossed "
        f"{record.level} (liquidation {away} away)"
    )


def _auto_close(record: AutoCloseAlert) -> str:
    return (
        f"{record.symbol:<28} AUTO-CLOSE by the exchange ({record.origin}): "
        f"order {record.order_id} {record.side.value} {record.quantity}"
    )


def _rfq(record: RfqOutcome) -> str:
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


ACCOUNT_LINES: dict[type[Any], Callable[[Any], str]] = {
    OrderState: _order,
    OrderFill: _fill,
    PositionView: _position,
    MarginAlert: _margin,
    AutoCloseAlert: _auto_close,
    RfqOutcome: _rfq,
}
