"""The perp position of one symbol, as a pure step: events and marks in, views out.

The position comes from ``account.positionUpdate``: the rows sent on subscribe (no
``e``) and the opened/adjusted/closed events. Between events the mark price of the
``markPrice`` stream (when subscribed) revalues it. An event older (engine time ``T``)
than the one applied is ignored; the same event twice is ignored.

Liquidation distance uses the position's own margin fractions, as for an isolated
position with its initial margin posted: equity ``|q|·entry·f + q·(mark - entry)``
meets the maintenance requirement ``|q|·mark·m`` at

    long:  mark = entry·(1 - f) / (1 - m)        short: mark = entry·(1 + f) / (1 + m)

Cross-margin accounts hold more collateral than that, so this is the conservative
(nearest) threshold; the exchange stopped publishing its own estimate (``l`` is "0").
Margin use is maintenance requirement / equity. No I/O, no clock, no Bytewax.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal

import msgspec

from ..connectors.backpack.wire import PositionUpdate
from .numbers import bps, price_like, ratio, to_decimal

__all__ = [
    "MarginAlert",
    "PositionState",
    "PositionView",
    "apply_mark",
    "apply_position_event",
]

_BPS = Decimal(10_000)
_ONE = Decimal(1)


class PositionSide(enum.StrEnum):
    """Which way the position points."""

    LONG = "long"
    SHORT = "short"
    FLAT = "flat"


class PositionView(msgspec.Struct, frozen=True, kw_only=True):
    """A position valued at a mark price. ``None`` where a value does not exist.

    ``exposure`` is |quantity| x mark (quote units); ``unrealized_pnl`` is
    quantity x (mark - entry); ``exchange_unrealized_pnl`` is the exchange's own ``P``
    from the last event. ``liquidation_price`` and ``distance_to_liquidation_bps``
    (how far the mark can move against the position, bps of the mark) follow the
    module docstring; ``margin_use`` is maintenance requirement / equity (1 or more
    means at or past liquidation). ``source`` is ``snapshot``, the event type, or
    ``mark``.
    """

    symbol: str
    position_id: int
    side: PositionSide
    quantity: Decimal
    entry_price: Decimal
    break_even_price: Decimal
    mark_price: Decimal
    exposure: Decimal
    unrealized_pnl: Decimal
    exchange_unrealized_pnl: Decimal | None
    realized_pnl: Decimal | None
    initial_margin_fraction: Decimal
    maintenance_margin_fraction: Decimal
    liquidation_price: Decimal | None
    distance_to_liquidation_bps: Decimal | None
    margin_use: Decimal | None
    source: str
    engine_us: int
    recv_us: int


class MarginAlert(msgspec.Struct, frozen=True, kw_only=True):
    """Margin use crossed a configured level upwards (``level``), once per crossing."""

    symbol: str
    level: Decimal
    margin_use: Decimal
    distance_to_liquidation_bps: Decimal | None
    mark_price: Decimal
    quantity: Decimal
    engine_us: int
    recv_us: int


@dataclass(slots=True)
class PositionState:
    """The open position of one symbol (``None`` when flat) and alert state."""

    position: PositionUpdate | None = None
    last_us: int = -1
    mark: Decimal | None = None
    mark_us: int = -1
    alerted: set[Decimal] = field(default_factory=set)  # levels alerted, not re-armed
    duplicates: int = 0
    late: int = 0


def apply_position_event(
    state: PositionState,
    update: PositionUpdate,
    recv_us: int,
    levels: tuple[Decimal, ...],
    rearm_below: Decimal,
) -> list[PositionView | MarginAlert]:
    """Apply one position event or snapshot row; returns the view and any alert."""
    if state.last_us > update.T:
        state.late += 1
        return []
    if state.last_us == update.T and update == state.position:
        state.duplicates += 1
        return []
    state.last_us = update.T
    if state.mark_us <= update.T:
        state.mark, state.mark_us = update.M, update.T
    closed = update.q == 0
    state.position = None if closed else update
    source = update.e.value if update.e is not None else "snapshot"
    view = _view(update, state.mark or update.M, source, update.T, recv_us)
    out: list[PositionView | MarginAlert] = [view]
    if closed:
        state.alerted.clear()
    else:
        out += _alerts(state, view, levels, rearm_below)
    return out


def apply_mark(
    state: PositionState,
    mark: Decimal,
    engine_us: int,
    recv_us: int,
    levels: tuple[Decimal, ...],
    rearm_below: Decimal,
) -> list[PositionView | MarginAlert]:
    """Revalue the open position at a new mark price (nothing if flat or stale)."""
    if engine_us < state.mark_us:
        return []
    state.mark, state.mark_us = mark, engine_us
    if state.position is None:
        return []
    view = _view(state.position, mark, "mark", engine_us, recv_us)
    return [view, *_alerts(state, view, levels, rearm_below)]


def _view(
    position: PositionUpdate,
    mark: Decimal,
    source: str,
    engine_us: int,
    recv_us: int,
) -> PositionView:
    qty, entry = position.q, position.B
    imf, mmf = position.f, position.m
    side = (
        PositionSide.LONG
        if qty > 0
        else PositionSide.SHORT
        if qty < 0
        else PositionSide.FLAT
    )
    liquidation = distance = use = None
    size = abs(qty)
    if qty and entry > 0 and mark > 0:
        # Distances from the exact threshold; both rounded only for the record.
        if qty > 0 and mmf < 1:
            exact = entry * (_ONE - imf) / (_ONE - mmf)
            liquidation = price_like(exact, mark)
            distance = bps((mark - exact) / mark * _BPS)
        elif qty < 0:
            exact = entry * (_ONE + imf) / (_ONE + mmf)
            liquidation = price_like(exact, mark)
            distance = bps((exact - mark) / mark * _BPS)
        equity = size * entry * imf + qty * (mark - entry)
        required = size * mark * mmf
        use = ratio(required / equity) if equity > 0 else None
    return PositionView(
        symbol=position.s,
        position_id=position.i,
        side=side,
        quantity=qty,
        entry_price=entry,
        break_even_price=position.b,
        mark_price=mark,
        exposure=size * mark,
        unrealized_pnl=qty * (mark - entry),
        exchange_unrealized_pnl=to_decimal(position.P),
        realized_pnl=to_decimal(position.p),
        initial_margin_fraction=imf,
        maintenance_margin_fraction=mmf,
        liquidation_price=liquidation,
        distance_to_liquidation_bps=distance,
        margin_use=use if use is not None or not qty else Decimal("Infinity"),
        source=source,
        engine_us=engine_us,
        recv_us=recv_us,
    )


def _alerts(
    state: PositionState,
    view: PositionView,
    levels: tuple[Decimal, ...],
    rearm_below: Decimal,
) -> list[MarginAlert]:
    """One alert per level crossed upwards; each level re-arms on its own.

    A level that alerted stays quiet until margin use falls below level x
    ``rearm_below``; a jump across several levels alerts each, lowest first.
    """
    use = view.margin_use
    if use is None:
        return []
    alerted = state.alerted
    for level in [level for level in alerted if use < level * rearm_below]:
        alerted.discard(level)
    out: list[MarginAlert] = []
    for level in sorted(set(levels)):
        if use >= level and level not in alerted:
            alerted.add(level)
            out.append(
                MarginAlert(
                    symbol=view.symbol,
                    level=level,
                    margin_use=use,
                    distance_to_liquidation_bps=view.distance_to_liquidation_bps,
                    mark_price=view.mark_price,
                    quantity=view.quantity,
                    engine_us=view.engine_us,
                    recv_us=view.recv_us,
                )
            )
    return out
