"""One simulated market's matching engine: integer ticks and lots, sequential ids.

Every change to the book is one engine event with the next update id, so the depth
stream, ``bookTicker``, trades and the REST snapshot derive from one source of truth.
Prices are integers (ticks) inside and decimal strings outside; nothing is a float.
Randomness comes from the ``random.Random`` handed in, so a seed reproduces a session.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

from sortedcontainers import SortedDict

from ..errors import ConfigError

__all__ = ["BookChange", "DecimalUnits", "Fill", "MarketEngine", "MarketSpec"]

_MIN_LEVELS = 5


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """What the simulator lists for one market.

    Attributes:
        symbol: the market id, e.g. ``SOL_USDC_PERP``.
        market_type: ``SPOT``, ``PERP`` or ``PREDICTION``.
        tick_size: price increment, a decimal string.
        step_size: quantity increment, a decimal string.
        start_price: the first fair price, a decimal string.
        events_per_s: mean engine events per second of simulated time.
    """

    symbol: str
    base: str
    quote: str
    market_type: str
    tick_size: str
    step_size: str
    start_price: str
    events_per_s: float = 20.0

    @property
    def is_perp(self) -> bool:
        """Whether the market has funding, an index and open interest."""
        return self.market_type in ("PERP", "PREDICTION")


class DecimalUnits:
    """Exact conversion between integer units and decimal strings of one increment."""

    __slots__ = ("_div", "_mul", "_places", "_size")

    def __init__(self, increment: str) -> None:
        size = Decimal(increment)
        _, digits, exponent = size.as_tuple()
        assert isinstance(exponent, int)
        self._places = max(0, -exponent)
        self._mul = int("".join(map(str, digits))) * 10 ** max(0, exponent)
        self._div = 10**self._places
        self._size = size

    def format(self, units: int) -> str:
        """``units`` increments as a decimal string: 18670 ticks of 0.01 -> "186.70"."""
        scaled = units * self._mul
        if not self._places:
            return str(scaled)
        whole, frac = divmod(abs(scaled), self._div)
        sign = "-" if scaled < 0 else ""
        return f"{sign}{whole}.{frac:0{self._places}d}"

    def to_decimal(self, units: int) -> Decimal:
        """``units`` increments as an exact Decimal."""
        return units * self._size

    def parse(self, text: str) -> int:
        """A decimal string back to whole units (a multiple of the increment)."""
        units, rest = divmod(Decimal(text), self._size)
        if rest:
            msg = f"{text} is not a multiple of {self._size}"
            raise ConfigError(msg)
        return int(units)


@dataclass(frozen=True, slots=True)
class Fill:
    """One trade print: a taker crossing one resting level."""

    trade_id: int
    price: int  # ticks
    lots: int
    buyer_maker: bool  # the taker sold


@dataclass(frozen=True, slots=True)
class BookChange:
    """One engine event: the levels it left behind and the trades it printed.

    ``bids``/``asks`` map ticks to the new absolute lots (0 = level removed).
    """

    update_id: int
    engine_us: int
    bids: dict[int, int]
    asks: dict[int, int]
    fills: tuple[Fill, ...] = ()


class MarketEngine:
    """The book and tape of one market, driven by random maker and taker flow.

    Args:
        spec: the market.
        rng: the randomness; share one per market for reproducible sessions.
        first_update_id: the update id before the first event.
        max_levels: levels kept per side; past it the farthest level is cancelled.
    """

    def __init__(
        self,
        spec: MarketSpec,
        rng: random.Random,
        first_update_id: int = 1_000_000,
        max_levels: int = 400,
    ) -> None:
        self.spec = spec
        self.prices = DecimalUnits(spec.tick_size)
        self.lots = DecimalUnits(spec.step_size)
        self.bids: SortedDict = SortedDict()  # ticks -> lots, ascending
        self.asks: SortedDict = SortedDict()
        self.update_id = first_update_id
        self.trade_id = rng.randrange(1_000, 1_000_000)
        self.fair = float(self.prices.parse(spec.start_price))
        self._rng = rng
        self._max_levels = max_levels
        self._vol = max(1.0, self.fair * 0.0002)  # ticks of fair-price noise per event
        self._seed_book()

    # Reading the book.

    def best_bid(self) -> int | None:
        """Best bid in ticks, or ``None`` when the side is empty."""
        return self.bids.peekitem(-1)[0] if self.bids else None

    def best_ask(self) -> int | None:
        """Best ask in ticks, or ``None`` when the side is empty."""
        return self.asks.peekitem(0)[0] if self.asks else None

    def mid(self) -> float:
        """Mid price in ticks (the fair price when a side is empty)."""
        bid, ask = self.best_bid(), self.best_ask()
        if bid is None or ask is None:
            return self.fair
        return (bid + ask) / 2

    # Driving the engine.

    def step(self, engine_us: int) -> BookChange:
        """One random engine event: a maker adds or cancels, or a taker crosses."""
        rng = self._rng
        self.fair += rng.gauss(0.0, self._vol)
        self.fair = max(self.fair, 10.0)
        roll = rng.random()
        if len(self.bids) > self._max_levels or len(self.asks) > self._max_levels:
            return self._trim(engine_us)
        thin = min(len(self.bids), len(self.asks)) <= 2 * _MIN_LEVELS
        if roll < 0.55 or (thin and roll < 0.75):
            return self._add(engine_us, thin)
        if roll < 0.85:
            return self._cancel(engine_us)
        taker_buys = rng.random() < (0.5 + 0.4 * _sign(self.fair - self.mid()))
        return self.market_order(taker_buys, rng.randint(1, 40), engine_us)

    def market_order(self, taker_buys: bool, lots: int, engine_us: int) -> BookChange:
        """A taker crosses the book for up to ``lots``; one engine event, one id."""
        side = self.asks if taker_buys else self.bids
        changed: dict[int, int] = {}
        fills: list[Fill] = []
        # Market makers never let a side run dry: a sweep stops at the last few levels
        # (so bookTicker sides are never null here; the decoder handles null anyway).
        while lots > 0 and len(side) > _MIN_LEVELS:
            price, resting = side.peekitem(0) if taker_buys else side.peekitem(-1)
            take = min(lots, resting)
            lots -= take
            left = resting - take
            if left:
                side[price] = left
            else:
                del side[price]
            changed[price] = left
            self.trade_id += 1
            fills.append(Fill(self.trade_id, price, take, not taker_buys))
        if taker_buys:
            return self._event(engine_us, {}, changed, tuple(fills))
        return self._event(engine_us, changed, {}, tuple(fills))

    # Private helpers.

    def _event(
        self,
        engine_us: int,
        bids: dict[int, int],
        asks: dict[int, int],
        fills: tuple[Fill, ...] = (),
    ) -> BookChange:
        self.update_id += 1
        return BookChange(self.update_id, engine_us, bids, asks, fills)

    def _seed_book(self) -> None:
        centre = round(self.fair)
        for k in range(1, 61):
            self.bids[centre - k] = self._rng.randint(1, 200)
            self.asks[centre + k] = self._rng.randint(1, 200)

    def _add(self, engine_us: int, refill: bool = False) -> BookChange:
        rng = self._rng
        is_bid = rng.random() < 0.5
        if refill:  # replenish the thinner side first
            is_bid = len(self.bids) <= len(self.asks)
        distance = 1 + int(rng.expovariate(0.15))
        lots = rng.randint(1, 120)
        bid, ask = self.best_bid(), self.best_ask()
        if refill:
            # A maker refilling a thin side quotes behind its own touch, so the side
            # gains levels even when the fair price sits beyond the other side.
            touch = bid if is_bid else ask
            if touch is not None:
                price = touch - distance if is_bid else touch + distance
                side = self.bids if is_bid else self.asks
                side[price] = side.get(price, 0) + lots
                change = {price: side[price]}
                return self._event(
                    engine_us, change if is_bid else {}, {} if is_bid else change
                )
        if is_bid:
            price = max(1, round(self.fair) - distance)
            if ask is not None and price >= ask:
                price = ask - 1
            self.bids[price] = self.bids.get(price, 0) + lots
            return self._event(engine_us, {price: self.bids[price]}, {})
        price = round(self.fair) + distance
        if bid is not None and price <= bid:
            price = bid + 1
        self.asks[price] = self.asks.get(price, 0) + lots
        return self._event(engine_us, {}, {price: self.asks[price]})

    def _cancel(self, engine_us: int) -> BookChange:
        rng = self._rng
        is_bid = rng.random() < 0.5
        side = self.bids if is_bid else self.asks
        depth = min(len(side), 40)
        index = rng.randrange(depth)
        price, resting = side.peekitem(-1 - index) if is_bid else side.peekitem(index)
        left = resting - rng.randint(1, resting) if rng.random() < 0.6 else 0
        if left:
            side[price] = left
        else:
            del side[price]
        change = {price: left}
        return self._event(
            engine_us, change if is_bid else {}, {} if is_bid else change
        )

    def _trim(self, engine_us: int) -> BookChange:
        if len(self.bids) > self._max_levels:
            price = self.bids.peekitem(0)[0]
            del self.bids[price]
            return self._event(engine_us, {price: 0}, {})
        price = self.asks.peekitem(-1)[0]
        del self.asks[price]
        return self._event(engine_us, {}, {price: 0})


def _sign(x: float) -> float:
    return 1.0 if x > 0 else -1.0 if x < 0 else 0.0
