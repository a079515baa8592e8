"""Your own Bytewax dataflow on bpx-flows' source, steps and sinks (docs/api.md).

    .venv/bin/python docs/examples/custom_flow.py [SECONDS] [OUT.jsonl]
    .venv/bin/python -m bytewax.run "docs.examples.custom_flow:dataflow(5)" -w 2

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
# Our own rule: a spread wider than this is worth a line. One tick of SOL_USDC is about
# 0.5 bps, so this flags books two or more ticks wide (about 1 in 10 here).
WIDE_BPS = Decimal("1")
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


def source_for(server: SimServer, seconds: float) -> BackpackSource:
    """Trades and books of ``SYMBOLS`` from ``server``, for ``seconds``."""
    names = candle_streams(SYMBOLS, CANDLES.intervals) + book_streams(SYMBOLS)
    config = SourceConfig(
        connection=ConnectionConfig(ws_url=server.ws_url),
        rest_url=server.rest_url,
        run_for_s=seconds,  # the source ends, so the dataflow does
    )
    return BackpackSource(parse_streams(names), config)


def main(seconds: float, candles_file: str) -> None:
    """Run the dataflow against a simulator started here, for ``seconds``."""
    server = SimServer(SimConfig(seed=1))
    with SimThread(server):
        run_main(build(source_for(server, seconds), candles_file))


def dataflow(seconds: float = 5.0, candles_file: str = "candles.jsonl") -> Dataflow:
    """The dataflow for ``python -m bytewax.run`` (which runs it, on its workers).

    The simulator runs in this process until it exits.
    """
    thread = SimThread(SimServer(SimConfig(seed=1)))
    thread.__enter__()  # stopped with the process: Bytewax runs the flow after this
    return build(source_for(thread.server, seconds), candles_file)


if __name__ == "__main__":
    main(
        float(sys.argv[1]) if len(sys.argv) > 1 else 5.0,
        sys.argv[2] if len(sys.argv) > 2 else "candles.jsonl",
    )
