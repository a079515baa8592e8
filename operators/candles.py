"""Trades into OHLCV candles, pure: the fold, the roll-up, gaps and the kline check.

- ``CandleAcc`` + ``fold``/``merge``/``finish``: the accumulator that Bytewax's
  ``fold_window`` runs over the trades of one base window (exact ``Decimal``s; open and
  close are the first and last trade by trade id: ids are sequential in the
  engine's order, and a trade fetched back from REST has only millisecond time).
- ``roll_up``: closed base candles of a symbol into every longer interval, with
  optional forward-filled empty candles (close carried, volume 0).
- ``check_ids``: trade-id continuity per symbol (ids are sequential): duplicates are
  dropped, a jump is a ``TradeGap``.
- ``check_klines``: our closed candles against the exchange's closed klines (``X``).
"""

from __future__ import annotations

import decimal
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec

from bpx_flows.connectors.backpack.kline_history import HistoricalKline
from bpx_flows.connectors.backpack.klines import (
    interval_end_us,
    interval_start_us,
    parse_kline_time,
)
from bpx_flows.connectors.backpack.streams import KlineInterval
from bpx_flows.connectors.backpack.wire import Kline, Trade
from bpx_flows.operators.numbers import price_like, to_decimal

__all__ = [
    "BookConfig",
    "BookState",
    "Candle",
    "CandleAcc",
    "HistoricalCandle",
    "IdState",
    "KlineCheckState",
    "KlineMismatch",
    "KlineResolved",
    "RollUpState",
    "TradeGap",
    "candle_book",
    "check_ids",
    "check_klines",
    "finish",
    "fold",
    "historical_candle",
    "merge",
    "new_acc",
    "roll_up",
]

_ZERO = Decimal(0)
# Sums are exact: additions and products under a context that never rounds (the
# default context keeps 28 digits, so a quote volume of many fine-grained trades would
# be rounded). Only ``vwap``, a quotient, is rounded (to the default 28 digits).
_EXACT = decimal.Context(
    prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN
)
_add, _mul, _sub = _EXACT.add, _EXACT.multiply, _EXACT.subtract
_MAX_FILL = 10_000  # forward-filled candles per gap, at most


class Candle(msgspec.Struct, frozen=True, kw_only=True):
    """One closed candle of ``symbol`` over ``[start_us, end_us)`` (engine time).

    ``buy_*`` are trades whose taker bought (``m`` false), ``sell_*`` whose taker sold.
    ``filled`` candles had no trade: prices carry the previous close, volumes are 0.
    ``partial`` is the first candle seen for its interval: trades before the flow
    started are missing, so it is not compared with the exchange. ``revision`` is 0
    when the candle closes; a correction (trades fetched back after a gap) emits the
    window again with the next revision, so the highest revision of a window is
    its value.
    """

    symbol: str
    interval: KlineInterval
    start_us: int
    end_us: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal  # base
    quote_volume: Decimal  # sum of price x quantity
    vwap: Decimal | None
    trades: int
    buy_volume: Decimal
    buy_trades: int
    sell_volume: Decimal
    sell_trades: int
    first_trade_id: int | None
    last_trade_id: int | None
    filled: bool = False
    partial: bool = False
    revision: int = 0


class HistoricalCandle(msgspec.Struct, frozen=True, kw_only=True):
    """A candle from before the run: the exchange's own kline (``--backfill``).

    Only what a kline carries: no taker split, VWAP or trade ids, and never compared
    or revised (the exchange made it). Oldest first; the first candle of the run
    (``Candle``, ``partial``) follows the last of them.
    """

    symbol: str
    interval: KlineInterval
    start_us: int
    end_us: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal  # base
    quote_volume: Decimal | None
    trades: int


def historical_candle(
    interval: KlineInterval, kline: HistoricalKline
) -> HistoricalCandle | None:
    """The candle of a kline fetched at start; ``None`` if a value is not a number."""
    values = [to_decimal(x) for x in (kline.o, kline.h, kline.l, kline.c, kline.v)]
    quote = to_decimal(kline.V) if kline.V is not None else None
    if any(v is None for v in values) or (kline.V is not None and quote is None):
        return None
    o, h, low, c, v = (x for x in values if x is not None)
    return HistoricalCandle(
        symbol=kline.s,
        interval=interval,
        start_us=parse_kline_time(kline.t),
        end_us=parse_kline_time(kline.T),
        open=o,
        high=h,
        low=low,
        close=c,
        volume=v,
        quote_volume=quote,
        trades=kline.n,
    )


@dataclass(slots=True)
class CandleAcc:
    """The running fold of one window's trades."""

    open_key: int = 1 << 62  # trade id of the open (ids follow the engine's order)
    close_key: int = -1
    open: Decimal = _ZERO
    close: Decimal = _ZERO
    high: Decimal | None = None
    low: Decimal | None = None
    volume: Decimal = _ZERO
    quote: Decimal = _ZERO
    trades: int = 0
    buy_volume: Decimal = _ZERO
    buy_trades: int = 0
    first_id: int | None = None
    last_id: int | None = None
    symbol: str = ""
    first_us: int = 0


def new_acc() -> CandleAcc:
    """An empty accumulator (the ``fold_window`` builder)."""
    return CandleAcc()


def fold(acc: CandleAcc, trade: Trade) -> CandleAcc:
    """Add one trade."""
    price, qty = Decimal(trade.p), Decimal(trade.q)
    key = trade.t
    if key < acc.open_key:
        acc.open_key, acc.open = key, price
        acc.first_us = trade.T
    if key > acc.close_key:
        acc.close_key, acc.close = key, price
    if acc.high is None or price > acc.high:
        acc.high = price
    if acc.low is None or price < acc.low:
        acc.low = price
    acc.volume = _add(acc.volume, qty)
    acc.quote = _add(acc.quote, _mul(price, qty))
    acc.trades += 1
    if not trade.m:  # the buyer was the taker
        acc.buy_volume = _add(acc.buy_volume, qty)
        acc.buy_trades += 1
    acc.first_id = trade.t if acc.first_id is None else min(acc.first_id, trade.t)
    acc.last_id = trade.t if acc.last_id is None else max(acc.last_id, trade.t)
    acc.symbol = trade.s
    return acc


def merge(a: CandleAcc, b: CandleAcc) -> CandleAcc:
    """Combine two accumulators of the same window (or of consecutive windows)."""
    if not b.trades:
        return a
    if not a.trades:
        return b
    out = CandleAcc(symbol=a.symbol or b.symbol)
    first = a if a.open_key <= b.open_key else b
    out.open_key, out.open, out.first_us = first.open_key, first.open, first.first_us
    later = a if a.close_key >= b.close_key else b
    out.close_key, out.close = later.close_key, later.close
    assert a.high is not None
    assert b.high is not None
    assert a.low is not None
    assert b.low is not None
    out.high, out.low = max(a.high, b.high), min(a.low, b.low)
    out.volume, out.quote = _add(a.volume, b.volume), _add(a.quote, b.quote)
    out.trades = a.trades + b.trades
    out.buy_volume, out.buy_trades = (
        _add(a.buy_volume, b.buy_volume),
        a.buy_trades + b.buy_trades,
    )
    out.first_id = min(x for x in (a.first_id, b.first_id) if x is not None)
    out.last_id = max(x for x in (a.last_id, b.last_id) if x is not None)
    return out


def finish(acc: CandleAcc, interval: KlineInterval, partial: bool = False) -> Candle:
    """The candle of a non-empty accumulator, for the window containing its open."""
    assert acc.trades
    assert acc.high is not None
    assert acc.low is not None
    start = interval_start_us(interval, acc.first_us)
    return Candle(
        symbol=acc.symbol,
        interval=interval,
        start_us=start,
        end_us=interval_end_us(interval, start),
        open=acc.open,
        high=acc.high,
        low=acc.low,
        close=acc.close,
        volume=acc.volume,
        quote_volume=acc.quote,
        vwap=price_like(acc.quote / acc.volume, acc.close) if acc.volume else None,
        trades=acc.trades,
        buy_volume=acc.buy_volume,
        buy_trades=acc.buy_trades,
        sell_volume=_sub(acc.volume, acc.buy_volume),
        sell_trades=acc.trades - acc.buy_trades,
        first_trade_id=acc.first_id,
        last_trade_id=acc.last_id,
        partial=partial,
    )


# Roll-up of closed base candles into longer intervals.


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

    A longer candle closes when a base candle of a later window arrives (event time:
    its end has passed). The base candle itself is emitted for the base interval.
    """
    state = state or RollUpState()
    out: list[Candle] = []
    for interval in intervals:
        if interval is base.interval:
            out.extend(_emit(state, interval, base, forward_fill))
            continue
        start = interval_start_us(interval, base.start_us)
        current = state.open.get(interval)
        if current is not None and current.start_us != start:
            closed = finish(current.acc, interval, partial=interval not in state.seen)
            state.seen.add(interval)
            out.extend(_emit(state, interval, closed, forward_fill))
            current = None
        if current is None:
            current = state.open[interval] = _Open(start, _acc_of(base))
        else:
            current.acc = merge(current.acc, _acc_of(base))
    return state, out


# Corrections: trades fetched back after a gap, folded into candles already closed.


@dataclass
class BookState:
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
class BookConfig:
    """What ``candle_book`` computes: intervals, fill, and how long it corrects."""

    intervals: tuple[KlineInterval, ...]
    base: KlineInterval
    forward_fill: bool = False
    horizon_us: int = 360_000_000  # a gap's windows stay correctable this long
    keep_us: int = 30_000_000  # windows kept without a gap (late paths, in order)


def candle_book(
    state: BookState | None, item: Any, config: BookConfig
) -> tuple[BookState, list[Candle]]:
    """Roll a closed base candle up, or correct candles with a fetched-back trade.

    ``item`` is a closed base ``Candle`` (rolled up as ``roll_up`` does), a
    ``TradeGap`` (its windows are held for corrections), or a trade fetched back
    from REST that came after its base window closed: every closed candle of its
    windows is emitted again with the next ``revision``, and an interval still open
    simply includes it. A window that had no candle (the gap took all its trades)
    gets one, revision 1. Trades outside what is held count as ``uncorrectable``.
    """
    state = state or BookState()
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


def _correct(state: BookState, trade: Trade, config: BookConfig) -> list[Candle]:
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
    state: BookState, candle: Candle, base: KlineInterval
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
        merged = finish(merge(_acc_of(candle), waiting), base, partial=candle.partial)
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
    acc = merge(_acc_of(previous), one)
    candle = finish(acc, interval, partial=previous.partial)
    assert candle.start_us == start
    return msgspec.structs.replace(candle, revision=previous.revision + 1)


def _remember(state: BookState, candles: list[Candle]) -> None:
    last_close = state.roll.last_close
    for candle in candles:
        key = (candle.interval, candle.start_us)
        state.emitted[key] = candle
        state.first_us.setdefault(candle.interval, candle.start_us)
        last = last_close.get(candle.interval)
        if last is not None and last.start_us == candle.start_us:
            last_close[candle.interval] = candle


def _prune(state: BookState, config: BookConfig) -> None:
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


def _acc_of(candle: Candle) -> CandleAcc:
    """An accumulator equal to a base candle's trades, for the roll-up."""
    acc = CandleAcc(symbol=candle.symbol, first_us=candle.start_us)
    acc.open_key = 1 << 62 if candle.first_trade_id is None else candle.first_trade_id
    acc.close_key = -1 if candle.last_trade_id is None else candle.last_trade_id
    acc.open, acc.close, acc.high, acc.low = (
        candle.open,
        candle.close,
        candle.high,
        candle.low,
    )
    acc.volume, acc.quote, acc.trades = (
        candle.volume,
        candle.quote_volume,
        candle.trades,
    )
    acc.buy_volume, acc.buy_trades = candle.buy_volume, candle.buy_trades
    acc.first_id, acc.last_id = candle.first_trade_id, candle.last_trade_id
    return acc


# Trade-id continuity.


class TradeGap(msgspec.Struct, frozen=True):
    """Trade ids ``first_missing..last_missing`` of ``symbol`` never arrived (yet).

    ``count == 0`` marks a trade that arrived with a non-numeric price or quantity and
    was left out of every candle.
    """

    symbol: str
    first_missing: int
    last_missing: int
    count: int
    detected_us: int  # engine time of the trade that revealed the gap
    since_us: int = 0  # engine time of the last trade before the gap


@dataclass
class IdState:
    """The highest id seen and recent ids (to drop duplicates)."""

    max_id: int | None = None
    max_id_us: int = 0  # engine time of the trade with ``max_id``
    recent: set[int] = field(default_factory=set)
    order: deque[int] = field(default_factory=deque)
    duplicates: int = 0
    gaps: int = 0
    invalid: int = 0


def check_ids(
    state: IdState | None, trade: Trade, remember: int = 4096
) -> tuple[IdState, list[Trade | TradeGap]]:
    """Pass a trade on unless it is a duplicate; report a jump in ids as a gap."""
    state = state or IdState()
    if to_decimal(trade.p) is None or to_decimal(trade.q) is None:
        state.invalid += 1  # a price or quantity that is not a number: never folded
        return state, [TradeGap(trade.s, trade.t, trade.t, 0, trade.T, trade.T)]
    if trade.t in state.recent:
        state.duplicates += 1
        return state, []
    state.recent.add(trade.t)
    state.order.append(trade.t)
    if len(state.order) > remember:
        state.recent.discard(state.order.popleft())
    out: list[Trade | TradeGap] = []
    if state.max_id is not None and trade.t > state.max_id + 1:
        first, last = state.max_id + 1, trade.t - 1
        state.gaps += 1
        gap = TradeGap(trade.s, first, last, last - first + 1, trade.T, state.max_id_us)
        out.append(gap)
    if state.max_id is None or trade.t > state.max_id:
        state.max_id, state.max_id_us = trade.t, trade.T
    out.append(trade)
    return state, out


# The cross-check with the exchange's klines.


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
