"""The candle of one window: the accumulator the base windows fold, exactly.

``CandleAcc`` + ``fold``/``merge``/``finish`` over the trades of one base window
(exact ``Decimal``s; open and close are the first and last trade by trade id: ids
are sequential in the engine's order, and a trade fetched back from REST has only
millisecond time); ``acc_of`` turns a closed candle back into an accumulator.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from decimal import Decimal

import msgspec

from ...connectors.backpack.kline_history import HistoricalKline
from ...connectors.backpack.klines import (
    interval_end_us,
    interval_start_us,
    parse_kline_time,
)
from ...connectors.backpack.streams import KlineInterval
from ...connectors.backpack.wire import Trade
from ..numbers import price_like, seen_decimal, to_decimal

__all__ = [
    "Candle",
    "CandleAcc",
    "HistoricalCandle",
    "acc_of",
    "finish",
    "fold",
    "historical_candle",
    "merge",
    "new_acc",
]

_ZERO = Decimal(0)
# Sums are exact: additions and products under a context that never rounds (the
# default context keeps 28 digits, so a quote volume of many fine-grained trades would
# be rounded). Only ``vwap``, a quotient, is rounded (to the default 28 digits).
_EXACT = decimal.Context(
    prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN
)
_add, _mul, _sub = _EXACT.add, _EXACT.multiply, _EXACT.subtract


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
    """An empty accumulator (a new base window's)."""
    return CandleAcc()


def fold(acc: CandleAcc, trade: Trade) -> CandleAcc:
    """Add one trade."""
    # Parsed once per text (``check_ids`` saw these texts already).
    price, qty = seen_decimal(trade.p), seen_decimal(trade.q)
    if price is None or qty is None:  # not checked first: Decimal says why not
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
    first, last = acc.first_id, acc.last_id
    if first is None or key < first:
        acc.first_id = key
    if last is None or key > last:
        acc.last_id = key
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


def acc_of(candle: Candle) -> CandleAcc:
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
