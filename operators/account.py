"""Our account on one symbol, as a pure step: private events and mids in, views out.

``step(state, record, config) -> (state, outputs)`` takes one symbol's records:

- ``account.orderUpdate`` frames -> ``OrderState`` (when an order changed),
  ``OrderFill`` (once per trade id), ``AutoCloseAlert`` (once per order the exchange
  placed for us);
- ``account.positionUpdate`` frames and ``markPrice`` frames -> ``PositionView``,
  ``MarginAlert``;
- ``account.rfqUpdate`` frames -> ``RfqOutcome``;
- mids for fill slippage: ``BookStats`` of the book flow, or ``bookTicker`` frames.

No I/O, no clock, no Bytewax; the rules for duplicates and late events live in
``operators.orders``, ``operators.positions`` and ``operators.rfqs``.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec

from bpx_flows.connectors.backpack.wire import (
    BookTicker,
    Frame,
    MarkPrice,
    OrderUpdate,
    PositionUpdate,
    RfqUpdate,
    Side,
)
from bpx_flows.operators.book_state import BookStats
from bpx_flows.operators.numbers import to_decimal
from bpx_flows.operators.orders import (
    AUTO_CLOSE_ORIGINS,
    OrderFill,
    OrdersState,
    OrderState,
    apply_order_event,
)
from bpx_flows.operators.positions import (
    MarginAlert,
    PositionState,
    PositionView,
    apply_mark,
    apply_position_event,
)
from bpx_flows.operators.rfqs import RfqOutcome, RfqState, apply_rfq_event

__all__ = [
    "AccountConfig",
    "AccountOutput",
    "AutoCloseAlert",
    "SymbolAccount",
    "account_symbol",
    "is_alert",
    "step",
]

_ALERTED_KEPT = 1_000


@dataclass(frozen=True, slots=True)
class AccountConfig:
    """Alert levels and memory bounds of the account operator.

    Attributes:
        margin_alert_levels: margin use (maintenance / equity) levels that alert when
            crossed upwards; one alert per crossing.
        rearm_below: a level re-arms once margin use falls below level x this.
        mids_kept: mids remembered per symbol, to price a fill at its own time.
    """

    # A fresh position at the highest leverage already uses m/f = 0.0125/0.02 = 0.625.
    margin_alert_levels: tuple[Decimal, ...] = (Decimal("0.8"), Decimal("0.9"))
    rearm_below: Decimal = Decimal("0.9")
    mids_kept: int = 256

    def __post_init__(self) -> None:
        """Reject levels and bounds that cannot work."""
        if any(not level > 0 for level in self.margin_alert_levels):
            shown = ", ".join(str(level) for level in self.margin_alert_levels)
            msg = f"margin alert levels must be > 0, got {shown}"
            raise ValueError(msg)
        if not 0 < self.rearm_below <= 1:
            msg = f"rearm_below must be in (0, 1], got {self.rearm_below}"
            raise ValueError(msg)
        if self.mids_kept < 1:
            msg = f"mids_kept must be >= 1, got {self.mids_kept}"
            raise ValueError(msg)


class AutoCloseAlert(msgspec.Struct, frozen=True, kw_only=True):
    """The exchange placed an order for us (liquidation, ADL, settlement auto-close)."""

    symbol: str
    order_id: str
    origin: str
    side: Side
    quantity: Decimal | None
    engine_us: int
    recv_us: int


AccountOutput = (
    OrderState | OrderFill | AutoCloseAlert | PositionView | MarginAlert | RfqOutcome
)


def is_alert(record: Any) -> bool:
    """Alerts (auto-close, margin use) as opposed to state and fill records."""
    return isinstance(record, AutoCloseAlert | MarginAlert)


@dataclass
class SymbolAccount:
    """Orders, position, RFQs and recent mids of one symbol."""

    orders: OrdersState = field(default_factory=OrdersState)
    position: PositionState = field(default_factory=PositionState)
    rfqs: RfqState = field(default_factory=RfqState)
    mid_times: list[int] = field(default_factory=list)  # engine µs, ascending
    mids: list[Decimal] = field(default_factory=list)
    auto_closed: OrderedDict[str, None] = field(default_factory=OrderedDict)


def account_symbol(record: Any) -> str | None:
    """The symbol a record belongs to, if the account operator uses it."""
    if isinstance(record, Frame):
        data = record.data
        if type(data) in _USED:
            return str(data.s)
        return None
    if isinstance(record, BookStats):
        return record.symbol
    return None


_USED = (OrderUpdate, PositionUpdate, RfqUpdate, MarkPrice, BookTicker)


def step(
    state: SymbolAccount | None, record: Any, config: AccountConfig
) -> tuple[SymbolAccount, list[AccountOutput]]:
    """Apply one record of a symbol; returns the new state and what to emit."""
    state = state or SymbolAccount()
    out: list[AccountOutput] = []
    if isinstance(record, BookStats):
        if record.mid is not None:
            _remember_mid(state, record.engine_us, record.mid, config)
        return state, out
    if not isinstance(record, Frame):
        return state, out
    data, recv_us = record.data, record.recv_us
    if type(data) is OrderUpdate:
        _on_order(state, data, recv_us, out)
    elif type(data) is PositionUpdate:
        out += apply_position_event(
            state.position,
            data,
            recv_us,
            config.margin_alert_levels,
            config.rearm_below,
        )
    elif type(data) is RfqUpdate:
        out += apply_rfq_event(state.rfqs, data, recv_us)
    elif type(data) is MarkPrice:
        mark = to_decimal(data.p)
        if mark is not None and mark > 0:
            out += apply_mark(
                state.position,
                mark,
                data.T,
                recv_us,
                config.margin_alert_levels,
                config.rearm_below,
            )
    elif type(data) is BookTicker:
        bid, ask = to_decimal(data.b), to_decimal(data.a)
        if bid is not None and ask is not None:
            _remember_mid(state, data.T, (bid + ask) / 2, config)
    return state, out


def _on_order(
    state: SymbolAccount, update: OrderUpdate, recv_us: int, out: list[AccountOutput]
) -> None:
    order, fill = apply_order_event(
        state.orders, update, recv_us, _mid_at(state, update.T)
    )
    if order is not None:
        out.append(order)
    if fill is not None:
        out.append(fill)
    origin = update.O or "USER"
    if origin in AUTO_CLOSE_ORIGINS and update.i not in state.auto_closed:
        state.auto_closed[update.i] = None
        if len(state.auto_closed) > _ALERTED_KEPT:
            state.auto_closed.popitem(last=False)
        out.append(
            AutoCloseAlert(
                symbol=update.s,
                order_id=update.i,
                origin=origin,
                side=update.S,
                quantity=to_decimal(update.q),
                engine_us=update.T,
                recv_us=recv_us,
            )
        )


def _remember_mid(
    state: SymbolAccount, engine_us: int, mid: Decimal, config: AccountConfig
) -> None:
    times = state.mid_times
    if times and engine_us < times[-1]:
        at = bisect.bisect_right(times, engine_us)  # a late mid: keep time order
        times.insert(at, engine_us)
        state.mids.insert(at, mid)
    else:
        times.append(engine_us)
        state.mids.append(mid)
    if len(times) > config.mids_kept:
        del times[0]
        del state.mids[0]


def _mid_at(state: SymbolAccount, engine_us: int) -> tuple[int, Decimal] | None:
    """The last mid at or before ``engine_us`` (else the earliest one known)."""
    times = state.mid_times
    if not times:
        return None
    at = max(bisect.bisect_right(times, engine_us) - 1, 0)
    return times[at], state.mids[at]
