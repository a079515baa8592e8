"""Mark price joined with open interest, per perp.

    feed ─► derivative_events ─► by_symbol ─► join_mark_oi ─► views

Input: connector records; ``markPrice`` and ``openInterest`` frames are used.
``python -m bytewax.run flows.derivatives:flow`` runs it on the live exchange for
``BPX_SYMBOLS`` (default SOL_USDC_PERP).
"""

from __future__ import annotations

import functools
import os
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream, operator
from bytewax.inputs import Source
from bytewax.outputs import Sink

from bpx_flows.connectors.backpack.streams import parse_streams
from bpx_flows.connectors.backpack.wire import Frame, MarkPrice, OpenInterest
from bpx_flows.connectors.sinks import LineSink
from bpx_flows.connectors.source import BackpackSource
from bpx_flows.flows.batching import keyed_frames, stateful_steps
from bpx_flows.flows.keys import Route
from bpx_flows.operators.derivatives import DerivativesConfig, DerivativesState, step

__all__ = ["build", "derivative_streams", "flow", "join_mark_oi"]


def _join(
    config: DerivativesConfig, state: DerivativesState | None, frame: Frame[Any]
) -> tuple[DerivativesState, list[Any]]:
    return step(state, frame.data, config)


def derivative_streams(symbols: list[str]) -> list[str]:
    """The streams the join needs."""
    return [n for s in symbols for n in (f"markPrice.{s}", f"openInterest.{s}")]


@operator
def join_mark_oi(
    step_id: str,
    records: Stream[Any],
    config: DerivativesConfig,
    route: Route | None = None,
) -> Stream[Any]:
    """Connector records in; a ``DerivativesView`` per mark/OI event out."""
    keyed = keyed_frames("by_symbol", records, (MarkPrice, OpenInterest), route)
    joined = stateful_steps("join", keyed, functools.partial(_join, config))
    return op.map("unkey", joined, lambda kv: kv[1])


def build(
    source: Source[Any], sink: Sink[Any], config: DerivativesConfig | None = None
) -> Dataflow:
    """The derivatives flow between a source of connector records and a sink."""
    flow = Dataflow("derivatives")
    records = op.input("feed", flow, source)
    op.output(
        "views",
        join_mark_oi("join_mark_oi", records, config or DerivativesConfig()),
        sink,
    )
    return flow


def _default_flow() -> Dataflow:
    symbols = os.environ.get("BPX_SYMBOLS", "SOL_USDC_PERP").split(",")
    names = derivative_streams([s.strip() for s in symbols if s.strip()])
    return build(BackpackSource.from_env(parse_streams(names)), LineSink())


flow = _default_flow()
