"""What ``top`` shows, kept from the flow's outputs: the latest of each, bounded.

``TopState.apply`` takes a batch of records from the flow's sink (a worker thread)
and only assigns or appends: the flow never waits for the screen. The screen takes
a ``snapshot`` of one market a few times a second (copies, under the same lock) and
draws it on its own thread.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from bpx_flows.connectors.kinds import kind_of
from bpx_flows.operators.book_state import BookIntegrity, BookLadder, BookStats
from bpx_flows.operators.bursts import BurstAlert, BurstPhase, LiquidationStats
from bpx_flows.operators.candles import Candle, HistoricalCandle, KlineMismatch
from bpx_flows.operators.candles.trade_ids import TradeGap
from bpx_flows.operators.derivatives import DerivativesView
from bpx_flows.operators.orders import OrderFill, OrderState
from bpx_flows.operators.positions import MarginAlert, PositionView

__all__ = ["MarketSnapshot", "MarketState", "TopState"]

CANDLES_KEPT = 240  # per interval: wider than any terminal
LIQUIDATIONS_KEPT = 50
LATENCIES_KEPT = 512
FILLS_KEPT = 20


@dataclass
class MarketState:
    """One market's latest records."""

    stats: BookStats | None = None
    ladder: BookLadder | None = None
    candles: dict[str, dict[int, Candle | HistoricalCandle]] = field(
        default_factory=dict
    )
    derivatives: DerivativesView | None = None
    first_open_interest: Any = None
    liquidations: deque[LiquidationStats] = field(
        default_factory=lambda: deque(maxlen=LIQUIDATIONS_KEPT)
    )
    bursts: dict[str, BurstAlert] = field(default_factory=dict)  # active, by side
    integrity: Counter[str] = field(default_factory=Counter)
    position: PositionView | None = None
    orders: dict[str, OrderState] = field(default_factory=dict)  # open, by id
    fills: deque[OrderFill] = field(default_factory=lambda: deque(maxlen=FILLS_KEPT))
    margin_alert: MarginAlert | None = None


@dataclass(frozen=True)
class MarketSnapshot:
    """A copy of one market's state, safe to draw while the flow goes on."""

    symbol: str
    stats: BookStats | None
    ladder: BookLadder | None
    candles: dict[str, list[Candle | HistoricalCandle]]
    derivatives: DerivativesView | None
    first_open_interest: Any
    liquidations: list[LiquidationStats]
    bursts: list[BurstAlert]
    integrity: dict[str, int]
    position: PositionView | None = None
    orders: list[OrderState] = field(default_factory=list)
    fills: list[OrderFill] = field(default_factory=list)
    margin_alert: MarginAlert | None = None


class TopState:
    """Every market's latest records, the record rate and recent warnings."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.markets: dict[str, MarketState] = {}
        self.records = 0
        self.kinds: Counter[str] = Counter()
        self.latencies_us: deque[int] = deque(maxlen=LATENCIES_KEPT)
        self.warnings: deque[str] = deque(maxlen=5)
        self.started = time.monotonic()

    def apply(self, records: list[Any]) -> None:
        """Keep what a batch of outputs says (called by the flow's sink)."""
        with self._lock:
            self.records += len(records)
            for record in records:
                self._one(record)

    def warn(self, line: str) -> None:
        """A log line worth showing (the log's WARNING and above)."""
        with self._lock:
            self.warnings.append(line)

    def _market(self, symbol: str) -> MarketState:
        market = self.markets.get(symbol)
        if market is None:
            market = self.markets[symbol] = MarketState()
        return market

    def _one(self, record: Any) -> None:
        self.kinds[kind_of(record)] += 1
        kind = type(record)
        symbol = getattr(record, "symbol", None)
        if not isinstance(symbol, str):
            return
        market = self._market(symbol)
        if kind is BookStats:
            market.stats = record
            self.latencies_us.append(record.latency_us)
        elif kind is BookLadder:
            market.ladder = record
        elif kind is Candle or kind is HistoricalCandle:
            window = market.candles.setdefault(str(record.interval), {})
            window[record.start_us] = record  # a revision replaces its window
            if len(window) > CANDLES_KEPT:
                del window[min(window)]
        elif kind is DerivativesView:
            market.derivatives = record
            if market.first_open_interest is None:
                market.first_open_interest = record.open_interest
        elif kind is LiquidationStats:
            market.liquidations.append(record)
        elif kind is BurstAlert:
            if record.phase is BurstPhase.STARTED:
                market.bursts[record.side.value] = record
            else:
                market.bursts.pop(record.side.value, None)
        elif kind is BookIntegrity:
            market.integrity[record.kind.value] += 1
        elif kind is TradeGap or kind is KlineMismatch:
            market.integrity[kind_of(record)] += 1
        else:
            self._account(market, record)

    def _account(self, market: MarketState, record: Any) -> None:
        kind = type(record)
        if kind is PositionView:
            market.position = record
        elif kind is OrderState:
            if record.status.is_final:
                market.orders.pop(record.order_id, None)
            else:
                market.orders[record.order_id] = record
        elif kind is OrderFill:
            market.fills.append(record)
        elif kind is MarginAlert:
            market.margin_alert = record

    def symbols(self) -> list[str]:
        """Markets with something to show, books and candles first."""
        with self._lock:
            return sorted(
                self.markets,
                key=lambda s: (
                    self.markets[s].stats is None and not self.markets[s].candles,
                    s,
                ),
            )

    def snapshot(self, symbol: str) -> MarketSnapshot:
        """A copy of ``symbol``'s state (empty if nothing arrived for it yet)."""
        with self._lock:
            market = self.markets.get(symbol) or MarketState()
            return MarketSnapshot(
                symbol=symbol,
                stats=market.stats,
                ladder=market.ladder,
                candles={
                    name: [window[start] for start in sorted(window)]
                    for name, window in market.candles.items()
                },
                derivatives=market.derivatives,
                first_open_interest=market.first_open_interest,
                liquidations=list(market.liquidations),
                bursts=list(market.bursts.values()),
                integrity=dict(market.integrity),
                position=market.position,
                orders=list(market.orders.values()),
                fills=list(market.fills),
                margin_alert=market.margin_alert,
            )

    def totals(self) -> tuple[int, list[int], list[str]]:
        """Records so far, recent receive latencies (µs) and recent warnings."""
        with self._lock:
            return self.records, list(self.latencies_us), list(self.warnings)

    def integrity_events(self) -> int:
        """Integrity events of every market so far (read under the sink's lock)."""
        with self._lock:
            return sum(sum(m.integrity.values()) for m in self.markets.values())
