"""Mark price joined with open interest, per perp, as a pure running join.

``step(state, event, config) -> (state, outputs)`` takes ``MarkPrice`` (about once a
second) and ``OpenInterest`` (every 60 s) events of one symbol and emits a
``DerivativesView`` after each, with each side's age; a side older than its bound is
flagged stale, never silently reused as fresh. Time is the incoming event's ``E``.

A ``SeededMarkPrice`` (from REST at connect, dated by the answer) is used only while
no stream mark price is held, and any stream frame replaces it whatever the times:
its date is a guess on another clock, so it may never hide a real frame.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal

import msgspec

from ..connectors.backpack.seeds import SeededMarkPrice
from ..connectors.backpack.wire import MarkPrice, OpenInterest
from .numbers import bps, to_decimal

__all__ = [
    "DerivativesConfig",
    "DerivativesState",
    "DerivativesView",
    "OiChange",
    "step",
]

_BPS = Decimal(10_000)
_YEAR_MS = Decimal(365 * 24 * 3600 * 1000)
_S = 1_000_000


@dataclass(frozen=True, slots=True)
class DerivativesConfig:
    """Bounds and horizons of the join.

    Attributes:
        funding_interval_ms: the funding interval (Backpack perps: 1 h), milliseconds.
        mark_stale_us: a mark price older than this is stale, microseconds.
        oi_stale_us: an open interest older than this is stale, microseconds.
        oi_horizons_s: horizons of the open-interest change, seconds.
    """

    funding_interval_ms: int = 3_600_000
    mark_stale_us: int = 5 * _S
    oi_stale_us: int = 180 * _S
    oi_horizons_s: tuple[int, ...] = (60, 300, 3600)


class OiChange(msgspec.Struct, frozen=True):
    """Open interest change over ``horizon_s`` (contracts); ``None`` without history."""

    horizon_s: int
    change: Decimal | None


class DerivativesView(msgspec.Struct, frozen=True, kw_only=True):
    """The joined view of one perp after an update.

    Funding fields and the premium are ``None`` on prediction markets (no index, no
    funding). ``funding_annualised`` = rate x intervals per 365 days (simple, not
    compounded). Ages are microseconds from each side's event time to ``event_us``.
    """

    symbol: str
    event_us: int  # event time of the update that produced this view, microseconds
    mark: Decimal | None
    index: Decimal | None
    premium_bps: Decimal | None  # (mark - index) / index x 10,000
    funding_rate: Decimal | None  # per funding interval, a fraction
    funding_annualised: Decimal | None
    next_funding_ms: int | None
    time_to_funding_ms: int | None
    open_interest: Decimal | None  # contracts (= base units)
    oi_notional: Decimal | None  # open interest x mark, quote units
    oi_changes: tuple[OiChange, ...]
    mark_age_us: int | None
    oi_age_us: int | None
    mark_stale: bool
    oi_stale: bool


@dataclass
class DerivativesState:
    """Latest of each side, and open-interest history for the change horizons."""

    mark: MarkPrice | None = None
    mark_us: int = 0
    oi: Decimal | None = None
    oi_us: int = 0
    oi_history: deque[tuple[int, Decimal]] = field(default_factory=deque)
    invalid: int = 0  # events skipped for a non-numeric field


def step(
    state: DerivativesState | None,
    event: MarkPrice | OpenInterest,
    config: DerivativesConfig,
) -> tuple[DerivativesState, list[DerivativesView]]:
    """Fold one event into the join; returns the view as of that event."""
    state = state or DerivativesState()
    now = event.E
    if not _numeric(event):
        state.invalid += 1  # a non-numeric field: the event is not used
        return state, []
    if isinstance(event, MarkPrice):
        held_seed = type(state.mark) is SeededMarkPrice
        if type(event) is SeededMarkPrice:
            if state.mark is not None and not (held_seed and now >= state.mark_us):
                return state, []  # the stream's own frames come first
        elif now < state.mark_us and not held_seed:
            return state, []  # older than what we have: out of order, ignored
        state.mark, state.mark_us = event, now
    else:
        if now < state.oi_us:
            return state, []
        state.oi, state.oi_us = Decimal(event.o), now
        history = state.oi_history
        history.append((now, state.oi))
        horizon_us = max(config.oi_horizons_s) * _S + 120 * _S
        while history and history[0][0] < now - horizon_us:
            history.popleft()
    return state, [_view(state, event.s, now, config)]


def _numeric(event: MarkPrice | OpenInterest) -> bool:
    if isinstance(event, OpenInterest):
        return to_decimal(event.o) is not None
    return to_decimal(event.p) is not None and all(
        text is None or to_decimal(text) is not None for text in (event.f, event.i)
    )


def _view(
    state: DerivativesState, symbol: str, now: int, config: DerivativesConfig
) -> DerivativesView:
    mark_ev = state.mark
    mark = Decimal(mark_ev.p) if mark_ev else None
    index = Decimal(mark_ev.i) if mark_ev and mark_ev.i is not None else None
    rate = Decimal(mark_ev.f) if mark_ev and mark_ev.f is not None else None
    next_ms = mark_ev.n if mark_ev else None
    premium = bps((mark - index) / index * _BPS) if mark is not None and index else None
    per_year = _YEAR_MS / config.funding_interval_ms
    oi = state.oi
    return DerivativesView(
        symbol=symbol,
        event_us=now,
        mark=mark,
        index=index,
        premium_bps=premium,
        funding_rate=rate,
        funding_annualised=rate * per_year if rate is not None else None,
        next_funding_ms=next_ms,
        time_to_funding_ms=next_ms - now // 1000 if next_ms is not None else None,
        open_interest=oi,
        oi_notional=oi * mark if oi is not None and mark is not None else None,
        oi_changes=tuple(_change(state, now, h) for h in config.oi_horizons_s),
        mark_age_us=now - state.mark_us if mark_ev else None,
        oi_age_us=now - state.oi_us if oi is not None else None,
        mark_stale=mark_ev is None or now - state.mark_us > config.mark_stale_us,
        oi_stale=oi is None or now - state.oi_us > config.oi_stale_us,
    )


def _change(state: DerivativesState, now: int, horizon_s: int) -> OiChange:
    """OI now minus the last OI known at or before ``now - horizon``."""
    if state.oi is None:
        return OiChange(horizon_s, None)
    cutoff = now - horizon_s * _S
    past = None
    for at, value in state.oi_history:
        if at > cutoff:
            break
        past = value
    return OiChange(horizon_s, None if past is None else state.oi - past)
