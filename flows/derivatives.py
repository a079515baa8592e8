"""Mark price joined with open interest, per perp.

    feed ─► derivative_events ─► by_symbol ─► join_mark_oi ─► views

Input: connector records; ``markPrice`` and ``openInterest`` frames are used, and
the mark prices the connector seeded from REST at connect (``SeededMarkPrice``).
``python -m bytewax.run bpx_flows.flows.derivatives:flow`` runs it on the live
exchange for ``BPX_SYMBOLS`` (default SOL_USDC_PERP).
"""

from __future__ import annotations

import functools
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream, operator
from bytewax.inputs import Source
from bytewax.outputs import Sink

from bpx_flows.connectors.backpack.seeds import SeededMarkPrice
from bpx_flows.connectors.backpack.wire import Frame, MarkPrice, OpenInterest
from bpx_flows.flows.batching import keyed_frames, stateful_steps
from bpx_flows.flows.keys import Route
from bpx_flows.flows.spec import FlowContext, FlowSpec, Outputs, lazy_flow
from bpx_flows.operators.derivatives import (
    DerivativesConfig,
    DerivativesState,
    DerivativesView,
    step,
)

__all__ = ["SPEC", "build", "derivative_streams", "join_mark_oi"]


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
    kinds = (MarkPrice, SeededMarkPrice, OpenInterest)
    keyed = keyed_frames("by_symbol", records, kinds, route)
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


def _streams(context: FlowContext) -> list[str]:
    return derivative_streams(list(context.symbols))


def _wire(records: Stream[Any], context: FlowContext) -> Outputs:
    views = join_mark_oi("join_mark_oi", records, DerivativesConfig(), context.route)
    return [views], []


SPEC = FlowSpec(
    name="derivatives",
    help="mark price joined with open interest: premium, funding, OI, staleness",
    sections=(),
    streams=_streams,
    wire=_wire,
    produces=(DerivativesView,),
    markets="perp",
)


# `flow`, built when Bytewax asks for it (python -m bytewax.run), not at import.
__getattr__ = lazy_flow(SPEC, "SOL_USDC_PERP")
