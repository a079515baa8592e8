"""The tape: every record the connector emits, one line each, dead letters apart.

    feed ──► split_dead_letters ──ok──► print
                              └─bad─► dead_letters

``python -m bytewax.run flows.tape:flow`` runs it against the live exchange with the
streams in ``BPX_STREAMS`` (comma-separated; default: SOL_USDC trades and book).
"""

from __future__ import annotations

import os
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from bpx_flows.connectors.backpack.decode import BadFrame
from bpx_flows.connectors.backpack.streams import parse_streams
from bpx_flows.connectors.sinks import LineSink
from bpx_flows.connectors.sinks.describe import describe
from bpx_flows.connectors.source import BackpackSource

__all__ = ["build", "flow"]


def build(source: Source[Any], sink: Sink[Any], dead_letters: Sink[Any]) -> Dataflow:
    """The tape flow between any source and two sinks of records."""
    flow = Dataflow("tape")
    records = op.input("feed", flow, source)
    split = op.branch(
        "split_dead_letters", records, lambda r: not isinstance(r, BadFrame)
    )
    op.output("print", split.trues, sink)
    op.output("dead_letters", split.falses, dead_letters)
    return flow


def _default_flow() -> Dataflow:
    names = os.environ.get("BPX_STREAMS", "trade.SOL_USDC,depth.SOL_USDC").split(",")
    streams = parse_streams(n.strip() for n in names if n.strip())
    source = BackpackSource.from_env(streams)
    return build(source, LineSink(describe), LineSink(describe, prefix="DEAD LETTER "))


flow = _default_flow()
