"""The tape: every record the connector emits, one line each, dead letters marked.

    feed ──► records

What ``bpx-flows tail``, ``record`` and ``replay`` run. ``python -m bytewax.run
bpx_flows.entry:tape`` runs it against the live exchange with the streams in
``BPX_STREAMS`` (comma-separated; default: SOL_USDC trades and book).
"""

from __future__ import annotations

from bytewax.dataflow import Stream

from ..connectors.backpack.booksync import BookSnapshot, Resync
from ..connectors.backpack.decode import BadFrame
from ..connectors.backpack.wire import Frame, ServerError
from ..connectors.connection import Record as SourceRecord
from .spec import FlowContext, FlowSpec, Outputs

__all__ = ["SPEC"]


def _streams(context: FlowContext) -> list[str]:
    return list(context.streams)


def _wire(records: Stream[SourceRecord], context: FlowContext) -> Outputs:
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
