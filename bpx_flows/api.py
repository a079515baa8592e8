"""The public Python API: what a Bytewax user imports to build their own dataflow.

Everything here is stable within a minor version; anything imported from elsewhere
in ``bpx_flows`` is internal and may move. ``docs/api.md`` shows each part in use, and
``docs/examples/custom_flow.py`` (run by the test suite) is a whole dataflow built
from it.

- **Sources** (records in): ``BackpackSource`` (live, any endpoint), ``ReplaySource``
  (recordings), with ``SourceConfig``/``ConnectionConfig``, ``Credentials`` for the
  signed ``account.*`` streams and ``parse_streams`` for stream names.
- **Steps** (Bytewax operators on the records stream, each keyed by symbol):
  ``analyze_books``, ``roll_candles``, ``join_mark_oi``, ``detect_bursts``,
  ``track_account``, with their configurations.
- **Records** they emit (frozen msgspec structs): ``BookStats``, ``Candle``,
  ``DerivativesView``, ``LiquidationStats``, ``BurstAlert``, ``OrderFill``...
- **Sinks** (records out): ``JsonLinesSink``, ``ParquetSink``, ``MetricsSink`` (with
  ``serve_metrics``), ``WebhookSink``, ``LineSink`` with ``describe``.
- **The simulator**, to run all of it offline: ``SimServer`` in a ``SimThread``.
- **Pure operators** for use outside Bytewax: ``bpx_flows.operators.*`` (each a
  ``step(state, event, config) -> (state, outputs)``).
"""

from __future__ import annotations

from bpx_flows.connectors.backpack.backfill import TradeBackfill
from bpx_flows.connectors.backpack.signing import Credentials
from bpx_flows.connectors.backpack.streams import KlineInterval, parse_streams
from bpx_flows.connectors.backpack.wire import Frame
from bpx_flows.connectors.connection import ConnectionConfig
from bpx_flows.connectors.metrics import serve_metrics
from bpx_flows.connectors.sim import ServerConfig, SimConfig, SimServer, SimThread
from bpx_flows.connectors.sinks.jsonl import JsonLinesSink
from bpx_flows.connectors.sinks.parquet import ParquetSink
from bpx_flows.connectors.sinks.stdout import LineSink
from bpx_flows.connectors.sinks.webhook import WebhookConfig, WebhookSink
from bpx_flows.connectors.sources import (
    BackpackSource,
    ReplaySource,
    SourceConfig,
    StopSignal,
)
from bpx_flows.flows.account import account_streams, track_account
from bpx_flows.flows.book import analyze_books, book_streams
from bpx_flows.flows.candles import CandleConfig, candle_streams, roll_candles
from bpx_flows.flows.derivatives import derivative_streams, join_mark_oi
from bpx_flows.flows.liquidations import detect_bursts, liquidation_streams
from bpx_flows.flows.market import MarketConfig, market_outputs, market_streams
from bpx_flows.operators.account import AccountConfig, AutoCloseAlert
from bpx_flows.operators.book_state import BookConfig, BookIntegrity, BookStats
from bpx_flows.operators.bursts import BurstAlert, BurstConfig, LiquidationStats
from bpx_flows.operators.candles import (
    Candle,
    HistoricalCandle,
    KlineMismatch,
    KlineResolved,
    TradeGap,
)
from bpx_flows.operators.derivatives import DerivativesConfig, DerivativesView
from bpx_flows.operators.orders import OrderFill, OrderState
from bpx_flows.operators.positions import MarginAlert, PositionView
from bpx_flows.operators.rfqs import RfqOutcome
from bpx_flows.presentation import MetricsSink, describe

__all__ = [
    "AccountConfig",
    "AutoCloseAlert",
    "BackpackSource",
    "BookConfig",
    "BookIntegrity",
    "BookStats",
    "BurstAlert",
    "BurstConfig",
    "Candle",
    "CandleConfig",
    "ConnectionConfig",
    "Credentials",
    "DerivativesConfig",
    "DerivativesView",
    "Frame",
    "HistoricalCandle",
    "JsonLinesSink",
    "KlineInterval",
    "KlineMismatch",
    "KlineResolved",
    "LineSink",
    "LiquidationStats",
    "MarginAlert",
    "MarketConfig",
    "MetricsSink",
    "OrderFill",
    "OrderState",
    "ParquetSink",
    "PositionView",
    "ReplaySource",
    "RfqOutcome",
    "ServerConfig",
    "SimConfig",
    "SimServer",
    "SimThread",
    "SourceConfig",
    "StopSignal",
    "TradeBackfill",
    "TradeGap",
    "WebhookConfig",
    "WebhookSink",
    "account_streams",
    "analyze_books",
    "book_streams",
    "candle_streams",
    "derivative_streams",
    "describe",
    "detect_bursts",
    "join_mark_oi",
    "liquidation_streams",
    "market_outputs",
    "market_streams",
    "parse_streams",
    "roll_candles",
    "serve_metrics",
    "track_account",
]
