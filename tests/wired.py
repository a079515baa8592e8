"""Flows for tests, wired exactly as ``bpx-flows run`` wires them (``wiring.wire``).

A test names the flow, gives its records and its sections; the records come back in
two lists (outputs and alerts), split by type by the test itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from bytewax.testing import TestingSink

from bpx_flows.flows.spec import FlowContext, Section
from bpx_flows.registry import FLOWS
from bpx_flows.wiring import Sinks, wire

Into = list[Any] | dict[type, list[Any]]


class _ByType(StatelessSinkPartition[Any]):
    def __init__(self, lists: dict[type, list[Any]]) -> None:
        self._lists = lists

    def write_batch(self, items: list[Any]) -> None:
        for item in items:
            for kind, into in self._lists.items():
                if isinstance(item, kind):
                    into.append(item)
                    break


class ByTypeSink(DynamicSink[Any]):
    """Each record into the list of the first type it is an instance of (else lost:
    name ``object`` last to keep the rest). Lists fill as the flow runs."""

    def __init__(self, lists: dict[type, list[Any]]) -> None:
        self._lists = lists

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _ByType:
        return _ByType(self._lists)


def _sink(into: Into) -> DynamicSink[Any]:
    return TestingSink(into) if isinstance(into, list) else ByTypeSink(into)


def wired(
    flow: str,
    source: Source[Any],
    out: Into,
    alerts: Into | None = None,
    *,
    sections: Iterable[Section] = (),
    symbols: Iterable[str] = (),
    replay: bool = True,
) -> Dataflow:
    """Flow ``flow`` from ``source``: records into ``out``, alerts into ``alerts``.

    ``out`` and ``alerts`` are lists, or lists by record type (``ByTypeSink``);
    ``alerts`` defaults to ``out``; ``replay`` as a replay's context (event time
    only) or a live one (wall clock too).
    """
    context = FlowContext(
        symbols=tuple(symbols),
        sections={type(s): s for s in sections},
        replay=replay,
    )
    sinks = Sinks(_sink(out), _sink(out if alerts is None else alerts))
    return wire(FLOWS[flow], context, source, sinks)


def candle_settings(config: Any) -> tuple[Any, bool]:
    """The ``[candles]`` section and ``replay`` flag that give ``config`` exactly."""
    from bpx_flows.flows.candles import CandleSettings

    section = CandleSettings(
        intervals=[i.value for i in config.intervals],
        lateness_ms=config.allowed_lateness_us // 1000,
        fill=config.forward_fill,
        revise_s=config.revise_horizon_us // 1_000_000,
    )
    replay = not config.wall_clock
    assert section.config(replay=replay) == config, "not expressible as settings"
    return section, replay


def book_settings(config: Any) -> Any:
    """The ``[book]`` section that gives ``config`` exactly (symbols aside)."""
    from bpx_flows.flows.book import BookSettings

    section = BookSettings(
        every_ms=config.emit_every_us / 1000,
        top_n=config.top_n,
        bands_bps=list(config.bands_bps),
        max_levels=config.max_levels,
        checksum=config.checksum,
    )
    symbols = tuple(sorted(config.symbols or ()))
    assert section.config(symbols) == config, "not expressible as settings"
    return section
