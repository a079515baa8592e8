"""The simulated exchange: markets, their derived streams, the account, and REST views.

A pure model: ``advance_to(now_us)`` runs every scheduled event up to ``now_us`` and
returns the data frames produced, as ``(stream, record)`` pairs of our wire types. Given
the same seed, start time and market list, the sequence of engine events is the same
however often ``advance_to`` is called, so sessions reproduce.

(Over 450 lines: one event loop mutates every market, the account and the derived
streams in one order, which is what makes sessions reproduce; the parts it drives
live in ``engine``, ``account``, ``tape`` and ``catalog``.)

One module past the usual size, on purpose: the event schedule, the streams derived
from each engine event and the REST views share the same private state (engines,
tapes, open interest, aggregation buffers); splitting them would expose it.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

import msgspec

from ..backpack.klines import format_kline_time, format_rest_time
from ..backpack.streams import DepthWindow, KlineInterval
from ..backpack.wire import (
    BookTicker,
    Depth,
    DepthSnapshot,
    Kline,
    KlineRow,
    Liquidation,
    Market,
    MarketFilters,
    MarkPrice,
    MarkPriceRow,
    OpenInterest,
    OpenInterestRow,
    OrderUpdate,
    PositionUpdate,
    PriceFilter,
    QuantityFilter,
    RfqUpdate,
    Side,
    Ticker,
    TickerRow,
    Trade,
    TradeRow,
)
from ..errors import ConfigError
from .account import MarketOrder, PrivateEvent, SimAccount
from .engine import (
    BookChange,
    DecimalUnits,
    MarketEngine,
    MarketSpec,
)
from .tape import Bar, MarketTape

__all__ = ["DEFAULT_MARKETS", "Exchange", "Output", "ScheduledCascade", "SimConfig"]

Output = tuple[str, msgspec.Struct]
"""One data frame: the stream name and the record to encode as ``data``."""

DEFAULT_MARKETS = (
    MarketSpec("SOL_USDC", "SOL", "USDC", "SPOT", "0.01", "0.01", "186.50"),
    MarketSpec("BTC_USDC", "BTC", "USDC", "SPOT", "0.1", "0.00001", "86700.0"),
    MarketSpec("SOL_USDC_PERP", "SOL", "USDC", "PERP", "0.01", "0.01", "186.40"),
    MarketSpec("BTC_USDC_PERP", "BTC", "USDC", "PERP", "0.1", "0.0001", "86650.0"),
    MarketSpec("ETH_USDC_PERP", "ETH", "USDC", "PERP", "0.01", "0.001", "3120.00"),
    MarketSpec(
        "AAPL.US_USDC_PERP", "AAPL.US", "USDC", "PERP", "0.01", "0.01", "227.30"
    ),
    MarketSpec("kPEPE_USDC_PERP", "kPEPE", "USDC", "PERP", "0.000001", "1", "0.012340"),
    MarketSpec(
        "TRUMPWIN_USDC_PERP", "TRUMPWIN", "USDC", "PREDICTION", "0.001", "1", "0.550"
    ),
)
_S = 1_000_000
MAX_HISTORY_S = 6 * 3600.0  # simulated history before the start, at most
_EMIT_DELAY_US = 110  # engine time T -> event time E
_HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class ScheduledCascade:
    """A liquidation cascade at a known time, all on one side.

    Attributes:
        at_s: seconds after the simulator's start.
        symbol: the perp.
        side: the side of the liquidation orders (``Ask``: longs sold off).
        count: liquidations, 50-700 ms apart.
    """

    at_s: float
    symbol: str
    side: Side
    count: int = 25


@dataclass(frozen=True, slots=True)
class SimConfig:
    """How the simulated exchange behaves.

    Attributes:
        seed: the randomness; the same seed gives the same engine events.
        markets: the listed markets.
        rate_scale: multiplies every market's engine events per second.
        liquidation_every_s: mean seconds between isolated liquidations per perp;
            ``None``: none.
        cascade_every_s: mean seconds between random liquidation cascades (all
            perps); ``None``: none.
        cascades_at: cascades at known times (for tests and demos).
        account_every_s: mean seconds between account actions; ``None`` disables it.
        trade_history: the latest trades kept per market for ``/api/v1/trades`` and
            ``/api/v1/trades/history``: older ones cannot be fetched (the history
            depth a backfill meets).
        history_s: simulated seconds run before the start, silently, so REST
            history (klines, trades) reaches back that far at once (a simulated
            minute costs about 0.3 s of CPU with the default markets).
    """

    seed: int = 7
    markets: tuple[MarketSpec, ...] = DEFAULT_MARKETS
    rate_scale: float = 1.0
    liquidation_every_s: float | None = 20.0
    cascade_every_s: float | None = 90.0
    cascades_at: tuple[ScheduledCascade, ...] = ()
    account_every_s: float | None = 1.0
    trade_history: int = 20_000
    history_s: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.history_s <= MAX_HISTORY_S:
            msg = f"history must be 0..{MAX_HISTORY_S:.0f} s, got {self.history_s}"
            raise ConfigError(msg)
        if self.trade_history < 1:
            msg = f"trade history must keep >= 1 trade, got {self.trade_history}"
            raise ConfigError(msg)


@dataclass(slots=True)
class _Window:
    """Changes buffered for one aggregated depth stream."""

    first_id: int = 0
    last_id: int = 0
    engine_us: int = 0
    bids: dict[int, int] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)


class Exchange:
    """All markets of the simulator, advanced together in simulated time.

    Args:
        config: the behaviour.
        start_us: the simulated clock at creation, microseconds since the epoch.
    """

    def __init__(self, config: SimConfig, start_us: int) -> None:
        self.config = config
        # With history, the markets run from earlier on, unseen, up to the start.
        begin = start_us - int(config.history_s * _S)
        self.now_us = begin
        rng = random.Random(config.seed)
        self.engines: dict[str, MarketEngine] = {}
        self.tapes: dict[str, MarketTape] = {}
        self.open_interest: dict[str, int] = {}
        self.wanted: set[str] = set()  # streams somebody listens to; set by the server
        self._windows: dict[tuple[str, DepthWindow], _Window] = {}
        self._quote_units: dict[str, DecimalUnits] = {}
        self._rng = random.Random(rng.random())
        self._heap: list[tuple[int, int, str, str]] = []
        self._seq = 0
        for spec in config.markets:
            engine = MarketEngine(
                spec, random.Random(rng.random()), rng.randrange(10**6, 10**9)
            )
            self.engines[spec.symbol] = engine
            self.tapes[spec.symbol] = MarketTape(begin, config.trade_history)
            step = Decimal(spec.tick_size) * Decimal(spec.step_size)
            self._quote_units[spec.symbol] = DecimalUnits(str(step.normalize()))
            self._schedule_next_step(spec, begin)
            if spec.is_perp:
                self.open_interest[spec.symbol] = rng.randint(20_000, 200_000)
                if config.liquidation_every_s:
                    gap = self._gap(config.liquidation_every_s)
                    self._push(begin + gap, "liq", spec.symbol)
        self.account = SimAccount(random.Random(rng.random()), self.engines)
        first_second = (begin // _S + 1) * _S
        self._push(first_second, "second", "")
        for window in DepthWindow:
            self._push(
                (begin // window.micros + 1) * window.micros, "window", window.value
            )
        self._push(begin + 60 * _S, "oi", "")
        if config.cascade_every_s:
            self._push(begin + self._gap(config.cascade_every_s), "cascade", "")
        for cascade in config.cascades_at:
            if cascade.symbol not in self.engines:
                msg = f"scheduled cascade on an unknown market {cascade.symbol!r}"
                raise ConfigError(msg)
            t = start_us + int(cascade.at_s * _S)
            for _ in range(cascade.count):
                self._push(t, "cascade_liq", f"{cascade.symbol}|{cascade.side.value}")
                t += self._rng.randint(50_000, 700_000)
        if config.account_every_s:
            self._push(begin + self._gap(config.account_every_s), "account", "")
        if begin < start_us:
            self.advance_to(start_us)  # what it printed then is only history now

    # Time.

    def advance_to(self, now_us: int) -> list[Output]:
        """Run every scheduled event up to ``now_us``; returns the frames produced."""
        out: list[Output] = []
        heap = self._heap
        while heap and heap[0][0] <= now_us:
            at, _, kind, arg = heapq.heappop(heap)
            self.now_us = at
            if kind == "step":
                engine = self.engines[arg]
                self._book_event(engine, engine.step(at), out)
                self._schedule_next_step(engine.spec, at)
            elif kind == "window":
                self._flush_windows(DepthWindow(arg), at, out)
                window_us = DepthWindow(arg).micros
                self._push(at + window_us, "window", arg)
            elif kind == "second":
                self._every_second(at, out)
                self._push(at + _S, "second", "")
            elif kind == "oi":
                self._emit_open_interest(at, out)
                self._push(at + 60 * _S, "oi", "")
            elif kind == "liq":
                self._liquidate(arg, at, out, big=False)
                every = self.config.liquidation_every_s or 1.0
                self._push(at + self._gap(every), "liq", arg)
            elif kind == "cascade":
                self._start_cascade(at)
                every = self.config.cascade_every_s or 1.0
                self._push(at + self._gap(every), "cascade", "")
            elif kind == "cascade_liq":
                symbol, _, side = arg.partition("|")
                self._liquidate(symbol, at, out, big=True, side=side or None)
            elif kind == "account":
                self._account_action(at, out)
                every = self.config.account_every_s or 1.0
                self._push(at + self._gap(every), "account", "")
        self.now_us = max(self.now_us, now_us)
        return out

    def _push(self, at_us: int, kind: str, arg: str) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at_us, self._seq, kind, arg))

    def _gap(self, mean_s: float) -> int:
        return max(1, int(self._rng.expovariate(1.0 / mean_s) * _S))

    def _schedule_next_step(self, spec: MarketSpec, now_us: int) -> None:
        rate = spec.events_per_s * self.config.rate_scale
        engine_rng = self.engines[spec.symbol]._rng
        self._push(
            now_us + max(1, int(engine_rng.expovariate(rate) * _S)), "step", spec.symbol
        )

    # Book events and what derives from them.

    def _book_event(
        self, engine: MarketEngine, change: BookChange, out: list[Output]
    ) -> None:
        symbol = engine.spec.symbol
        at = change.engine_us
        wanted = self.wanted
        stream = f"depth.{symbol}"
        if stream in wanted:
            out.append(
                (
                    stream,
                    self._depth(
                        engine,
                        change.update_id,
                        change.update_id,
                        at,
                        change.bids,
                        change.asks,
                    ),
                )
            )
        for window in DepthWindow:
            if f"depth.{window.value}.{symbol}" in wanted:
                self._buffer(symbol, window, change)
        if change.fills:
            self._prints(engine, change, out)
        if f"bookTicker.{symbol}" in wanted and self._touches_top(engine, change):
            out.append((f"bookTicker.{symbol}", self.book_ticker(symbol)))

    @staticmethod
    def _touches_top(engine: MarketEngine, change: BookChange) -> bool:
        bid, ask = engine.best_bid(), engine.best_ask()
        if change.bids and (bid is None or max(change.bids) >= bid):
            return True
        return bool(change.asks) and (ask is None or min(change.asks) <= ask)

    def _depth(
        self,
        engine: MarketEngine,
        first: int,
        last: int,
        at: int,
        bids: dict[int, int],
        asks: dict[int, int],
    ) -> Depth:
        fp, fl = engine.prices.format, engine.lots.format
        return Depth(
            E=at + _EMIT_DELAY_US,
            s=engine.spec.symbol,
            a=[(fp(p), fl(q)) for p, q in sorted(asks.items())],
            b=[(fp(p), fl(q)) for p, q in sorted(bids.items())],
            U=first,
            u=last,
            T=at,
        )

    def _buffer(self, symbol: str, window: DepthWindow, change: BookChange) -> None:
        key = (symbol, window)
        buf = self._windows.get(key)
        if buf is None:
            buf = self._windows[key] = _Window(change.update_id)
        if not buf.first_id:
            buf.first_id = change.update_id
        buf.last_id = change.update_id
        buf.engine_us = change.engine_us
        buf.bids.update(change.bids)
        buf.asks.update(change.asks)

    def _flush_windows(self, window: DepthWindow, at: int, out: list[Output]) -> None:
        for (symbol, w), buf in self._windows.items():
            if w is not window or not buf.first_id:
                continue
            stream = f"depth.{window.value}.{symbol}"
            if stream in self.wanted:
                depth = self._depth(
                    self.engines[symbol],
                    buf.first_id,
                    buf.last_id,
                    buf.engine_us,
                    buf.bids,
                    buf.asks,
                )
                out.append((stream, msgspec.structs.replace(depth, E=at)))
            self._windows[(symbol, w)] = _Window()

    def _prints(
        self, engine: MarketEngine, change: BookChange, out: list[Output]
    ) -> None:
        symbol = engine.spec.symbol
        tape = self.tapes[symbol]
        at = change.engine_us
        stream = f"trade.{symbol}"
        for fill in change.fills:
            tape.recent.append(
                (fill.trade_id, fill.price, fill.lots, fill.buyer_maker, at)
            )
            for interval, bar in tape.add(at, fill.price, fill.lots):
                self._emit_kline(symbol, interval, bar, True, at, out)
            if engine.spec.is_perp and self._rng.random() < 0.5:
                delta = fill.lots if self._rng.random() < 0.55 else -fill.lots
                self.open_interest[symbol] = max(0, self.open_interest[symbol] + delta)
            if stream in self.wanted:
                out.append(
                    (
                        stream,
                        Trade(
                            E=at + _EMIT_DELAY_US,
                            s=symbol,
                            p=engine.prices.format(fill.price),
                            q=engine.lots.format(fill.lots),
                            b=str(self._rng.randrange(10**10, 10**11)),
                            a=str(self._rng.randrange(10**10, 10**11)),
                            t=fill.trade_id,
                            T=at,
                            m=fill.buyer_maker,
                        ),
                    )
                )
        self._private(self.account.on_public_fills(symbol, change.fills, at), out)

    # Once a second: klines, tickers, mark prices.

    def _every_second(self, at: int, out: list[Output]) -> None:
        for symbol, tape in self.tapes.items():
            for interval, bar in tape.roll(at):
                self._emit_kline(symbol, interval, bar, True, at, out)
            for interval, bar in tape.bars.items():
                if bar.changed:
                    self._emit_kline(symbol, interval, bar, False, at, out)
                    bar.changed = False
            if f"ticker.{symbol}" in self.wanted:
                ticker = self._ticker(symbol, at)
                if ticker is not None:
                    out.append((f"ticker.{symbol}", ticker))
            if (
                self.engines[symbol].spec.is_perp
                and f"markPrice.{symbol}" in self.wanted
            ):
                out.append((f"markPrice.{symbol}", self._mark_price(symbol, at)))

    def _emit_kline(
        self,
        symbol: str,
        interval: KlineInterval,
        bar: Bar,
        closed: bool,
        at: int,
        out: list[Output],
    ) -> None:
        stream = f"kline.{interval.value}.{symbol}"
        if stream not in self.wanted:
            return
        engine = self.engines[symbol]
        fp = engine.prices.format
        out.append(
            (
                stream,
                Kline(
                    E=at + _EMIT_DELAY_US,
                    s=symbol,
                    t=format_kline_time(bar.start_us),
                    T=format_kline_time(bar.end_us),
                    o=fp(bar.open),
                    c=fp(bar.close),
                    h=fp(bar.high),
                    l=fp(bar.low),
                    v=engine.lots.format(bar.volume),
                    n=bar.trades,
                    X=closed,
                ),
            )
        )

    def _ticker(self, symbol: str, at: int) -> Ticker | None:
        stats = self.tapes[symbol].stats_24h(at)
        if stats is None:
            return None
        first, last, high, low, volume, quote, trades = stats
        engine = self.engines[symbol]
        fp = engine.prices.format
        return Ticker(
            E=at + _EMIT_DELAY_US,
            s=symbol,
            o=fp(first),
            c=fp(last),
            h=fp(high),
            l=fp(low),
            v=engine.lots.format(volume),
            V=self._quote_units[symbol].format(quote),
            n=trades,
        )

    def _mark_price(self, symbol: str, at: int) -> MarkPrice:
        engine = self.engines[symbol]
        mark = round(engine.mid())
        if engine.spec.market_type == "PREDICTION":
            return MarkPrice(
                E=at + _EMIT_DELAY_US, s=symbol, p=engine.prices.format(mark), T=at
            )
        index = engine.prices.to_decimal(1) * Decimal(repr(round(engine.fair, 4)))
        premium = (engine.prices.to_decimal(mark) - index) / index
        funding = max(Decimal("-0.001"), min(Decimal("0.001"), premium / 8))
        next_ms = (at // 1000 // _HOUR_MS + 1) * _HOUR_MS
        return MarkPrice(
            E=at + _EMIT_DELAY_US,
            s=symbol,
            p=engine.prices.format(mark),
            f=f"{funding.quantize(Decimal('0.0000001')):f}",
            i=f"{index.quantize(Decimal('0.0001')):f}",
            n=next_ms,
            T=at,
        )

    def _emit_open_interest(self, at: int, out: list[Output]) -> None:
        for symbol, lots in self.open_interest.items():
            if f"openInterest.{symbol}" in self.wanted:
                oi = self.engines[symbol].lots.format(lots)
                out.append(
                    (
                        f"openInterest.{symbol}",
                        OpenInterest(E=at + _EMIT_DELAY_US, s=symbol, o=oi),
                    )
                )

    # Liquidations.

    def _start_cascade(self, at: int) -> None:
        perps = sorted(
            s for s, e in self.engines.items() if e.spec.market_type == "PERP"
        )
        if not perps:
            return
        symbol = self._rng.choice(perps)
        t = at
        for _ in range(self._rng.randint(12, 40)):
            t += self._rng.randint(50_000, 700_000)
            self._push(t, "cascade_liq", f"{symbol}|")

    def _liquidate(
        self,
        symbol: str,
        at: int,
        out: list[Output],
        *,
        big: bool,
        side: str | None = None,
    ) -> None:
        engine = self.engines[symbol]
        seller = self._rng.random() < (0.8 if big else 0.5)
        if side is not None:
            seller = side == Side.ASK.value
        lots = self._rng.randint(20, 120) if big else self._rng.randint(1, 30)
        change = engine.market_order(not seller, lots, at)
        self._book_event(engine, change, out)
        if not change.fills:
            return
        filled = sum(f.lots for f in change.fills)
        worst = change.fills[-1].price
        self.open_interest[symbol] = max(0, self.open_interest[symbol] - filled)
        event = Liquidation(
            E=at + _EMIT_DELAY_US,
            q=engine.lots.format(filled),
            p=engine.prices.format(worst),
            S=Side.ASK if seller else Side.BID,
            s=symbol,
            T=at,
        )
        for stream in ("liquidation", f"liquidation.{symbol}"):
            if stream in self.wanted:
                out.append((stream, event))

    # The account.

    def _account_action(self, at: int, out: list[Output]) -> None:
        events, order = self.account.act(at)
        self._private(events, out)
        if order is not None:
            self._account_market_order(order, at, out)

    def _account_market_order(
        self, order: MarketOrder, at: int, out: list[Output]
    ) -> None:
        engine = self.engines[order.symbol]
        change = engine.market_order(order.taker_buys, order.lots, at)
        self._book_event(engine, change, out)
        self._private(self.account.on_taker_fills(order, change.fills, at), out)

    def _private(self, events: Iterable[PrivateEvent], out: list[Output]) -> None:
        for event in events:
            channel = _PRIVATE_CHANNEL[type(event)]
            for stream in (channel, f"{channel}.{event.s}"):
                if stream in self.wanted:
                    out.append((stream, event))

    # REST views.

    def book_ticker(self, symbol: str) -> BookTicker:
        """The current top of book as a ``bookTicker`` record."""
        engine = self.engines[symbol]
        bid, ask = engine.best_bid(), engine.best_ask()
        fp, fl = engine.prices.format, engine.lots.format
        at = self.now_us
        return BookTicker(
            E=at + _EMIT_DELAY_US,
            s=symbol,
            a=None if ask is None else fp(ask),
            A=None if ask is None else fl(engine.asks[ask]),
            b=None if bid is None else fp(bid),
            B=None if bid is None else fl(engine.bids[bid]),
            u=engine.update_id,
            T=at,
        )

    def depth_snapshot(self, symbol: str, limit: int = 1000) -> DepthSnapshot:
        """``GET /api/v1/depth``: both sides ascending (best bid last), as live."""
        engine = self.engines[symbol]
        fp, fl = engine.prices.format, engine.lots.format
        bids = list(engine.bids.items())[-limit:]
        asks = list(engine.asks.items())[:limit]
        return DepthSnapshot(
            asks=[(fp(p), fl(q)) for p, q in asks],
            bids=[(fp(p), fl(q)) for p, q in bids],
            lastUpdateId=engine.update_id,
            timestamp=self.now_us,
        )

    def markets(self) -> list[Market]:
        """``GET /api/v1/markets``."""
        rows = []
        for spec in self.config.markets:
            filters = MarketFilters(
                PriceFilter(spec.tick_size, spec.tick_size),
                QuantityFilter(spec.step_size, spec.step_size),
            )
            rows.append(
                Market(
                    spec.symbol,
                    spec.base,
                    spec.quote,
                    spec.market_type,
                    filters,
                    "Open",
                    _HOUR_MS if spec.is_perp else None,
                    True,
                    "2024-01-16T00:00:00",
                )
            )
        return rows

    def klines(
        self, symbol: str, interval: KlineInterval, start_s: int, end_s: int | None
    ) -> list[KlineRow]:
        """``GET /api/v1/klines`` from closed and current bars that traded."""
        tape, engine = self.tapes[symbol], self.engines[symbol]
        fp = engine.prices.format
        bars = [*tape.history[interval], tape.bars[interval]]
        end_us = (end_s if end_s is not None else self.now_us // _S + 1) * _S
        return [
            KlineRow(
                start=format_rest_time(b.start_us),
                end=format_rest_time(b.end_us),
                volume=engine.lots.format(b.volume),
                quoteVolume=self._quote_units[symbol].format(b.quote),
                trades=b.trades,
                open=fp(b.open),
                high=fp(b.high),
                low=fp(b.low),
                close=fp(b.close),
            )
            for b in bars
            if b.trades and b.start_us >= start_s * _S and b.start_us < end_us
        ]

    def mark_prices(self, symbol: str | None) -> list[MarkPriceRow]:
        """``GET /api/v1/markPrices``."""
        rows = []
        for name, engine in self.engines.items():
            if engine.spec.is_perp and symbol in (None, name):
                mark = self._mark_price(name, self.now_us)
                rows.append(MarkPriceRow(name, mark.p, mark.f, mark.i, mark.n))
        return rows

    def funding_rows(
        self, symbol: str, limit: int, offset: int
    ) -> list[dict[str, str]]:
        """``GET /api/v1/fundingRates``: settled intervals, newest first.

        The simulator keeps no funding history: every past interval shows the
        current estimate (the interval ends are the exchange's, whole hours).
        """
        mark = self._mark_price(symbol, self.now_us)
        if mark.f is None:
            return []
        last_ms = self.now_us // 1000 // _HOUR_MS * _HOUR_MS
        return [
            {
                "symbol": symbol,
                "intervalEndTimestamp": format_rest_time(
                    (last_ms - k * _HOUR_MS) * 1000
                ).replace(" ", "T"),
                "fundingRate": mark.f,
            }
            for k in range(offset, offset + limit)
        ]

    def open_interest_rows(self, symbol: str | None) -> list[OpenInterestRow]:
        """``GET /api/v1/openInterest``; ``timestamp`` in milliseconds."""
        return [
            OpenInterestRow(
                name, self.now_us // 1000, self.engines[name].lots.format(lots)
            )
            for name, lots in self.open_interest.items()
            if symbol in (None, name)
        ]

    def ticker_row(self, symbol: str) -> TickerRow:
        """``GET /api/v1/ticker`` (24 h)."""
        engine = self.engines[symbol]
        ticker = self._ticker(symbol, self.now_us)
        if ticker is None:
            price = engine.prices.format(round(engine.mid()))
            zero_q = engine.lots.format(0)
            return TickerRow(
                symbol, price, price, "0", "0", price, price, zero_q, "0", 0
            )
        change = Decimal(ticker.c) - Decimal(ticker.o)
        pct = (change / Decimal(ticker.o)).quantize(Decimal("0.000001"))
        return TickerRow(
            symbol,
            ticker.o,
            ticker.c,
            str(change),
            str(pct),
            ticker.h,
            ticker.l,
            ticker.v,
            ticker.V,
            ticker.n,
        )

    def trade_rows(self, symbol: str, limit: int, offset: int = 0) -> list[TradeRow]:
        """``GET /api/v1/trades`` (and ``/history``): prints, oldest first.

        ``limit`` prints before the ``offset`` latest ones; ms timestamps.
        """
        engine = self.engines[symbol]
        quote = self._quote_units[symbol].format
        kept = self.tapes[symbol].recent
        end = len(kept) - offset
        recent = list(itertools.islice(kept, max(0, end - limit), max(0, end)))
        return [
            TradeRow(
                price=engine.prices.format(price),
                quantity=engine.lots.format(lots),
                quoteQuantity=quote(price * lots),
                timestamp=at // 1000,
                isBuyerMaker=buyer_maker,
                id=trade_id,
            )
            for trade_id, price, lots, buyer_maker, at in recent
        ]

    def position_snapshot(self, symbol: str | None) -> list[PositionUpdate]:
        """Open positions, sent without ``e`` when positionUpdate is subscribed."""
        return self.account.position_rows(symbol, self.now_us)


_PRIVATE_CHANNEL: dict[type, str] = {
    OrderUpdate: "account.orderUpdate",
    PositionUpdate: "account.positionUpdate",
    RfqUpdate: "account.rfqUpdate",
}
