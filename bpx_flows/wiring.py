"""The one wiring of every flow: its spec's steps between a source and sinks.

``bpx-flows run``, ``python -m bytewax.run``, the tests and the benchmarks all build
a flow with ``build_flow``; tests and benchmarks inject their own source and sinks.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source
from bytewax.outputs import Sink

from bpx_flows.flows.batching import without_snapshots
from bpx_flows.flows.keys import Route
from bpx_flows.flows.spec import FlowContext, FlowSpec
from bpx_flows.registry import FLOWS
from bpx_flows.settings import Settings, flow_context

__all__ = ["Sinks", "build_flow", "wire"]


@dataclasses.dataclass(frozen=True)
class Sinks:
    """Where a flow's outputs go.

    Attributes:
        out: every record that is not an alert.
        alerts: every alert.
        file: a keyed sink that gets everything as ``("out", record)`` (the
            exactly-once ``--out`` file), or ``None``.
        alerts_file: a keyed sink that gets every alert the same way (``--alerts
            FILE``: one file, whatever the number of workers), or ``None``.
    """

    out: Sink[Any]
    alerts: Sink[Any]
    file: Sink[Any] | None = None
    alerts_file: Sink[Any] | None = None


def build_flow(
    settings: Settings,
    source: Source[Any],
    sinks: Sinks,
    route: Route | None = None,
    *,
    snapshots: bool = True,
) -> Dataflow:
    """The flow of ``settings`` between ``source`` and ``sinks``.

    ``route`` maps a symbol to the key its state is stored under (``flows.keys``);
    ``snapshots``: see ``wire``.
    """
    context = flow_context(settings, route)
    return wire(FLOWS[settings.flow], context, source, sinks, snapshots=snapshots)


def wire(
    spec: FlowSpec,
    context: FlowContext,
    source: Source[Any],
    sinks: Sinks,
    *,
    snapshots: bool = True,
) -> Dataflow:
    """Flow ``spec`` for ``context`` between ``source`` and ``sinks``.

    Step ids are fixed per flow, so a recovery directory written by one run resumes
    in the next. Tests and benchmarks call this with their own source and sinks.
    ``snapshots=False``: the steps pickle no state when Bytewax asks at an epoch's
    end, for runs no recovery directory keeps (``flows.batching.without_snapshots``).
    """
    with contextlib.nullcontext() if snapshots else without_snapshots():
        return _wired(spec, context, source, sinks)


def _wired(
    spec: FlowSpec, context: FlowContext, source: Source[Any], sinks: Sinks
) -> Dataflow:
    flow = Dataflow(spec.name)
    records = op.input("feed", flow, source)
    outputs, alerts = spec.wire(records, context)
    if outputs:
        op.output("out", _merged("all", outputs), sinks.out)
    if alerts:
        all_alerts = _merged("all_alerts", alerts)
        op.output("alerts", all_alerts, sinks.alerts)
        if sinks.alerts_file is not None:
            one = op.key_on("key_for_alerts_file", all_alerts, lambda _alert: "out")
            op.output("alerts_file", one, sinks.alerts_file)
    if sinks.file is not None:
        everything = _merged("everything", outputs + alerts)
        keyed = op.key_on("key_for_file", everything, lambda _record: "out")
        op.output("out_file", keyed, sinks.file)
    return flow


def _merged(step_id: str, streams: list[Stream[Any]]) -> Stream[Any]:
    return streams[0] if len(streams) == 1 else op.merge(step_id, *streams)
