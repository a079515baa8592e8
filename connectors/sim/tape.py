"""What the simulator derives from a market's trade tape: klines and 24 h stats.

All sums are exact integers (ticks, lots, ticks x lots); they become decimal strings
only when a frame or REST answer is made.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ..backpack.klines import interval_end_us, interval_start_us
from ..backpack.streams import KlineInterval

__all__ = ["Bar", "MarketTape"]

_DAY_US = 86_400_000_000
_HISTORY_BARS = 25_000  # closed bars per interval: 6 h of 1 s bars at most


@dataclass(slots=True)
class Bar:
    """One candle in integer units; ``trades == 0`` means no print yet."""

    start_us: int
    end_us: int
    open: int = 0
    high: int = 0
    low: int = 0
    close: int = 0
    volume: int = 0  # lots
    quote: int = 0  # ticks x lots
    trades: int = 0
    changed: bool = False  # since the last push on the stream

    def add(self, price: int, lots: int) -> None:
        """Fold one print into the bar."""
        if not self.trades:
            self.open = self.high = self.low = price
        elif price > self.high:
            self.high = price
        elif price < self.low:
            self.low = price
        self.close = price
        self.volume += lots
        self.quote += price * lots
        self.trades += 1
        self.changed = True


class MarketTape:
    """Klines of every interval and the rolling 24 h statistics of one market."""

    def __init__(self, now_us: int, history: int = 1_000) -> None:
        self.bars: dict[KlineInterval, Bar] = {
            i: self._new_bar(i, now_us) for i in KlineInterval
        }
        self.history: dict[KlineInterval, deque[Bar]] = {
            i: deque(maxlen=_HISTORY_BARS) for i in KlineInterval
        }
        self._window: deque[tuple[int, int, int]] = deque()  # (T, price, lots)
        self._highs: deque[tuple[int, int]] = deque()  # monotonic (T, price)
        self._lows: deque[tuple[int, int]] = deque()
        self.volume = 0
        self.quote = 0
        self.trades = 0
        self.last_price: int | None = None
        # (trade id, price, lots, buyer maker, T) of the latest prints, for REST trades
        self.recent: deque[tuple[int, int, int, bool, int]] = deque(maxlen=history)

    @staticmethod
    def _new_bar(interval: KlineInterval, t_us: int) -> Bar:
        start = interval_start_us(interval, t_us)
        return Bar(start, interval_end_us(interval, start))

    def roll(self, now_us: int) -> list[tuple[KlineInterval, Bar]]:
        """Close every bar whose end has passed; returns the closed bars that traded."""
        closed = []
        for interval, bar in self.bars.items():
            if now_us >= bar.end_us:
                if bar.trades:
                    closed.append((interval, bar))
                    self.history[interval].append(bar)
                self.bars[interval] = self._new_bar(interval, now_us)
        return closed

    def add(
        self, engine_us: int, price: int, lots: int
    ) -> list[tuple[KlineInterval, Bar]]:
        """Record one print; returns bars that closed before it (see ``roll``)."""
        closed = self.roll(engine_us)
        for bar in self.bars.values():
            bar.add(price, lots)
        self._window.append((engine_us, price, lots))
        while self._highs and self._highs[-1][1] <= price:
            self._highs.pop()
        self._highs.append((engine_us, price))
        while self._lows and self._lows[-1][1] >= price:
            self._lows.pop()
        self._lows.append((engine_us, price))
        self.volume += lots
        self.quote += price * lots
        self.trades += 1
        self.last_price = price
        return closed

    def stats_24h(self, now_us: int) -> tuple[int, int, int, int, int, int, int] | None:
        """``(open, close, high, low, volume, quote, trades)`` over the last 24 h.

        Returns ``None`` when nothing traded in the window.
        """
        horizon = now_us - _DAY_US
        window = self._window
        while window and window[0][0] <= horizon:
            _, price, lots = window.popleft()
            self.volume -= lots
            self.quote -= price * lots
            self.trades -= 1
        while self._highs and self._highs[0][0] <= horizon:
            self._highs.popleft()
        while self._lows and self._lows[0][0] <= horizon:
            self._lows.popleft()
        if not window:
            return None
        return (
            window[0][1],
            window[-1][1],
            self._highs[0][1],
            self._lows[0][1],
            self.volume,
            self.quote,
            self.trades,
        )
