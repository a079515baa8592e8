"""RFQ lifecycles of one RFQ symbol, as a pure step: RFQ events in, outcomes out.

We take part in an RFQ in one of two roles: as **taker** (we asked for quotes: the
requester sees ``rfqAccepted``, ``rfqRefreshed``, ``rfqCandidate``, ``rfqCancelled``) or
as **maker** (we quoted someone's RFQ: ``rfqActive``, ``quoteAccepted``,
``quoteCancelled``); ``rfqFilled`` and ``rfqAcceptedBinding`` reach both. Each RFQ ends
once: filled, cancelled, or expired (its expiry ``W``, in **milliseconds**, passed by
the engine time of a later event with no end seen). A maker quoting again after
``quoteCancelled`` starts a new participation. The outcome carries the time to
fill (first event to fill, engine time) and the running fill ratio of that role.
``expire_rfqs`` ends the RFQs whose expiry a clock (the source's watermark) passed, so
an RFQ expires on time on a quiet market too; an expired outcome's ``engine_us`` is
the expiry itself. No I/O, no clock, no Bytewax.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal

import msgspec

from ..connectors.backpack.wire import RfqEventType as RE, RfqUpdate
from .numbers import ratio, to_decimal
from .sides import BookSide

__all__ = ["RfqOutcome", "RfqRole", "RfqState", "apply_rfq_event", "expire_rfqs"]

_ENDED_KEPT = 10_000

_TAKER_EVENTS = frozenset({RE.ACCEPTED, RE.REFRESHED, RE.CANDIDATE, RE.CANCELLED})
_MAKER_EVENTS = frozenset({RE.ACTIVE, RE.QUOTE_ACCEPTED, RE.QUOTE_CANCELLED})


class RfqRole(enum.StrEnum):
    """Whether we asked for quotes or quoted."""

    TAKER = "taker"
    MAKER = "maker"


class RfqEnd(enum.StrEnum):
    """How an RFQ ended for us."""

    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class RfqOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """An RFQ that ended; ``fill_ratio`` is filled / ended so far for ``role``."""

    symbol: str
    rfq_id: int
    role: RfqRole
    side: BookSide
    quantity: Decimal | None
    quote_quantity: Decimal | None
    quote_id: int | None
    price: Decimal | None
    end: RfqEnd
    time_to_fill_us: int | None
    fills: int
    ended: int
    fill_ratio: Decimal
    engine_us: int
    recv_us: int


@dataclass(slots=True)
class _Rfq:
    role: RfqRole
    first: RfqUpdate
    quote_id: int | None = None
    price: Decimal | None = None
    expires_us: int | None = None


@dataclass
class RfqState:
    """Open RFQs of one symbol, per-role counts, and recently ended ids."""

    open: dict[int, _Rfq] = field(default_factory=dict)
    ended: OrderedDict[int, RfqEnd] = field(default_factory=OrderedDict)
    fills: dict[RfqRole, int] = field(default_factory=dict)
    ends: dict[RfqRole, int] = field(default_factory=dict)
    late: int = 0


def apply_rfq_event(
    state: RfqState, update: RfqUpdate, recv_us: int
) -> list[RfqOutcome]:
    """Apply one RFQ event; returns the RFQs that ended (expired ones included)."""
    out = _expire(state, update.T, recv_us)
    if update.R in state.ended and update.e is RE.QUOTE_ACCEPTED:
        del state.ended[update.R]  # we quoted again after our quote was cancelled
    if update.R in state.ended:
        state.late += 1  # after its end (e.g. quoteCancelled following rfqFilled)
        return out
    rfq = state.open.get(update.R)
    if rfq is None:
        role = RfqRole.MAKER if update.e in _MAKER_EVENTS else RfqRole.TAKER
        rfq = state.open[update.R] = _Rfq(role, update)
    elif update.e in _MAKER_EVENTS and rfq.role is RfqRole.TAKER:
        rfq.role = RfqRole.MAKER  # first seen through a shared event (rfqFilled)
    if update.W is not None:
        rfq.expires_us = update.W * 1_000
    if update.u is not None:
        rfq.quote_id = update.u
    if update.p is not None:
        rfq.price = to_decimal(update.p)
    end = _end_of(update)
    if end is not None:
        out.append(_finish(state, update.R, rfq, end, update.T, recv_us))
    return out


def _end_of(update: RfqUpdate) -> RfqEnd | None:
    if update.e is RE.FILLED:
        return RfqEnd.FILLED
    if update.e in (RE.CANCELLED, RE.QUOTE_CANCELLED):
        return RfqEnd.EXPIRED if update.X == "Expired" else RfqEnd.CANCELLED
    return None


def expire_rfqs(state: RfqState, now_us: int, recv_us: int) -> list[RfqOutcome]:
    """End the open RFQs whose expiry is before ``now_us`` (no end was seen)."""
    return _expire(state, now_us, recv_us)


def _expire(state: RfqState, now_us: int, recv_us: int) -> list[RfqOutcome]:
    expired = sorted(
        (rfq.expires_us, rfq_id)
        for rfq_id, rfq in state.open.items()
        if rfq.expires_us is not None and rfq.expires_us < now_us
    )
    return [
        _finish(state, rfq_id, state.open[rfq_id], RfqEnd.EXPIRED, at, recv_us)
        for at, rfq_id in expired
    ]


def _finish(
    state: RfqState,
    rfq_id: int,
    rfq: _Rfq,
    end: RfqEnd,
    engine_us: int,
    recv_us: int,
) -> RfqOutcome:
    del state.open[rfq_id]
    state.ended[rfq_id] = end
    if len(state.ended) > _ENDED_KEPT:
        state.ended.popitem(last=False)
    role = rfq.role
    state.ends[role] = ended = state.ends.get(role, 0) + 1
    fills = state.fills.get(role, 0) + (end is RfqEnd.FILLED)
    state.fills[role] = fills
    first = rfq.first
    return RfqOutcome(
        symbol=first.s,
        rfq_id=rfq_id,
        role=role,
        side=BookSide.of(first.S),
        quantity=to_decimal(first.q),
        quote_quantity=to_decimal(first.Q),
        quote_id=rfq.quote_id,
        price=rfq.price,
        end=end,
        time_to_fill_us=engine_us - first.T if end is RfqEnd.FILLED else None,
        fills=fills,
        ended=ended,
        fill_ratio=ratio(Decimal(fills) / Decimal(ended)) or Decimal(0),
        engine_us=engine_us,
        recv_us=recv_us,
    )
