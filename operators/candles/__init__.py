"""Trades into OHLCV candles, pure: the fold, the roll-up, corrections, gaps, checks.

- ``windows``: trades into tumbling base windows on an event clock (late trades out);
- ``fold``: the accumulator of one base window, exact, and the candle it finishes;
- ``rollup``: closed base candles into every longer interval (optional filling);
- ``book``: trades fetched back after a gap, folded into candles already closed;
- ``trade_ids``: trade-id continuity per symbol, a jump is a ``TradeGap``;
- ``kline_check``: our closed candles against the exchange's closed klines.
"""

from .book import (
    CandleBookConfig,
    CandleBookState,
    candle_book,
    candle_book_close_at,
    candle_book_on_time,
)
from .fold import (
    Candle,
    CandleAcc,
    HistoricalCandle,
    acc_of,
    finish,
    fold,
    historical_candle,
    merge,
    new_acc,
)
from .kline_check import KlineCheckState, KlineMismatch, KlineResolved, check_klines
from .rollup import RollUpState, next_close_us, roll_up, roll_up_until
from .trade_ids import IdState, TradeGap, check_ids

__all__ = [
    "Candle",
    "CandleAcc",
    "CandleBookConfig",
    "CandleBookState",
    "HistoricalCandle",
    "IdState",
    "KlineCheckState",
    "KlineMismatch",
    "KlineResolved",
    "RollUpState",
    "TradeGap",
    "acc_of",
    "candle_book",
    "candle_book_close_at",
    "candle_book_on_time",
    "check_ids",
    "check_klines",
    "finish",
    "fold",
    "historical_candle",
    "merge",
    "new_acc",
    "next_close_us",
    "roll_up",
    "roll_up_until",
]
