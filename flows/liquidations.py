"""Liquidation statistics and burst alerts, per symbol and side.

    feed ─► liquidation_events ─► by_symbol ─► detect_bursts ─► split ─alerts─► alerts
                                                                   └─stats──► stats

Input: ``liquidation`` (and ``liquidation.<symbol>``) frames, plus ``markPrice`` frames
as heartbeats so a burst ends on time when liquidations stop. The same liquidation
seen on both stream names counts once. Alerts have the schema of
``operators.bursts.BurstAlert`` (docs/derivatives.md).
"""

from __future__ import annotations

import functools
import os
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream, operator
from bytewax.inputs import Source
from bytewax.outputs import Sink

from bpx_flows.connectors.backpack.streams import parse_streams
from bpx_flows.connectors.backpack.wire import Frame, Liquidation, MarkPrice
from bpx_flows.connectors.sinks import LineSink
from bpx_flows.connectors.source import BackpackSource
from bpx_flows.flows.batching import keyed_frames, stateful_steps
from bpx_flows.flows.keys import Route
from bpx_flows.operators.bursts import BurstAlert, BurstConfig, BurstState, step

__all__ = ["BurstOut", "build", "detect_bursts", "flow", "liquidation_streams"]


@dataclass
class _Detector:
    """Burst state, and the last events seen (a doubly subscribed event counts once)."""

    bursts: BurstState | None = None
    seen: deque[tuple[int, str, str, str]] = field(
        default_factory=lambda: deque(maxlen=64)
    )


def _detect(
    config: BurstConfig, state: _Detector | None, frame: Frame[Any]
) -> tuple[_Detector, list[Any]]:
    state = state or _Detector()
    data = frame.data
    if isinstance(data, Liquidation):
        key = (data.T, data.S.value, data.q, data.p)
        if key in state.seen:
            return state, []
        state.seen.append(key)
        state.bursts, out = step(state.bursts, data, config)
    else:
        state.bursts, out = step(state.bursts, data.T, config, data.s)
    return state, list(out)


def liquidation_streams(symbols: list[str] | None = None) -> list[str]:
    """``liquidation`` (all markets) and the heartbeat of each listed perp."""
    return ["liquidation", *(f"markPrice.{s}" for s in symbols or [])]


@dataclass(frozen=True)
class BurstOut:
    """The burst step's outputs."""

    alerts: Stream[Any]  # BurstAlert
    stats: Stream[Any]  # LiquidationStats


@operator
def detect_bursts(
    step_id: str,
    records: Stream[Any],
    config: BurstConfig,
    route: Route | None = None,
) -> BurstOut:
    """Connector records in; liquidation stats and burst alerts out."""
    # Mark prices are the heartbeat: a burst ends on time when liquidations stop.
    keyed = keyed_frames("by_symbol", records, (Liquidation, MarkPrice), route)
    detected = stateful_steps("detect", keyed, functools.partial(_detect, config))
    unkeyed = op.map("unkey", detected, lambda kv: kv[1])
    split = op.branch("split", unkeyed, lambda r: isinstance(r, BurstAlert))
    return BurstOut(split.trues, split.falses)


def build(
    source: Source[Any],
    alert_sink: Sink[Any],
    stats_sink: Sink[Any],
    config: BurstConfig | None = None,
) -> Dataflow:
    """The liquidation flow between a source of connector records and two sinks."""
    flow = Dataflow("liquidations")
    records = op.input("feed", flow, source)
    out = detect_bursts("detect_bursts", records, config or BurstConfig())
    op.output("alerts", out.alerts, alert_sink)
    op.output("stats", out.stats, stats_sink)
    return flow


def _default_flow() -> Dataflow:
    symbols = os.environ.get("BPX_SYMBOLS", "SOL_USDC_PERP").split(",")
    names = liquidation_streams([s.strip() for s in symbols if s.strip()])
    return build(BackpackSource.from_env(parse_streams(names)), LineSink(), LineSink())


flow = _default_flow()
