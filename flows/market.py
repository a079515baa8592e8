"""Everything at once on one connector: books, candles, derivatives and liquidations.

    feed ─┬─► book flow steps ─────────► book stats / integrity
          ├─► candle flow steps ───────► candles / integrity / late trades
          ├─► derivatives join ────────► views
          └─► liquidation bursts ──────► liquidation stats / burst alerts

Each part is the same wiring as its own flow file, built on the shared input stream
(one WebSocket connection group feeds all four). All outputs go to one sink, alerts
also to an alert sink. ``python -m bytewax.run flows.market:flow`` runs it live for
``BPX_SYMBOLS`` (default SOL_USDC_PERP).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source
from bytewax.outputs import Sink

from bpx_flows.connectors.backpack.streams import KlineInterval, parse_streams
from bpx_flows.connectors.sinks import LineSink
from bpx_flows.connectors.sinks.describe import describe
from bpx_flows.connectors.source import BackpackSource
from bpx_flows.flows import book, candles, derivatives, liquidations
from bpx_flows.flows.keys import Route
from bpx_flows.operators.book_state import BookConfig
from bpx_flows.operators.bursts import BurstConfig
from bpx_flows.operators.derivatives import DerivativesConfig

__all__ = ["MarketConfig", "build", "flow", "market_outputs", "market_streams"]


@dataclass(frozen=True, slots=True)
class MarketConfig:
    """The settings of each part."""

    book: BookConfig = field(
        default_factory=lambda: BookConfig(emit_every_us=1_000_000)
    )
    candles: candles.CandleConfig = field(
        default_factory=lambda: candles.CandleConfig(
            intervals=(KlineInterval.S1, KlineInterval.M1)
        )
    )
    derivatives: DerivativesConfig = field(default_factory=DerivativesConfig)
    bursts: BurstConfig = field(default_factory=BurstConfig)


def market_streams(symbols: list[str], config: MarketConfig | None = None) -> list[str]:
    """Every stream the four parts need (perps also get the derivatives streams)."""
    config = config or MarketConfig()
    names = book.book_streams(symbols)
    names += candles.candle_streams(symbols, config.candles.intervals)
    perps = [s for s in symbols if s.endswith("_PERP")]
    names += derivatives.derivative_streams(perps)
    names += liquidations.liquidation_streams(perps)
    return list(dict.fromkeys(names))


def market_outputs(
    records: Stream[Any], config: MarketConfig, route: Route | None = None
) -> tuple[list[Stream[Any]], list[Stream[Any]]]:
    """The four parts on one input: ``(record streams, alert streams)``."""
    books = book.analyze_books("books", records, config.book, route)
    bars = candles.roll_candles("candles", records, config.candles, route)
    views = derivatives.join_mark_oi("join_mark_oi", records, config.derivatives, route)
    bursts = liquidations.detect_bursts("detect_bursts", records, config.bursts, route)
    outputs = [
        books.stats,
        books.integrity,
        bars.candles,
        bars.integrity,
        views,
        bursts.stats,
    ]
    return outputs, [bursts.alerts]


def build(
    source: Source[Any],
    sink: Sink[Any],
    alert_sink: Sink[Any],
    config: MarketConfig | None = None,
) -> Dataflow:
    """One input, four analytics, one output sink (alerts also to ``alert_sink``)."""
    flow = Dataflow("market")
    records = op.input("feed", flow, source)
    outputs, alerts = market_outputs(records, config or MarketConfig())
    op.output("out", op.merge("everything", *outputs, *alerts), sink)
    op.output("alerts", alerts[0], alert_sink)
    return flow


def _default_flow() -> Dataflow:
    symbols = os.environ.get("BPX_SYMBOLS", "SOL_USDC_PERP").split(",")
    streams = parse_streams(market_streams([s.strip() for s in symbols if s.strip()]))
    sink = LineSink(describe)
    return build(
        BackpackSource.from_env(streams), sink, LineSink(describe, prefix="ALERT ")
    )


flow = _default_flow()
