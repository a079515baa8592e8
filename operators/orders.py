"""Order lifecycles of one symbol, as a pure step: events in, states and fills out.

Every order is keyed by its id. Events can arrive twice (a reconnect, a replayed
recording) or late (fills race the acceptance on the exchange's side), so:

- a fill counts once per trade id, whenever it arrives, and the executed quantity only
  grows (the largest cumulative ``z`` seen wins);
- a terminal status (filled, cancelled, expired, trigger failed) is final: a late
  ``orderAccepted`` or ``orderModified`` does not reopen the order;
- among open states, an event older (engine time ``T``) than the last one applied does
  not roll the status back.

Closed orders are remembered (bounded, oldest forgotten first) so late duplicates are
still recognised. No I/O, no clock, no Bytewax.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal

import msgspec

from ..connectors.backpack.wire import OrderEventType, OrderUpdate, Side
from .numbers import bps, price_like, to_decimal
from .sides import BookSide

__all__ = [
    "AUTO_CLOSE_ORIGINS",
    "OrderFill",
    "OrderLifecycle",
    "OrderState",
    "OrdersState",
    "apply_order_event",
]

_BPS = Decimal(10_000)
_CLOSED_KEPT = 10_000

AUTO_CLOSE_ORIGINS = frozenset(
    {"LIQUIDATION_AUTOCLOSE", "ADL_AUTOCLOSE", "SETTLEMENT_AUTOCLOSE"}
)
"""Order origins that mean the exchange closed (part of) a position for the user."""


class OrderLifecycle(enum.StrEnum):
    """Where an order is in its life; the last four are final."""

    ACCEPTED = "accepted"
    MODIFIED = "modified"
    TRIGGER_PLACED = "trigger_placed"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    TRIGGER_FAILED = "trigger_failed"

    @property
    def is_final(self) -> bool:
        """No later event changes a final status."""
        return self in _FINAL


_FINAL = frozenset(
    {
        OrderLifecycle.FILLED,
        OrderLifecycle.CANCELLED,
        OrderLifecycle.EXPIRED,
        OrderLifecycle.TRIGGER_FAILED,
    }
)


class OrderState(msgspec.Struct, frozen=True, kw_only=True):
    """An order after an event changed it. Quantities exact; ``None`` when not sent.

    ``event`` is the wire event that produced this state; ``open_orders`` counts the
    symbol's open orders after it; ``avg_price`` is executed quote / executed base.
    """

    symbol: str
    order_id: str
    client_id: int | None
    side: BookSide
    order_type: str
    status: OrderLifecycle
    event: str
    origin: str
    quantity: Decimal | None
    price: Decimal | None
    trigger_price: Decimal | None
    executed: Decimal
    executed_quote: Decimal
    avg_price: Decimal | None
    expiry_reason: str | None
    open_orders: int
    engine_us: int
    recv_us: int


class OrderFill(msgspec.Struct, frozen=True, kw_only=True):
    """One fill of one of our orders, counted once per trade id.

    ``slippage_bps`` is how much worse than the mid the fill was (positive = paid more
    when buying / received less when selling), against the last mid at or before the
    fill's engine time; ``None`` without a mid. ``mid_age_us`` is fill time - mid time.
    """

    symbol: str
    order_id: str
    trade_id: int | None
    side: BookSide
    price: Decimal
    quantity: Decimal
    quote: Decimal
    fee: Decimal
    fee_asset: str | None
    maker: bool | None
    origin: str
    mid: Decimal | None
    slippage_bps: Decimal | None
    mid_age_us: int | None
    engine_us: int
    recv_us: int


@dataclass(slots=True)
class _Order:
    update: OrderUpdate  # the last event applied to the status
    status: OrderLifecycle
    executed: Decimal
    executed_quote: Decimal
    last_us: int
    fills: set[int] = field(default_factory=set)  # trade ids already counted
    events: set[tuple[str, int]] = field(default_factory=set)  # (e, E) seen


@dataclass
class OrdersState:
    """Open orders of one symbol and a bounded memory of closed ones."""

    open: dict[str, _Order] = field(default_factory=dict)
    closed: OrderedDict[str, _Order] = field(default_factory=OrderedDict)
    duplicates: int = 0
    late: int = 0


_FROM_EVENT = {
    OrderEventType.ACCEPTED: OrderLifecycle.ACCEPTED,
    OrderEventType.MODIFIED: OrderLifecycle.MODIFIED,
    OrderEventType.TRIGGER_PLACED: OrderLifecycle.TRIGGER_PLACED,
    OrderEventType.CANCELLED: OrderLifecycle.CANCELLED,
    OrderEventType.EXPIRED: OrderLifecycle.EXPIRED,
    OrderEventType.TRIGGER_FAILED: OrderLifecycle.TRIGGER_FAILED,
}


def apply_order_event(
    state: OrdersState,
    update: OrderUpdate,
    recv_us: int,
    mid: tuple[int, Decimal] | None,
) -> tuple[OrderState | None, OrderFill | None]:
    """Apply one order event; returns the new state (if it changed) and a new fill.

    Args:
        state: the symbol's orders, changed in place.
        update: the wire event.
        recv_us: when it was received.
        mid: ``(engine_us, mid)`` of the last mid at or before the event, if known.
    """
    order = state.open.get(update.i)
    if order is None and update.i in state.closed:
        order = state.closed[update.i]
    is_fill = update.e is OrderEventType.FILL
    if order is not None and _already_seen(order, update, is_fill):
        state.duplicates += 1
        return None, None
    executed = to_decimal(update.z) or Decimal(0)
    executed_quote = to_decimal(update.Z) or Decimal(0)
    if order is None:
        order = _Order(update, _status(update), executed, executed_quote, update.T)
        state.open[update.i] = order
        changed = True
    else:
        changed = _merge(state, order, update, executed, executed_quote)
    _remember(order, update, is_fill)
    fill = _fill(update, recv_us, mid) if is_fill else None
    if order.status.is_final and update.i in state.open:
        del state.open[update.i]
        state.closed[update.i] = order
        if len(state.closed) > _CLOSED_KEPT:
            state.closed.popitem(last=False)
    if not changed:
        return None, fill
    return _state_record(state, order, update, recv_us), fill


def _already_seen(order: _Order, update: OrderUpdate, is_fill: bool) -> bool:
    if is_fill and update.t is not None:
        return update.t in order.fills
    return (update.e.value, update.E) in order.events


def _remember(order: _Order, update: OrderUpdate, is_fill: bool) -> None:
    if is_fill and update.t is not None:
        order.fills.add(update.t)
    else:
        order.events.add((update.e.value, update.E))


def _status(update: OrderUpdate) -> OrderLifecycle:
    if update.e is OrderEventType.FILL:
        if update.X == "Filled" or _fully_executed(update):
            return OrderLifecycle.FILLED
        return OrderLifecycle.PARTIALLY_FILLED
    return _FROM_EVENT[update.e]


def _fully_executed(update: OrderUpdate) -> bool:
    quantity, executed = to_decimal(update.q), to_decimal(update.z)
    return quantity is not None and executed is not None and executed >= quantity > 0


def _merge(
    state: OrdersState,
    order: _Order,
    update: OrderUpdate,
    executed: Decimal,
    executed_quote: Decimal,
) -> bool:
    """Fold a later (or late) event into a known order; True if anything changed."""
    changed = False
    if executed > order.executed:
        order.executed, order.executed_quote = executed, executed_quote
        changed = True
    status = _status(update)
    if order.status.is_final:
        state.late += 1  # e.g. a fill reported after the cancel: counted, not reopened
        return changed
    if order.last_us > update.T and not status.is_final:
        state.late += 1
        return changed
    if status is OrderLifecycle.PARTIALLY_FILLED and order.status in (
        OrderLifecycle.TRIGGER_PLACED,
        OrderLifecycle.MODIFIED,
    ):
        changed = True  # a triggered or modified order started filling
    if status != order.status or order.last_us < update.T:
        order.status = status
        order.update = update
        order.last_us = max(order.last_us, update.T)
        changed = True
    return changed


def _last_price(order: _Order) -> Decimal | None:
    """An exchange price of the order's market (its last fill's, else its own)."""
    update = order.update
    return to_decimal(update.L) or to_decimal(update.p)


def _state_record(
    state: OrdersState, order: _Order, update: OrderUpdate, recv_us: int
) -> OrderState:
    last = order.update
    avg = (
        price_like(order.executed_quote / order.executed, _last_price(order))
        if order.executed
        else None
    )
    return OrderState(
        symbol=last.s,
        order_id=last.i,
        client_id=last.c,
        side=BookSide.of(last.S),
        order_type=last.o,
        status=order.status,
        event=update.e.value,
        origin=last.O or "USER",
        quantity=to_decimal(last.q),
        price=to_decimal(last.p),
        trigger_price=to_decimal(last.P),
        executed=order.executed,
        executed_quote=order.executed_quote,
        avg_price=avg,
        expiry_reason=last.R,
        open_orders=len(state.open),
        engine_us=update.T,
        recv_us=recv_us,
    )


def _fill(
    update: OrderUpdate, recv_us: int, mid: tuple[int, Decimal] | None
) -> OrderFill | None:
    price, quantity = to_decimal(update.L), to_decimal(update.l)
    if price is None or quantity is None:
        return None  # a fill without price or quantity cannot be reported exactly
    slippage = mid_age = mid_price = None
    if mid is not None and mid[1] > 0:
        mid_price = mid[1]
        worse = price - mid_price if update.S is Side.BID else mid_price - price
        slippage = bps(worse / mid_price * _BPS)
        mid_age = update.T - mid[0]
    return OrderFill(
        symbol=update.s,
        order_id=update.i,
        trade_id=update.t,
        side=BookSide.of(update.S),
        price=price,
        quantity=quantity,
        quote=price * quantity,
        fee=to_decimal(update.n) or Decimal(0),
        fee_asset=update.N,
        maker=update.m,
        origin=update.O or "USER",
        mid=mid_price,
        slippage_bps=slippage,
        mid_age_us=mid_age,
        engine_us=update.T,
        recv_us=recv_us,
    )
