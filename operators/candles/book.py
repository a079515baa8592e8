"""Corrections: trades fetched back after a gap, folded into candles already closed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from ...connectors.backpack.klines import interval_start_us
from ...connectors.backpack.streams import KlineInterval
from ...connectors.backpack.wire import Trade
from .fold import Candle, CandleAcc, acc_of, finish, fold, merge, new_acc
from .rollup import RollUpState, next_close_us, roll_up, roll_up_until
from .trade_ids import TradeGap

__all__ = [
    "CandleBookConfig",
    "CandleBookState",
    "candle_book",
    "candle_book_close_at",
    "candle_book_on_time",
]


@dataclass
class CandleBookState:
    """Per symbol: the roll-up, and the candles a correction may still change.

    ``emitted`` holds the latest revision of each window closed within the last
    ``keep_us`` of engine time, and of every window since the start of an open
    gap's hold (``holds``: ``(from_us, until_us)``, one per ``TradeGap``, ending
    ``horizon_us`` after the gap was detected), so memory is bounded whatever the
    run's length.
    """

    roll: RollUpState = field(default_factory=RollUpState)
    emitted: dict[tuple[KlineInterval, int], Candle] = field(default_factory=dict)
    holds: list[tuple[int, int]] = field(default_factory=list)
    first_us: dict[KlineInterval, int] = field(default_factory=dict)
    pending: dict[int, CandleAcc] = field(default_factory=dict)  # windows not closed
    latest_us: int = 0  # engine time: the end of the newest base candle
    corrections: int = 0
    uncorrectable: int = 0  # trades fetched back too late to change a candle


@dataclass(frozen=True, slots=True)
class CandleBookConfig:
    """What ``candle_book`` computes: intervals, fill, and how long it corrects."""

    intervals: tuple[KlineInterval, ...]
    base: KlineInterval
    forward_fill: bool = False
    horizon_us: int = 360_000_000  # a gap's windows stay correctable this long
    keep_us: int = 30_000_000  # windows kept without a gap (late paths, in order)
    close_after_us: int | None = None  # live: longer candles close this long after
    # their end by the clock (the allowed lateness and a margin); None: event time only


def candle_book(
    state: CandleBookState | None, item: Any, config: CandleBookConfig
) -> tuple[CandleBookState, list[Candle]]:
    """Roll a closed base candle up, or correct candles with a fetched-back trade.

    ``item`` is a closed base ``Candle`` (rolled up as ``roll_up`` does), a
    ``TradeGap`` (its windows are held for corrections), or a trade fetched back
    from REST that came after its base window closed: every closed candle of its
    windows is emitted again with the next ``revision``, and an interval still open
    simply includes it. A window that had no candle (the gap took all its trades)
    gets one, revision 1. Trades outside what is held count as ``uncorrectable``.
    """
    state = state or CandleBookState()
    if isinstance(item, Candle):
        out = []
        for candle in _with_pending(state, item, config.base):
            state.roll, closed = roll_up(
                state.roll, candle, config.intervals, config.forward_fill
            )
            _remember(state, closed)
            out += closed
        state.latest_us = max(state.latest_us, item.end_us)
        _prune(state, config)
        return state, out
    if isinstance(item, TradeGap):
        if item.count and config.horizon_us:
            start = interval_start_us(config.base, item.since_us or item.detected_us)
            state.holds.append((start, item.detected_us + config.horizon_us))
        return state, []
    return state, _correct(state, item, config)


def candle_book_close_at(
    state: CandleBookState | None, config: CandleBookConfig
) -> int | None:
    """When (wall clock, µs) the clock should next close a longer candle."""
    if config.close_after_us is None or state is None:
        return None
    end = next_close_us(state.roll)
    return None if end is None else end + config.close_after_us


def candle_book_on_time(
    state: CandleBookState | None, now_us: int, config: CandleBookConfig
) -> tuple[CandleBookState | None, list[Candle]]:
    """The longer candles whose end plus ``close_after_us`` passed by ``now_us``."""
    if state is None or config.close_after_us is None:
        return state, []
    until = now_us - config.close_after_us
    state.roll, closed = roll_up_until(
        state.roll, until, config.intervals, config.forward_fill
    )
    _remember(state, closed)
    return state, closed


def _correct(
    state: CandleBookState, trade: Trade, config: CandleBookConfig
) -> list[Candle]:
    base = config.base
    one = fold(new_acc(), trade)
    start = interval_start_us(base, trade.T)
    # Held by a gap, or recent enough to be kept anyway (a gap's report and the
    # trades fetched for it take different paths and may come in either order).
    held = state.latest_us - config.keep_us <= trade.T or any(
        begin <= trade.T < until for begin, until in state.holds
    )
    first = state.first_us.get(base)
    previous = state.emitted.get((base, start))
    if previous is None:
        if not held or first is None or start < first:
            state.uncorrectable += 1
            return []
        last = state.roll.last_close.get(base)
        if last is None or start > last.start_us:
            # Newer than every closed window: the window may still be open (a trade
            # is late against the watermark, not its window), so it waits for the
            # window's candle, or for a later one if the window never had trades.
            waiting = state.pending.get(start)
            state.pending[start] = one if waiting is None else merge(waiting, one)
            return []
    out = [_revised(base, one, previous, start)]
    for interval in config.intervals:
        if interval is base:
            continue
        begin = interval_start_us(interval, trade.T)
        current = state.roll.open.get(interval)
        if current is not None and current.start_us == begin:
            current.acc = merge(current.acc, one)  # still open: it counts there
            continue
        earlier = state.emitted.get((interval, begin))
        if earlier is None:
            since = state.first_us.get(interval)
            if not held or since is None or begin < since:
                continue  # not held (or before this interval's first candle)
        out.append(_revised(interval, one, earlier, begin))
    _remember(state, out)
    state.corrections += 1
    return out


def _with_pending(
    state: CandleBookState, candle: Candle, base: KlineInterval
) -> list[Candle]:
    """``candle`` with the fetched-back trades that waited for its window.

    Preceded by the windows before it that only such trades made (window order).
    """
    if not state.pending:
        return [candle]
    out: list[Candle] = []
    for start in sorted(s for s in state.pending if s < candle.start_us):
        out.append(finish(state.pending.pop(start), base))
    waiting = state.pending.pop(candle.start_us, None)
    if waiting is not None:
        state.corrections += 1
        merged = finish(merge(acc_of(candle), waiting), base, partial=candle.partial)
        candle = merged
    out.append(candle)
    return out


def _revised(
    interval: KlineInterval, one: CandleAcc, previous: Candle | None, start: int
) -> Candle:
    """``previous`` (the window's latest revision) with one more trade."""
    if previous is None or previous.filled:
        return msgspec.structs.replace(
            finish(one, interval),
            revision=1 if previous is None else previous.revision + 1,
        )
    acc = merge(acc_of(previous), one)
    candle = finish(acc, interval, partial=previous.partial)
    assert candle.start_us == start
    return msgspec.structs.replace(candle, revision=previous.revision + 1)


def _remember(state: CandleBookState, candles: list[Candle]) -> None:
    last_close = state.roll.last_close
    for candle in candles:
        key = (candle.interval, candle.start_us)
        state.emitted[key] = candle
        state.first_us.setdefault(candle.interval, candle.start_us)
        last = last_close.get(candle.interval)
        if last is not None and last.start_us == candle.start_us:
            last_close[candle.interval] = candle


def _prune(state: CandleBookState, config: CandleBookConfig) -> None:
    now = state.latest_us
    state.holds = [h for h in state.holds if h[1] > now]
    floor = now - config.keep_us
    if state.holds:
        floor = min(floor, *(start for start, _ in state.holds))
    emitted = state.emitted
    while emitted:
        key = next(iter(emitted))
        if emitted[key].end_us > floor:
            break
        del emitted[key]
    # Windows re-emitted by corrections move nowhere in the dict's order, so a
    # long hold may leave old ones behind the first live one: bounded by the hold.
