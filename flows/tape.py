"""The tape: every record the connector emits, one line each, dead letters marked.

    feed ──► records

What ``bpx-flows tail``, ``record`` and ``replay`` run. ``python -m bytewax.run
bpx_flows.flows.tape:flow`` runs it against the live exchange with the streams in
``BPX_STREAMS`` (comma-separated; default: SOL_USDC trades and book).
"""

from __future__ import annotations

from typing import Any

from bytewax.dataflow import Stream

from bpx_flows.connectors.backpack.booksync import BookSnapshot, Resync
from bpx_flows.connectors.backpack.decode import BadFrame
from bpx_flows.connectors.backpack.wire import Frame, ServerError
from bpx_flows.flows.spec import FlowContext, FlowSpec, Outputs, lazy_flow

__all__ = ["SPEC"]


def _streams(context: FlowContext) -> list[str]:
    return list(context.streams)


def _wire(records: Stream[Any], context: FlowContext) -> Outputs:
    return [records], []


SPEC = FlowSpec(
    name="tape",
    help="every record of some streams: frames, books synced, dead letters",
    sections=(),
    streams=_streams,
    wire=_wire,
    produces=(Frame, BookSnapshot, Resync, BadFrame, ServerError),
    symbols="streams",
)


# `flow`, built when Bytewax asks for it (python -m bytewax.run), not at import.
__getattr__ = lazy_flow(SPEC, "")
