"""Order books per symbol: exact L2 state, book analytics and integrity events.

    feed ─► book_records ─► by_symbol ─► apply_book ─► split ─► stamp_emit ─► stats
                                                           └──────────────► integrity

Input: the connector's records (``BookSnapshot``, ``Resync``, ``Frame[Depth]``,
``Frame[BookTicker]``; anything else is ignored). Keyed by symbol, so a symbol's books
and its bookTicker checks live on one worker. ``python -m bytewax.run flows.book:flow``
runs it on the live exchange for ``BPX_SYMBOLS`` (comma-separated, default SOL_USDC).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any

import bytewax.operators as op
import msgspec
from bytewax.dataflow import Dataflow, Stream, operator
from bytewax.inputs import Source
from bytewax.outputs import Sink

from bpx_flows.connectors.backpack.booksync import BookSnapshot, Resync
from bpx_flows.connectors.backpack.streams import parse_streams
from bpx_flows.connectors.backpack.wire import BookTicker, Depth, Frame
from bpx_flows.connectors.clock import now_us
from bpx_flows.connectors.sinks import LineSink
from bpx_flows.connectors.sinks.describe import describe
from bpx_flows.connectors.source import BackpackSource
from bpx_flows.flows.batching import stateful_steps
from bpx_flows.flows.keys import Route
from bpx_flows.operators.book_state import BookConfig, BookStats, SymbolBooks, step

__all__ = ["BookOut", "analyze_books", "book_streams", "build", "flow"]


def book_records(key: Route, batch: list[Any]) -> list[tuple[str, Any]]:
    """``(key(symbol), record)`` for the book records of a batch, in order."""
    out = []
    for record in batch:
        kind = type(record)
        if kind is Frame:
            data = record.data
            if type(data) is Depth or type(data) is BookTicker:
                out.append((key(data.s), record))
        elif kind is BookSnapshot or kind is Resync:
            out.append((key(record.symbol), record))
    return out


def _apply(
    config: BookConfig, state: SymbolBooks | None, record: Any
) -> tuple[SymbolBooks, list[Any]]:
    return step(state, record, config)


def _stamp(stats: BookStats) -> BookStats:
    return msgspec.structs.replace(stats, emit_us=now_us())


def book_streams(symbols: list[str], window: str = "") -> list[str]:
    """The streams the book flow needs: depth (``window`` e.g. ``"200ms."``) and top."""
    return [name for s in symbols for name in (f"depth.{window}{s}", f"bookTicker.{s}")]


@dataclass(frozen=True)
class BookOut:
    """The book step's outputs."""

    stats: Stream[Any]  # BookStats, emit time stamped
    integrity: Stream[Any]  # BookIntegrity


@operator
def analyze_books(
    step_id: str, records: Stream[Any], config: BookConfig, route: Route | None = None
) -> BookOut:
    """Connector records in; book stats and integrity events out (keyed by symbol)."""
    # One call per batch selects and keys the records (see flows.keys).
    select = functools.partial(book_records, route or str)
    keyed: Any = op.flat_map_batch("book_records_by_symbol", records, select)
    outputs = stateful_steps("apply_book", keyed, functools.partial(_apply, config))
    unkeyed = op.map("unkey", outputs, lambda key_output: key_output[1])
    split = op.branch("split", unkeyed, lambda r: isinstance(r, BookStats))
    return BookOut(op.map("stamp_emit", split.trues, _stamp), split.falses)


def build(
    source: Source[Any],
    stats_sink: Sink[Any],
    integrity_sink: Sink[Any],
    config: BookConfig | None = None,
) -> Dataflow:
    """The book flow between a source of connector records and two sinks."""
    flow = Dataflow("book")
    records = op.input("feed", flow, source)
    out = analyze_books("books", records, config or BookConfig())
    op.output("stats", out.stats, stats_sink)
    op.output("integrity", out.integrity, integrity_sink)
    return flow


def _default_flow() -> Dataflow:
    symbols = os.environ.get("BPX_SYMBOLS", "SOL_USDC").split(",")
    streams = parse_streams(book_streams([s.strip() for s in symbols if s.strip()]))
    config = BookConfig(emit_every_us=1_000_000)
    return build(
        BackpackSource.from_env(streams), LineSink(describe), LineSink(describe), config
    )


flow = _default_flow()
