"""Liquidation statistics and burst alerts, per symbol and side.

    feed ─► liquidation_events ─► by_symbol ─► detect_bursts ─► split ─alerts─► alerts
                                                                   └─stats──► stats

Input: ``liquidation.<symbol>`` frames (``liquidation``, every market, when no symbol
is named), plus ``markPrice.<symbol>`` frames as heartbeats so a burst ends on time when
liquidations stop. Named symbols get the per-symbol streams so that a symbol's
liquidations and heartbeats arrive on the connection of the worker that owns it, in
the order the exchange sent them (docs/run.md). The same liquidation seen on both
stream names counts once. Alerts have the schema of
``operators.bursts.BurstAlert`` (docs/derivatives.md).
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from bytewax.dataflow import Stream, operator

from ..connectors.backpack.wire import Frame, Liquidation, MarkPrice
from ..connectors.connection import Record as SourceRecord
from ..operators.bursts import (
    BurstAlert,
    BurstConfig,
    BurstState,
    LiquidationStats,
    step,
)
from .batching import keyed_frames, split_outputs, stateful_steps
from .keys import Route
from .spec import FlowContext, FlowSpec, Outputs, Section

__all__ = [
    "SPEC",
    "BurstOut",
    "BurstSettings",
    "detect_bursts",
    "liquidation_streams",
]

_NOTIONAL_MAX = Decimal(10) ** 15


_BURSTS = BurstConfig()  # the operator's defaults, which the settings share


class BurstSettings(Section, frozen=True, kw_only=True):
    """``[bursts]``: the liquidation burst detector (``operators.bursts``)."""

    NAME = "bursts"

    min_notional: Annotated[
        Decimal,
        msgspec.Meta(description="a burst needs this much notional in 10 s (quote)"),
    ] = _BURSTS.min_notional
    min_count: Annotated[
        int,
        msgspec.Meta(ge=1, le=1_000_000, description="... and this many liquidations"),
    ] = _BURSTS.min_count
    multiple: Annotated[
        Decimal, msgspec.Meta(description="... and this multiple of the baseline")
    ] = _BURSTS.multiple
    cooldown_s: Annotated[
        int,
        msgspec.Meta(
            ge=1,
            le=86_400,
            description="a burst ends after this long without a liquidation, s",
        ),
    ] = _BURSTS.cooldown_s

    def problems(self) -> Iterator[tuple[str, str]]:
        """Decimal bounds (msgspec constrains no Decimal)."""
        for name, value, low in (
            ("min_notional", self.min_notional, Decimal(0)),
            ("multiple", self.multiple, Decimal(0)),
        ):
            if not value.is_finite() or not low < value <= _NOTIONAL_MAX:
                yield name, f"must be > {low} and <= 1e15, got {value}"

    def config(self) -> BurstConfig:
        """The detector's configuration."""
        return BurstConfig(
            min_notional=self.min_notional,
            min_count=self.min_count,
            multiple=self.multiple,
            cooldown_s=self.cooldown_s,
        )


_SEEN_S = 60  # a copy of an event (the other stream name) arrives within this
_SEEN_MOST = 4_096  # and at most this many events are remembered per symbol


@dataclass
class _Detector:
    """Burst state, and recent events (an event on both stream names counts once).

    An event is known by engine time, side, quantity and price; events are kept
    for ``_SEEN_S`` of engine time (at most ``_SEEN_MOST``), so a copy arriving on
    the other stream name after a whole cascade is still recognised.
    """

    bursts: BurstState | None = None
    seen: dict[tuple[int, str, str, str], None] = field(default_factory=dict)
    seen_by_time: deque[tuple[int, str, str, str]] = field(default_factory=deque)


def _detect(
    config: BurstConfig, state: _Detector | None, frame: Frame[Any]
) -> tuple[_Detector, list[Any]]:
    state = state or _Detector()
    data = frame.data
    if isinstance(data, Liquidation):
        key = (data.T, data.S.value, data.q, data.p)
        if key in state.seen:
            return state, []
        _remember(state, key)
        state.bursts, out = step(state.bursts, data, config)
    else:
        state.bursts, out = step(state.bursts, data.T, config, data.s)
    return state, list(out)


def _remember(state: _Detector, key: tuple[int, str, str, str]) -> None:
    seen, order = state.seen, state.seen_by_time
    seen[key] = None
    order.append(key)
    horizon = key[0] - _SEEN_S * 1_000_000
    while order and (len(order) > _SEEN_MOST or order[0][0] < horizon):
        seen.pop(order.popleft(), None)


def liquidation_streams(symbols: list[str] | None = None) -> list[str]:
    """Each listed perp's liquidations and heartbeat; ``liquidation`` when none is."""
    if not symbols:
        return ["liquidation"]
    return [name for s in symbols for name in (f"liquidation.{s}", f"markPrice.{s}")]


@dataclass(frozen=True)
class BurstOut:
    """The burst step's outputs."""

    alerts: Stream[BurstAlert]
    stats: Stream[LiquidationStats]


@operator
def detect_bursts(
    step_id: str,
    records: Stream[SourceRecord],
    config: BurstConfig,
    route: Route | None = None,
) -> BurstOut:
    """Connector records in; liquidation stats and burst alerts out."""
    # Mark prices are the heartbeat: a burst ends on time when liquidations stop.
    keyed = keyed_frames("by_symbol", records, (Liquidation, MarkPrice), route)
    detected = stateful_steps("detect", keyed, functools.partial(_detect, config))
    split = split_outputs("split", detected, BurstAlert)
    return BurstOut(split.matching, split.others)


def _streams(context: FlowContext) -> list[str]:
    return liquidation_streams(list(context.symbols))


def _wire(records: Stream[SourceRecord], context: FlowContext) -> Outputs:
    config = context.section(BurstSettings).config()
    bursts = detect_bursts("detect_bursts", records, config, context.route)
    return [bursts.stats], [bursts.alerts]


SPEC = FlowSpec(
    name="liquidations",
    example_symbols=("SOL_USDC_PERP",),
    help="liquidation stats per side and burst alerts",
    sections=(BurstSettings,),
    streams=_streams,
    wire=_wire,
    produces=(LiquidationStats, BurstAlert),
    symbols="optional",
    markets="perp",
)
