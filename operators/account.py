"""Our account on one symbol, as a pure step: private events and mids in, views out.

``step(state, record, config) -> (state, outputs)`` takes one symbol's records:

- ``account.orderUpdate`` frames -> ``OrderState`` (when an order changed),
  ``OrderFill`` (once per trade id), ``AutoCloseAlert`` (once per order the exchange
  placed for us);
- ``account.positionUpdate`` frames and ``markPrice`` frames -> ``PositionView``,
  ``MarginAlert``;
- ``account.rfqUpdate`` frames and the source's ``Watermark`` -> ``RfqOutcome``: every
  RFQ of the account lives under one key (``RFQ_KEY``), by RFQ symbol, so the
  watermark of the partition that reads them expires RFQs on time on quiet markets;
- mids for fill slippage: ``step_with_book`` keeps the symbol's order book in the same
  state and prices each fill against the book as it stood when the fill arrived (the
  book's records and the account's come in one ordered stream per symbol, so the mid
  a fill gets never depends on scheduling). ``BookStats`` records fed to ``step`` also
  give mids, in whatever order they arrive.

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

from ..connectors.backpack.booksync import BookSnapshot, Resync
from ..connectors.backpack.wire import (
    Depth,
    Frame,
    MarkPrice,
    OrderUpdate,
    PositionUpdate,
    RfqUpdate,
)
from ..connectors.clock import Watermark
from ..connectors.errors import ConfigError
from . import book_state
from .book_state import BookConfig, BookStats, SymbolBooks
from .numbers import to_decimal
from .orders import (
    AUTO_CLOSE_ORIGINS,
    OrderFill,
    OrdersState,
    OrderState,
    apply_order_event,
)
from .positions import (
    MarginAlert,
    PositionState,
    PositionView,
    apply_mark,
    apply_position_event,
)
from .rfqs import (
    RfqOutcome,
    RfqState,
    apply_rfq_event,
    expire_rfqs,
)
from .sides import BookSide

__all__ = [
    "RFQ_KEY",
    "AccountConfig",
    "AccountOutput",
    "AccountWithBook",
    "AutoCloseAlert",
    "SymbolAccount",
    "account_symbol",
    "is_alert",
    "step",
    "step_with_book",
]

_ALERTED_KEPT = 1_000
RFQ_KEY = "account.rfqUpdate"  # the key of the account's RFQs (never a market symbol)


@dataclass(frozen=True, slots=True)
class AccountConfig:
    """Alert levels and memory bounds of the account operator.

    Attributes:
        margin_alert_levels: margin use (maintenance / equity) levels that alert when
            crossed upwards; one alert per crossing.
        rearm_below: a level re-arms once margin use falls below level x this.
        mids_kept: mids remembered per symbol, to price a fill at its own time.
        rfq_expiry_grace_us: an RFQ with no end seen expires once the watermark is
            this far past its expiry (an end sent just before it may still arrive).
    """

    # A fresh position at the highest leverage already uses m/f = 0.0125/0.02 = 0.625.
    margin_alert_levels: tuple[Decimal, ...] = (Decimal("0.8"), Decimal("0.9"))
    rearm_below: Decimal = Decimal("0.9")
    mids_kept: int = 256
    rfq_expiry_grace_us: int = 1_000_000

    def __post_init__(self) -> None:
        """Reject levels and bounds that cannot work."""
        if any(not level > 0 for level in self.margin_alert_levels):
            shown = ", ".join(str(level) for level in self.margin_alert_levels)
            msg = f"margin alert levels must be > 0, got {shown}"
            raise ConfigError(msg)
        if not 0 < self.rearm_below <= 1:
            msg = f"rearm_below must be in (0, 1], got {self.rearm_below}"
            raise ConfigError(msg)
        if self.mids_kept < 1:
            msg = f"mids_kept must be >= 1, got {self.mids_kept}"
            raise ConfigError(msg)
        if self.rfq_expiry_grace_us < 0:
            msg = f"rfq_expiry_grace_us must be >= 0, got {self.rfq_expiry_grace_us}"
            raise ConfigError(msg)


class AutoCloseAlert(msgspec.Struct, frozen=True, kw_only=True):
    """The exchange placed an order for us (liquidation, ADL, settlement auto-close)."""

    symbol: str
    order_id: str
    origin: str
    side: BookSide
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
    """Orders, position and recent mids of one symbol (under ``RFQ_KEY``: RFQs)."""

    orders: OrdersState = field(default_factory=OrdersState)
    position: PositionState = field(default_factory=PositionState)
    rfqs: dict[str, RfqState] = field(default_factory=dict)  # by RFQ symbol
    mid_times: list[int] = field(default_factory=list)  # engine µs, ascending
    mids: list[Decimal] = field(default_factory=list)
    auto_closed: OrderedDict[str, None] = field(default_factory=OrderedDict)


def account_symbol(record: Any, with_book: bool = False) -> str | None:
    """The symbol a record belongs to, if the account operator uses it.

    With ``with_book`` the book's records (depth frames, snapshots, resyncs) too.
    """
    if isinstance(record, Frame):
        data = record.data
        kind = type(data)
        if kind is RfqUpdate:
            return RFQ_KEY
        if kind in _USED or (with_book and kind is Depth):
            return str(data.s)
        return None
    if isinstance(record, Watermark):
        return RFQ_KEY
    if isinstance(record, BookStats):
        return record.symbol
    if with_book and isinstance(record, BookSnapshot | Resync):
        return record.symbol
    return None


_USED = (OrderUpdate, PositionUpdate, MarkPrice)


@dataclass
class AccountWithBook:
    """One symbol's account and order book, kept side by side (``step_with_book``)."""

    account: SymbolAccount = field(default_factory=SymbolAccount)
    books: SymbolBooks = field(default_factory=SymbolBooks)


def step_with_book(
    state: AccountWithBook | None,
    record: Any,
    config: AccountConfig,
    book: BookConfig,
) -> tuple[AccountWithBook, list[AccountOutput]]:
    """``step``, with the symbol's book kept from its depth records for the mids.

    Each depth update of a live book records the book's mid at the update's engine
    time; a fill is priced against the last mid at or before its own engine time.
    """
    state = state or AccountWithBook()
    if isinstance(record, Frame) and type(record.data) is Depth:
        state.books, _ = book_state.step(state.books, record, book)
        mid = book_state.live_mid(state.books)
        if mid is not None:
            _remember_mid(state.account, record.data.T, mid, config)
        return state, []
    if isinstance(record, BookSnapshot | Resync):
        state.books, _ = book_state.step(state.books, record, book)
        return state, []
    state.account, out = step(state.account, record, config)
    return state, out


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
    if isinstance(record, Watermark):
        now = record.at_us - config.rfq_expiry_grace_us
        for market in state.rfqs.values():
            out += expire_rfqs(market, now, record.at_us)
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
        if data.s not in state.rfqs:
            state.rfqs[data.s] = RfqState()
        out += apply_rfq_event(state.rfqs[data.s], data, recv_us)
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
                side=BookSide.of(update.S),
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
