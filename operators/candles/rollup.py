"""Closed base candles rolled up into every longer interval, with optional filling."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import msgspec

from ...connectors.backpack.klines import interval_end_us, interval_start_us
from ...connectors.backpack.streams import KlineInterval
from .fold import Candle, CandleAcc, acc_of, finish, merge

__all__ = ["RollUpState", "next_close_us", "roll_up", "roll_up_until"]

_ZERO = Decimal(0)
_MAX_FILL = 10_000  # forward-filled candles per gap, at most


@dataclass
class _Open:
    start_us: int
    acc: CandleAcc
    base: list[Candle] = field(default_factory=list)


@dataclass
class RollUpState:
    """Per symbol: the open candle of each longer interval and the last close."""

    open: dict[KlineInterval, _Open] = field(default_factory=dict)
    seen: set[KlineInterval] = field(default_factory=set)  # intervals past their first
    last_close: dict[KlineInterval, Candle] = field(default_factory=dict)


def roll_up(
    state: RollUpState | None,
    base: Candle,
    intervals: tuple[KlineInterval, ...],
    forward_fill: bool = False,
) -> tuple[RollUpState, list[Candle]]:
    """Fold a closed base candle into each interval; returns the candles that closed.

    A longer candle closes with the base candle of its last base window, else when a
    base candle of a later window arrives (event time: its end has passed), or live
    when ``roll_up_until`` says its time has come (its last base window had no
    trade). The base candle itself is emitted for the base interval. A base candle
    of a window that closed already (it came later than the clock allowed)
    revises it.
    """
    state = state or RollUpState()
    out: list[Candle] = []
    for interval in intervals:
        if interval is base.interval:
            out.extend(_emit(state, interval, base, forward_fill))
            continue
        start = interval_start_us(interval, base.start_us)
        last = state.last_close.get(interval)
        if last is not None and start < last.end_us:
            if last.start_us == start:  # closed by time: this base candle revises it
                revised = finish(merge(acc_of(last), acc_of(base)), interval)
                revised = msgspec.structs.replace(
                    revised, partial=last.partial, revision=last.revision + 1
                )
                state.last_close[interval] = revised
                out.append(revised)
            continue
        current = state.open.get(interval)
        if current is not None and current.start_us != start:
            out.extend(_close(state, interval, forward_fill))
            current = None
        if current is None:
            current = state.open[interval] = _Open(start, acc_of(base))
        else:
            current.acc = merge(current.acc, acc_of(base))
        if base.end_us >= interval_end_us(interval, start):
            # Its last base window: base windows close in order, so nothing but a
            # late candle (which revises) can still come for it. Closed now, not
            # when the next window's first candle or the clock comes.
            out.extend(_close(state, interval, forward_fill))
    return state, out


def roll_up_until(
    state: RollUpState | None,
    until_us: int,
    intervals: tuple[KlineInterval, ...],
    forward_fill: bool = False,
) -> tuple[RollUpState, list[Candle]]:
    """Close every longer candle whose window ended by ``until_us``.

    Live, a quiet market's last base window may have no trades (no base candle),
    so no later base candle would close the longer one for a long while: the clock
    closes it once its end plus the allowed lateness has passed.
    """
    state = state or RollUpState()
    out: list[Candle] = []
    for interval in intervals:
        current = state.open.get(interval)
        if current is None or interval_end_us(interval, current.start_us) > until_us:
            continue
        out.extend(_close(state, interval, forward_fill))
    return state, out


def next_close_us(state: RollUpState | None) -> int | None:
    """The earliest end of a longer candle still open (``None``: none is open)."""
    if state is None or not state.open:
        return None
    return min(interval_end_us(i, o.start_us) for i, o in state.open.items())


def _close(
    state: RollUpState, interval: KlineInterval, forward_fill: bool
) -> list[Candle]:
    """Close ``interval``'s open candle: it and any filled before it."""
    current = state.open.pop(interval)
    closed = finish(current.acc, interval, partial=interval not in state.seen)
    state.seen.add(interval)
    return _emit(state, interval, closed, forward_fill)


def _emit(
    state: RollUpState, interval: KlineInterval, candle: Candle, forward_fill: bool
) -> list[Candle]:
    out: list[Candle] = []
    previous = state.last_close.get(interval)
    if interval is candle.interval and previous is None and interval not in state.seen:
        state.seen.add(interval)
        candle = msgspec.structs.replace(candle, partial=True)
    if forward_fill and previous is not None:
        start = previous.end_us
        while start < candle.start_us and len(out) < _MAX_FILL:
            end = interval_end_us(interval, start)
            out.append(_filled(previous, interval, start, end))
            start = end
    out.append(candle)
    state.last_close[interval] = candle
    return out


def _filled(previous: Candle, interval: KlineInterval, start: int, end: int) -> Candle:
    close = previous.close
    return Candle(
        symbol=previous.symbol,
        interval=interval,
        start_us=start,
        end_us=end,
        open=close,
        high=close,
        low=close,
        close=close,
        volume=_ZERO,
        quote_volume=_ZERO,
        vwap=None,
        trades=0,
        buy_volume=_ZERO,
        buy_trades=0,
        sell_volume=_ZERO,
        sell_trades=0,
        first_trade_id=None,
        last_trade_id=None,
        filled=True,
    )
