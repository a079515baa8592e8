"""Every Prometheus metric of bpx-flows, declared once, and the exporter.

Names follow Prometheus conventions: ``bpx_`` prefix, base units (prices in quote
currency, quantities in base units, time in seconds) or an explicit unit suffix
(``_bps``, ``_ratio``, ``_quote``, ``_contracts``), counters for everything that counts
(``_total``), no ``_created`` series. Labels are bounded by what was subscribed:
``symbol``, ``side`` (always ``bid`` or ``ask``), ``interval``, ``band_bps``,
``stream``, ``connection``, ``reason``, ``cause``, ``kind``, ``severity``, ``sink``:
never an id or a free value.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Iterable, Iterator
from typing import Any

import prometheus_client
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["REGISTRY", "ConnectionCollector", "serve_metrics"]

# A ``_created`` series beside every counter and histogram doubles the series count
# and nobody charts it.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)


def _build_labels() -> tuple[str, str, str]:
    from importlib.metadata import PackageNotFoundError, version

    def of(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "unknown"

    return of("bpx-flows"), of("bytewax"), platform.python_version()


BUILD_INFO = Gauge(
    "bpx_build_info",
    "Always 1; the labels say which build runs",
    ["version", "bytewax", "python"],
    registry=REGISTRY,
)
BUILD_INFO.labels(*_build_labels()).set(1)

# The market.
BOOK_BEST_BID = Gauge(
    "bpx_book_best_bid", "Best bid price", ["symbol"], registry=REGISTRY
)
BOOK_BEST_ASK = Gauge(
    "bpx_book_best_ask", "Best ask price", ["symbol"], registry=REGISTRY
)
BOOK_SPREAD_BPS = Gauge(
    "bpx_book_spread_bps",
    "Spread relative to the mid, basis points",
    ["symbol"],
    registry=REGISTRY,
)
BOOK_IMBALANCE = Gauge(
    "bpx_book_imbalance",
    "Top-N quantity imbalance, -1..1",
    ["symbol"],
    registry=REGISTRY,
)
BOOK_DEPTH_QUOTE = Gauge(
    "bpx_book_depth_quote",
    "Resting notional within band_bps of the mid",
    ["symbol", "side", "band_bps"],
    registry=REGISTRY,
)
BOOK_LEVELS = Gauge(
    "bpx_book_levels", "Price levels held", ["symbol", "side"], registry=REGISTRY
)
BOOK_INTEGRITY = Counter(
    "bpx_book_integrity_events_total",
    "Book integrity events",
    ["symbol", "kind"],
    registry=REGISTRY,
)
BOOK_TICKER_MISMATCHES = Counter(
    "bpx_book_ticker_mismatches_total",
    "bookTicker frames that disagreed with the book",
    ["symbol"],
    registry=REGISTRY,
)
CANDLE_CLOSE = Gauge(
    "bpx_candle_close",
    "Close of the last closed candle",
    ["symbol", "interval"],
    registry=REGISTRY,
)
CANDLE_VOLUME = Gauge(
    "bpx_candle_volume",
    "Base volume of the last closed candle",
    ["symbol", "interval"],
    registry=REGISTRY,
)
CANDLES = Counter(
    "bpx_candles_total", "Closed candles", ["symbol", "interval"], registry=REGISTRY
)
CANDLE_CORRECTIONS = Counter(
    "bpx_candle_corrections_total",
    "Closed candles emitted again, corrected by trades fetched back after a gap",
    ["symbol", "interval"],
    registry=REGISTRY,
)
MARK_PRICE = Gauge("bpx_mark_price", "Mark price", ["symbol"], registry=REGISTRY)
PREMIUM_BPS = Gauge(
    "bpx_premium_bps", "Mark over index, basis points", ["symbol"], registry=REGISTRY
)
FUNDING_RATE = Gauge(
    "bpx_funding_rate",
    "Estimated funding per interval, a fraction",
    ["symbol"],
    registry=REGISTRY,
)
OPEN_INTEREST = Gauge(
    "bpx_open_interest_contracts",
    "Open interest, contracts",
    ["symbol"],
    registry=REGISTRY,
)
OPEN_INTEREST_QUOTE = Gauge(
    "bpx_open_interest_quote",
    "Open interest x mark, quote units",
    ["symbol"],
    registry=REGISTRY,
)
JOIN_STALE = Gauge(
    "bpx_join_stale",
    "1 when an input of the mark/OI join is stale",
    ["symbol", "input"],
    registry=REGISTRY,
)
LIQUIDATIONS = Counter(
    "bpx_liquidations_total", "Liquidations", ["symbol", "side"], registry=REGISTRY
)
LIQUIDATION_NOTIONAL = Counter(
    "bpx_liquidation_notional_total",
    "Liquidated notional, quote units",
    ["symbol", "side"],
    registry=REGISTRY,
)
BURSTS = Counter(
    "bpx_liquidation_bursts_total",
    "Liquidation bursts detected",
    ["symbol", "side", "severity"],
    registry=REGISTRY,
)
BURST_ACTIVE = Gauge(
    "bpx_liquidation_burst_active",
    "1 while a burst is in progress",
    ["symbol", "side"],
    registry=REGISTRY,
)
# The account (labels: symbol, status, origin, role, end, liquidity, kind).
ACCOUNT_ORDER_EVENTS = Counter(
    "bpx_account_order_events_total",
    "Order state changes, by the state reached and who placed the order",
    ["symbol", "status", "origin"],
    registry=REGISTRY,
)
ACCOUNT_OPEN_ORDERS = Gauge(
    "bpx_account_open_orders", "Open orders", ["symbol"], registry=REGISTRY
)
ACCOUNT_FILLS = Counter(
    "bpx_account_fills_total",
    "Fills of our orders",
    ["symbol", "liquidity"],
    registry=REGISTRY,
)
ACCOUNT_FILLED_QUOTE = Counter(
    "bpx_account_filled_quote_total",
    "Filled notional, quote units",
    ["symbol", "side"],
    registry=REGISTRY,
)
ACCOUNT_FEES = Counter(
    "bpx_account_fees_total",
    "Fees paid, in the fee asset's units",
    ["symbol"],
    registry=REGISTRY,
)
ACCOUNT_SLIPPAGE = Histogram(
    "bpx_account_fill_slippage_bps",
    "Fill price against the mid at fill time, basis points (positive = worse)",
    ["symbol"],
    buckets=(-10.0, -5.0, -2.0, -1.0, 0.0, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0),
    registry=REGISTRY,
)
ACCOUNT_POSITION = Gauge(
    "bpx_account_position_contracts",
    "Net position, base units (negative = short)",
    ["symbol"],
    registry=REGISTRY,
)
ACCOUNT_EXPOSURE = Gauge(
    "bpx_account_position_exposure_quote",
    "|position| x mark, quote units",
    ["symbol"],
    registry=REGISTRY,
)
ACCOUNT_UNREALIZED = Gauge(
    "bpx_account_unrealized_pnl_quote",
    "Unrealised PnL at the mark, quote units",
    ["symbol"],
    registry=REGISTRY,
)
ACCOUNT_MARGIN_USE = Gauge(
    "bpx_account_margin_use_ratio",
    "Maintenance requirement / equity of the position (1 = liquidation)",
    ["symbol"],
    registry=REGISTRY,
)
ACCOUNT_LIQUIDATION_DISTANCE = Gauge(
    "bpx_account_liquidation_distance_bps",
    "How far the mark can move against the position before liquidation, bps",
    ["symbol"],
    registry=REGISTRY,
)
ACCOUNT_ALERTS = Counter(
    "bpx_account_alerts_total",
    "Account alerts (margin use crossed a level, auto-close by the exchange)",
    ["symbol", "kind"],
    registry=REGISTRY,
)
ACCOUNT_RFQS = Counter(
    "bpx_account_rfqs_total",
    "RFQs that ended, by our role and how",
    ["role", "end"],
    registry=REGISTRY,
)
ACCOUNT_RFQ_TIME_TO_FILL = Histogram(
    "bpx_account_rfq_time_to_fill_seconds",
    "First RFQ event to fill, engine time",
    ["role"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0),
    registry=REGISTRY,
)
# The pipeline.
LAG = Histogram(
    "bpx_processing_lag_seconds",
    "Engine time to processing time",
    ["flow"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
SINK_ERRORS = Counter(
    "bpx_sink_errors_total",
    "Failed sink writes (retried or dropped)",
    ["sink"],
    registry=REGISTRY,
)
SINK_DROPPED = Counter(
    "bpx_sink_dropped_total", "Items a sink gave up on", ["sink"], registry=REGISTRY
)
SINK_QUEUE = Gauge(
    "bpx_sink_queue_items",
    "Items waiting in a sink's queue",
    ["sink"],
    registry=REGISTRY,
)
KAFKA_MESSAGES = Counter(
    "bpx_kafka_messages_total",
    "Records sent to Kafka, by what became of them: delivered or failed",
    ["topic", "outcome"],
    registry=REGISTRY,
)
KAFKA_QUEUED = Gauge(
    "bpx_kafka_queued_messages",
    "Records handed to the Kafka producer and not yet delivered or failed",
    ["topic"],
    registry=REGISTRY,
)
KAFKA_LAG = Gauge(
    "bpx_kafka_replay_lag_messages",
    "Messages of a topic partition a replay has not read yet (high watermark - next)",
    ["topic", "partition"],
    registry=REGISTRY,
)


class ConnectionCollector(Collector):
    """Exports the counters the live connections keep, read at scrape time.

    Args:
        connections: returns the live ``Connection`` objects (e.g. of a source's
            partitions), as a list or as ``{connection name: Connection}``; called
            on every scrape. Named connections also export whether they are
            connected and how long ago their last frame arrived.
    """

    def __init__(self, connections: Any) -> None:
        self._connections = connections

    def collect(self) -> Iterator[Any]:
        """Frames, bytes, dead letters, error frames, reconnects, snapshots, pending."""
        found = self._connections()
        named = dict(found) if isinstance(found, dict) else {}
        conns = list(named.values()) if named else _as_list(found)
        yield from _backfill_metrics(conns)
        yield from _totals(conns)
        yield from _per_connection(named)


def _totals(conns: list[Any]) -> Iterator[Any]:
    """What every connection counted, summed."""
    labelled = {
        "frames": CounterMetricFamily(
            "bpx_frames", "Data frames received", labels=["stream"]
        ),
        "invalid": CounterMetricFamily(
            "bpx_frames_rejected",
            "Frames rejected as dead letters, by reason",
            labels=["reason"],
        ),
        "errors": CounterMetricFamily(
            "bpx_server_errors", "Error frames from the exchange", labels=["code"]
        ),
        "disconnects": CounterMetricFamily(
            "bpx_reconnects", "Lost connections", labels=["cause"]
        ),
        "resyncs": CounterMetricFamily(
            "bpx_book_resyncs", "Book resyncs at the connector", labels=["stream"]
        ),
    }
    totals: dict[str, dict[Any, float]] = {}
    bytes_total = snapshots_total = pending_total = 0.0
    for conn in conns:
        stats = conn.session.stats
        _add(totals, "frames", stats.frames)
        _add(totals, "invalid", stats.bad_frames)
        _add(totals, "errors", stats.server_errors)
        _add(totals, "disconnects", conn.stats.disconnects)
        syncs = dict.copy(conn.books.syncs)
        _add(totals, "resyncs", {k: s.stats.resyncs for k, s in syncs.items()})
        bytes_total += stats.bytes_received
        snapshots_total += conn.stats.snapshots
        pending_total += conn.pending
    for name, family in labelled.items():
        for key, value in totals.get(name, {}).items():
            family.add_metric([str(key)], value)
        yield family
    received = CounterMetricFamily("bpx_received_bytes", "Frame bytes received")
    received.add_metric([], bytes_total)
    snapshots = CounterMetricFamily("bpx_depth_snapshots", "REST depth snapshots")
    snapshots.add_metric([], snapshots_total)
    pending = GaugeMetricFamily(
        "bpx_source_pending_records", "Records waiting for the flow"
    )
    pending.add_metric([], pending_total)
    yield from (received, snapshots, pending)


def _per_connection(named: dict[str, Any]) -> Iterator[Any]:
    """Whether each named connection is up, and how long since its last frame."""
    up = GaugeMetricFamily(
        "bpx_connection_up",
        "1 while the connection's WebSocket is open",
        labels=["connection"],
    )
    age = GaugeMetricFamily(
        "bpx_connection_last_frame_age_seconds",
        "Seconds since the connection's last frame (none yet: since it started)",
        labels=["connection"],
    )
    now_us = time.time_ns() // 1000
    for name, conn in sorted(named.items()):
        up.add_metric([name], 1.0 if conn.connected else 0.0)
        last = conn.last_frame_us or conn.started_us
        age.add_metric([name], max(0.0, (now_us - last) / 1e6))
    yield from (up, age)


def _backfill_metrics(connections: list[Any]) -> Iterator[Any]:
    """The trade backfill of the connections that do it."""
    gaps_open = GaugeMetricFamily(
        "bpx_trade_gaps_open", "Gaps in trade ids being fetched back from REST"
    )
    missing = GaugeMetricFamily(
        "bpx_trades_missing", "Trades known missed and not fetched back yet"
    )
    backfills = CounterMetricFamily(
        "bpx_trade_backfills", "Trade-id gaps ended, by outcome", labels=["outcome"]
    )
    trackers = [c.gaps for c in connections if getattr(c, "gaps", None) is not None]
    gaps_open.add_metric([], sum(g.open for g in trackers))
    missing.add_metric([], sum(g.missing() for g in trackers))
    backfills.add_metric(["filled"], sum(g.filled for g in trackers))
    backfills.add_metric(["unfillable"], sum(g.unfillable for g in trackers))
    yield from (gaps_open, missing, backfills)


class RestBudgetCollector(Collector):
    """The process's shared REST budget (``connectors.rest.PROCESS_BUDGET``)."""

    def collect(self) -> Iterator[Any]:
        """Requests granted so far, and those waiting for their slot now."""
        from .rest import HISTORY_BUDGET, PROCESS_BUDGET

        granted = CounterMetricFamily(
            "bpx_rest_requests", "REST requests sent within the process's budget"
        )
        granted.add_metric([], PROCESS_BUDGET.granted)
        backlog = GaugeMetricFamily(
            "bpx_rest_backlog_requests",
            "REST requests waiting for the process's budget (spaced out)",
        )
        backlog.add_metric([], PROCESS_BUDGET.waiting)
        limit = GaugeMetricFamily(
            "bpx_rest_budget_per_minute", "The process's REST budget, requests a minute"
        )
        limit.add_metric([], PROCESS_BUDGET.per_minute)
        history = CounterMetricFamily(
            "bpx_rest_history_requests",
            "Historical trade and candle requests sent within their own budget",
        )
        history.add_metric([], HISTORY_BUDGET.granted)
        history_backlog = GaugeMetricFamily(
            "bpx_rest_history_backlog_requests",
            "Historical requests waiting for their budget (30 a minute at Backpack)",
        )
        history_backlog.add_metric([], HISTORY_BUDGET.waiting)
        yield from (granted, backlog, limit, history, history_backlog)


REGISTRY.register(RestBudgetCollector())


def _as_list(items: Iterable[Any]) -> list[Any]:
    return list(items)


def _add(
    totals: dict[str, dict[Any, float]], name: str, values: dict[Any, int]
) -> None:
    target = totals.setdefault(name, {})
    # The connections' event loops update these counters on other threads while
    # a scrape reads them: dict.copy is one C call under the interpreter lock, so
    # the copy is consistent and the iteration below cannot see the dict change.
    for key, value in dict.copy(values).items():
        target[key] = target.get(key, 0.0) + value


def serve_metrics(port: int, host: str = "127.0.0.1") -> int:
    """Serve ``/metrics`` on ``host:port`` (0 picks a free port); returns the port."""
    server, _thread = start_http_server(port, addr=host, registry=REGISTRY)
    return int(server.server_address[1])
