"""Your own Bytewax dataflow on bpx-flows' source, steps and sinks (docs/api.md).

    python docs/examples/custom_flow.py [SECONDS] [OUT.jsonl]

Starts the built-in simulator (no network beyond loopback), reads trades and books of
two markets, rolls 1 s candles and book stats with our steps, adds a step of its own
(a spread alarm), and writes candles to a JSON Lines file and one line per alarm to
stdout. ``--live`` would only change the source's URLs (``SourceConfig()`` defaults
to the exchange).
"""

from __future__ import annotations

import sys
from decimal import Decimal

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import run_main

from bpx_flows.api import (
    BackpackSource,
    BookConfig,
    BookStats,
    CandleConfig,
    ConnectionConfig,
    JsonLinesSink,
    KlineInterval,
    LineSink,
    SimConfig,
    SimServer,
    SimThread,
    SourceConfig,
    analyze_books,
    book_streams,
    candle_streams,
    parse_streams,
    roll_candles,
)

SYMBOLS = ["SOL_USDC", "BTC_USDC_PERP"]
WIDE_BPS = Decimal("0.5")  # our own rule: a spread wider than this is worth a line
CANDLES = CandleConfig(intervals=(KlineInterval.S1,))


def wide_spread(stats: BookStats) -> bool:
    """A step of our own, on the book step's records."""
    return stats.spread_bps is not None and stats.spread_bps > WIDE_BPS


def build(source: BackpackSource, candles_file: str) -> Dataflow:
    """The dataflow: one input, two of our steps, one step of yours, two sinks."""
    flow = Dataflow("custom")
    records = op.input("feed", flow, source)
    candles = roll_candles("candles", records, CANDLES)
    books = analyze_books("books", records, BookConfig(emit_every_us=0))
    alarms = op.filter("wide_spread", books.stats, wide_spread)
    op.output("candles_out", candles.candles, JsonLinesSink(candles_file))
    op.output(
        "alarms_out",
        alarms,
        LineSink(lambda s: f"WIDE {s.symbol} {s.spread_bps:.2f} bps"),
    )
    return flow


def main(seconds: float, candles_file: str) -> None:
    """Run the dataflow against a simulator started here, for ``seconds``."""
    server = SimServer(SimConfig(seed=1))
    with SimThread(server):
        names = candle_streams(SYMBOLS, CANDLES.intervals) + book_streams(SYMBOLS)
        streams = parse_streams(names)
        config = SourceConfig(
            connection=ConnectionConfig(ws_url=server.ws_url),
            rest_url=server.rest_url,
            run_for_s=seconds,  # the source ends, so the dataflow does
        )
        run_main(build(BackpackSource(streams, config), candles_file))


if __name__ == "__main__":
    main(
        float(sys.argv[1]) if len(sys.argv) > 1 else 5.0,
        sys.argv[2] if len(sys.argv) > 2 else "candles.jsonl",
    )
