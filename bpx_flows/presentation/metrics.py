"""Prometheus metrics observed from flow outputs, and the sink that does it.

``observe`` dispatches on the record's type; a type without metrics is ignored. The
metrics themselves are declared once, in ``connectors.metrics``.
"""

from __future__ import annotations

from functools import singledispatch
from typing import Any

from bytewax.outputs import DynamicSink, StatelessSinkPartition

from bpx_flows.connectors import metrics as m
from bpx_flows.connectors.clock import now_us
from bpx_flows.operators.account import AutoCloseAlert
from bpx_flows.operators.book_state import BookIntegrity, BookStats
from bpx_flows.operators.bursts import BurstAlert, BurstPhase, LiquidationStats
from bpx_flows.operators.candles import Candle
from bpx_flows.operators.derivatives import DerivativesView
from bpx_flows.operators.orders import OrderFill, OrderState
from bpx_flows.operators.positions import MarginAlert, PositionView
from bpx_flows.operators.rfqs import RfqOutcome

__all__ = ["MetricsSink", "observe"]


@singledispatch
def observe(record: Any, flow: str = "") -> None:
    """Update the metrics for one output record; unknown records are ignored."""


@observe.register
def _(record: BookStats, flow: str = "") -> None:
    symbol = record.symbol
    if record.best_bid is not None:
        m.BOOK_BEST_BID.labels(symbol).set(float(record.best_bid))
    if record.best_ask is not None:
        m.BOOK_BEST_ASK.labels(symbol).set(float(record.best_ask))
    if record.spread_bps is not None:
        m.BOOK_SPREAD_BPS.labels(symbol).set(float(record.spread_bps))
    if record.imbalance is not None:
        m.BOOK_IMBALANCE.labels(symbol).set(float(record.imbalance))
    for band in record.bands:
        bps = str(band.bps)
        m.BOOK_DEPTH_QUOTE.labels(symbol, "bid", bps).set(float(band.bid_quote))
        m.BOOK_DEPTH_QUOTE.labels(symbol, "ask", bps).set(float(band.ask_quote))
    m.BOOK_LEVELS.labels(symbol, "bid").set(record.bid_levels)
    m.BOOK_LEVELS.labels(symbol, "ask").set(record.ask_levels)
    _count_mismatches(symbol, record.tickers_mismatched)
    _lag(flow or "book", record.engine_us)


@observe.register
def _(record: BookIntegrity, flow: str = "") -> None:
    m.BOOK_INTEGRITY.labels(record.symbol, record.kind.value).inc()


@observe.register
def _(record: Candle, flow: str = "") -> None:
    labels = (record.symbol, record.interval.value)
    if record.revision:  # an older window corrected: not the last candle
        m.CANDLE_CORRECTIONS.labels(*labels).inc()
    elif not record.filled:
        m.CANDLE_CLOSE.labels(*labels).set(float(record.close))
        m.CANDLE_VOLUME.labels(*labels).set(float(record.volume))
        m.CANDLES.labels(*labels).inc()


@observe.register
def _(record: DerivativesView, flow: str = "") -> None:
    _derivatives(record)
    _lag(flow or "derivatives", record.event_us)


@observe.register
def _(record: LiquidationStats, flow: str = "") -> None:
    side = record.side.value.lower()
    m.LIQUIDATIONS.labels(record.symbol, side).inc()
    m.LIQUIDATION_NOTIONAL.labels(record.symbol, side).inc(float(record.notional))
    _lag(flow or "liquidations", record.event_us)


@observe.register
def _(record: BurstAlert, flow: str = "") -> None:
    side = record.side.value.lower()
    if record.phase is BurstPhase.STARTED:
        m.BURSTS.labels(record.symbol, side, record.severity.value).inc()
        m.BURST_ACTIVE.labels(record.symbol, side).set(1)
    else:
        m.BURST_ACTIVE.labels(record.symbol, side).set(0)


# The account.

_ORIGINS = frozenset(
    {
        "USER",
        "LIQUIDATION_AUTOCLOSE",
        "ADL_AUTOCLOSE",
        "COLLATERAL_CONVERSION",
        "SETTLEMENT_AUTOCLOSE",
        "BACKSTOP_LIQUIDITY_PROVIDER",
    }
)


@observe.register
def _(record: OrderState, flow: str = "") -> None:
    origin = record.origin if record.origin in _ORIGINS else "other"
    labels = (record.symbol, record.status.value, origin)
    m.ACCOUNT_ORDER_EVENTS.labels(*labels).inc()
    m.ACCOUNT_OPEN_ORDERS.labels(record.symbol).set(record.open_orders)
    _lag(flow or "account", record.engine_us)


@observe.register
def _(record: OrderFill, flow: str = "") -> None:
    liquidity = {True: "maker", False: "taker", None: "unknown"}[record.maker]
    m.ACCOUNT_FILLS.labels(record.symbol, liquidity).inc()
    side = record.side.value.lower()
    m.ACCOUNT_FILLED_QUOTE.labels(record.symbol, side).inc(float(record.quote))
    m.ACCOUNT_FEES.labels(record.symbol).inc(max(float(record.fee), 0.0))
    if record.slippage_bps is not None:
        m.ACCOUNT_SLIPPAGE.labels(record.symbol).observe(float(record.slippage_bps))


@observe.register
def _(record: PositionView, flow: str = "") -> None:
    symbol = record.symbol
    m.ACCOUNT_POSITION.labels(symbol).set(float(record.quantity))
    m.ACCOUNT_EXPOSURE.labels(symbol).set(float(record.exposure))
    m.ACCOUNT_UNREALIZED.labels(symbol).set(float(record.unrealized_pnl))
    m.ACCOUNT_MARGIN_USE.labels(symbol).set(
        0.0 if record.margin_use is None else float(record.margin_use)
    )
    distance = record.distance_to_liquidation_bps
    m.ACCOUNT_LIQUIDATION_DISTANCE.labels(symbol).set(
        float("nan") if distance is None else float(distance)
    )


@observe.register
def _(record: MarginAlert, flow: str = "") -> None:
    m.ACCOUNT_ALERTS.labels(record.symbol, "margin_use").inc()


@observe.register
def _(record: AutoCloseAlert, flow: str = "") -> None:
    m.ACCOUNT_ALERTS.labels(record.symbol, "auto_close").inc()


@observe.register
def _(record: RfqOutcome, flow: str = "") -> None:
    m.ACCOUNT_RFQS.labels(record.role.value, record.end.value).inc()
    if record.time_to_fill_us is not None:
        m.ACCOUNT_RFQ_TIME_TO_FILL.labels(record.role.value).observe(
            record.time_to_fill_us / 1e6
        )


def _derivatives(view: DerivativesView) -> None:
    symbol = view.symbol
    if view.mark is not None:
        m.MARK_PRICE.labels(symbol).set(float(view.mark))
    if view.premium_bps is not None:
        m.PREMIUM_BPS.labels(symbol).set(float(view.premium_bps))
    if view.funding_rate is not None:
        m.FUNDING_RATE.labels(symbol).set(float(view.funding_rate))
    if view.open_interest is not None:
        m.OPEN_INTEREST.labels(symbol).set(float(view.open_interest))
    if view.oi_notional is not None:
        m.OPEN_INTEREST_QUOTE.labels(symbol).set(float(view.oi_notional))
    m.JOIN_STALE.labels(symbol, "mark").set(int(view.mark_stale))
    m.JOIN_STALE.labels(symbol, "open_interest").set(int(view.oi_stale))


_MISMATCHES_SEEN: dict[str, int] = {}  # the book's running count, per symbol


def _count_mismatches(symbol: str, so_far: int) -> None:
    """The book reports a running count; the counter grows by what is new."""
    before = _MISMATCHES_SEEN.get(symbol, 0)
    _MISMATCHES_SEEN[symbol] = so_far
    new = so_far - before if so_far >= before else so_far  # a restarted book
    m.BOOK_TICKER_MISMATCHES.labels(symbol).inc(new)  # (0 too: the series exists)


def _lag(flow: str, engine_us: int) -> None:
    m.LAG.labels(flow).observe(max(0.0, (now_us() - engine_us) / 1e6))


class _MetricsPartition(StatelessSinkPartition[Any]):
    def __init__(self, flow: str) -> None:
        self._flow = flow

    def write_batch(self, items: list[Any]) -> None:
        for item in items:
            observe(item, self._flow)


class MetricsSink(DynamicSink[Any]):
    """Updates the Prometheus metrics from any flow's outputs.

    Partition: one per worker, all updating the process's registry (served by
    ``connectors.metrics.serve_metrics``; one port per process). Floats appear only
    here, at the metrics edge. Never ends; never fails on an unknown record.
    """

    def __init__(self, flow: str = "") -> None:
        self._flow = flow

    def build(
        self, step_id: str, worker_index: int, worker_count: int
    ) -> _MetricsPartition:
        """One partition per worker."""
        return _MetricsPartition(self._flow)
