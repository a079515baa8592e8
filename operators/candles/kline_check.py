"""Our closed candles cross-checked with the exchange's closed klines (``X``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec

from ...connectors.backpack.klines import parse_kline_time
from ...connectors.backpack.streams import KlineInterval
from ...connectors.backpack.wire import Kline
from ..numbers import to_decimal
from .fold import Candle

__all__ = ["KlineCheckState", "KlineMismatch", "KlineResolved", "check_klines"]


class KlineMismatch(msgspec.Struct, frozen=True, kw_only=True):
    """Our closed candle and the exchange's closed kline disagree; both values given.

    ``revision`` is the revision of our candle that was compared (0: as it first
    closed); a later correction of the window is compared again and ends the
    dispute with a ``KlineResolved``, or reports the next ``KlineMismatch``.
    """

    symbol: str
    interval: KlineInterval
    start_us: int
    fields: tuple[str, ...]  # which of open, high, low, close, volume, trades
    ours: tuple[str, ...]
    theirs: tuple[str, ...]
    revision: int = 0


class KlineResolved(msgspec.Struct, frozen=True, kw_only=True):
    """A window a ``KlineMismatch`` reported now equals the exchange's kline.

    Trades fetched back after a gap corrected the candle: ``revision`` is the
    corrected candle's revision. Every field compared agrees.
    """

    symbol: str
    interval: KlineInterval
    start_us: int
    revision: int


@dataclass
class KlineCheckState:
    """Unmatched candles and klines by (interval, start), bounded.

    Per interval also the first and the latest window we closed a candle for.
    """

    ours: dict[tuple[KlineInterval, int], Candle] = field(default_factory=dict)
    theirs: dict[tuple[KlineInterval, int], Kline] = field(default_factory=dict)
    # Klines of windows reported as mismatched, for their corrections to be checked.
    disputed: dict[tuple[KlineInterval, int], Kline] = field(default_factory=dict)
    first_us: dict[KlineInterval, int] = field(default_factory=dict)
    latest_us: dict[KlineInterval, int] = field(default_factory=dict)
    checked: int = 0
    mismatched: int = 0
    missing: int = 0
    resolved: int = 0


_CHECKED = ("open", "high", "low", "close", "volume", "trades")


def check_klines(
    state: KlineCheckState | None,
    item: Candle | tuple[KlineInterval, Kline],
    keep: int = 2048,
) -> tuple[KlineCheckState, list[KlineMismatch | KlineResolved]]:
    """Match a candle with the exchange's closed kline of the same window, either order.

    Partial candles (the first of an interval) and the windows before them are not
    compared; klines that are not closed are ignored. A closed kline with trades for
    a window we closed no candle for (or only a forward-filled one) is a mismatch
    (``fields == ("missing",)``), found once a later candle of its interval closed.
    A correction (``revision`` > 0) of a window reported so is compared again: equal,
    it ends the dispute (``KlineResolved``); still different, another mismatch.
    """
    state = state or KlineCheckState()
    if isinstance(item, Candle):
        interval, start = item.interval, item.start_us
        if item.revision and (interval, start) in state.disputed:
            return state, _recheck(state, item, keep)
        state.first_us.setdefault(interval, start)
        out: list[KlineMismatch | KlineResolved] = []
        if start > state.latest_us.get(interval, -1):
            state.latest_us[interval] = start
            out += _missed_before(state, interval, start, keep)
        key = (interval, start)
        if item.partial:
            state.theirs.pop(key, None)
            return state, out
        kline = state.theirs.pop(key, None)
        if item.filled:
            if kline is not None:
                out += _missing(state, interval, start, kline, keep)
            return state, out
        if kline is None:
            _bounded_put(state.ours, key, item, keep)
            return state, out
        return state, out + _compare(state, item, kline, keep)
    interval, kline = item
    if not kline.X:
        return state, []
    start = parse_kline_time(kline.t)
    key = (interval, start)
    candle = state.ours.pop(key, None)
    if candle is not None:
        return state, [*_compare(state, candle, kline, keep)]
    first = state.first_us.get(interval)
    if first is not None and start <= first:
        return state, []  # before we started (or our partial first window)
    if start < state.latest_us.get(interval, -1):
        return state, [*_missing(state, interval, start, kline, keep)]  # it passed
    _bounded_put(state.theirs, key, kline, keep)
    return state, []


def _recheck(
    state: KlineCheckState, candle: Candle, keep: int
) -> list[KlineMismatch | KlineResolved]:
    """A correction of a disputed window, against the kline kept for it."""
    key = (candle.interval, candle.start_us)
    kline = state.disputed.pop(key)
    found = _compare(state, candle, kline, keep)
    if found:
        return list(found)
    state.resolved += 1
    resolved = KlineResolved(
        symbol=candle.symbol,
        interval=candle.interval,
        start_us=candle.start_us,
        revision=candle.revision,
    )
    return [resolved]


def _missed_before(
    state: KlineCheckState, interval: KlineInterval, start: int, keep: int
) -> list[KlineMismatch]:
    """Klines waiting for a window before ``start``: their candle never came."""
    passed = [k for k in state.theirs if k[0] == interval and k[1] < start]
    out: list[KlineMismatch] = []
    first = state.first_us.get(interval, start)
    for key in sorted(passed, key=lambda k: k[1]):
        kline = state.theirs.pop(key)
        if key[1] > first:
            out += _missing(state, interval, key[1], kline, keep)
    return out


def _missing(
    state: KlineCheckState,
    interval: KlineInterval,
    start: int,
    kline: Kline,
    keep: int,
) -> list[KlineMismatch]:
    if kline.n == 0:
        return []  # no trades on either side: nothing was missed
    _bounded_put(state.disputed, (interval, start), kline, keep)
    state.checked += 1
    state.mismatched += 1
    state.missing += 1
    return [
        KlineMismatch(
            symbol=kline.s,
            interval=interval,
            start_us=start,
            fields=("missing",),
            ours=(),
            theirs=(kline.o, kline.h, kline.l, kline.c, kline.v, str(kline.n)),
        )
    ]


def _bounded_put(
    store: dict[tuple[KlineInterval, int], Any],
    key: tuple[KlineInterval, int],
    value: object,
    keep: int,
) -> None:
    store[key] = value
    if len(store) > keep:
        del store[next(iter(store))]


def _compare(
    state: KlineCheckState, candle: Candle, kline: Kline, keep: int
) -> list[KlineMismatch]:
    """The mismatch of ``candle`` with ``kline`` (nothing if equal); kept if any."""
    state.checked += 1
    parsed = [to_decimal(x) for x in (kline.o, kline.h, kline.l, kline.c, kline.v)]
    if any(x is None for x in parsed):
        state.mismatched += 1  # the kline itself is unusable: no correction can agree
        values = (kline.o, kline.h, kline.l, kline.c, kline.v)
        return [
            KlineMismatch(
                symbol=candle.symbol,
                interval=candle.interval,
                start_us=candle.start_us,
                fields=("invalid",),
                ours=(),
                theirs=tuple(values),
            )
        ]
    ours = (
        candle.open,
        candle.high,
        candle.low,
        candle.close,
        candle.volume,
        Decimal(candle.trades),
    )
    theirs = (
        Decimal(kline.o),
        Decimal(kline.h),
        Decimal(kline.l),
        Decimal(kline.c),
        Decimal(kline.v),
        Decimal(kline.n),
    )
    differ = [i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b]
    if not differ:
        return []
    state.mismatched += 1
    _bounded_put(state.disputed, (candle.interval, candle.start_us), kline, keep)
    return [
        KlineMismatch(
            symbol=candle.symbol,
            interval=candle.interval,
            start_us=candle.start_us,
            fields=tuple(_CHECKED[i] for i in differ),
            ours=tuple(str(ours[i]) for i in differ),
            theirs=tuple(str(theirs[i]) for i in differ),
            revision=candle.revision,
        )
    ]
