"""Mark price joined with open interest, per perp.

    feed ─► derivative_events ─► by_symbol ─► join_mark_oi ─► views

Input: connector records; ``markPrice`` and ``openInterest`` frames are used, and
the mark prices the connector seeded from REST at connect (``SeededMarkPrice``).
``python -m bytewax.run bpx_flows.entry:derivatives`` runs it on the live
exchange for ``BPX_SYMBOLS`` (default SOL_USDC_PERP).
"""

from __future__ import annotations

import functools
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Stream, operator

from ..connectors.backpack.seeds import SeededMarkPrice
from ..connectors.backpack.wire import Frame, MarkPrice, OpenInterest
from ..connectors.connection import Record as SourceRecord
from ..operators.derivatives import (
    DerivativesConfig,
    DerivativesState,
    DerivativesView,
    step,
)
from .batching import keyed_frames, stateful_steps
from .keys import Route
from .spec import FlowContext, FlowSpec, Outputs

__all__ = ["SPEC", "derivative_streams", "join_mark_oi"]


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
    records: Stream[SourceRecord],
    config: DerivativesConfig,
    route: Route | None = None,
) -> Stream[DerivativesView]:
    """Connector records in; a ``DerivativesView`` per mark/OI event out."""
    kinds = (MarkPrice, SeededMarkPrice, OpenInterest)
    keyed = keyed_frames("by_symbol", records, kinds, route)
    joined = stateful_steps("join", keyed, functools.partial(_join, config))
    return op.map("unkey", joined, lambda kv: kv[1])


def _streams(context: FlowContext) -> list[str]:
    return derivative_streams(list(context.symbols))


def _wire(records: Stream[SourceRecord], context: FlowContext) -> Outputs:
    views = join_mark_oi("join_mark_oi", records, DerivativesConfig(), context.route)
    return [views], []


SPEC = FlowSpec(
    name="derivatives",
    example_symbols=("SOL_USDC_PERP",),
    help="mark price joined with open interest: premium, funding, OI, staleness",
    sections=(),
    streams=_streams,
    wire=_wire,
    produces=(DerivativesView,),
    markets="perp",
)
