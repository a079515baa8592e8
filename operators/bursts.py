"""Liquidation statistics and burst detection per symbol and side, pure.

``step(state, event, config) -> (state, outputs)`` takes one symbol's ``Liquidation``
events and heartbeats (any later event time, e.g. its ``markPrice`` ticks, so a burst
ends on time even when liquidations stop). Per side it keeps sliding-window counts
and notional, and a robust baseline: the median notional of the ``bucket_s`` buckets of
the last ``baseline_s`` (empty buckets count as zero, so a quiet market's baseline is
zero and a busy market's is its usual flow).

A burst starts when, in the last ``bucket_s``: at least ``min_count`` liquidations,
notional >= ``min_notional`` and notional >= ``multiple`` x baseline. While the
baseline is warming up (fewer than ``warmup_buckets`` buckets observed) only the
absolute floors apply. One ``BurstAlert`` (phase ``started``) is raised at detection;
the burst then absorbs everything on that side until ``cooldown_s`` pass without a
liquidation, and ends with one ``BurstAlert`` (phase ``ended``) holding start, peak,
end, totals and severity. A cascade therefore gives exactly two records, never hundreds.
"""

from __future__ import annotations

import enum
import statistics
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal

import msgspec

from ..connectors.backpack.wire import Liquidation, Side
from .numbers import to_decimal
from .sides import BookSide

__all__ = [
    "BurstAlert",
    "BurstConfig",
    "BurstPhase",
    "BurstState",
    "LiquidationStats",
    "Severity",
    "WindowStats",
    "step",
]

_S = 1_000_000


@dataclass(frozen=True, slots=True)
class BurstConfig:
    """Windows and thresholds.

    Attributes:
        windows_s: sliding windows of the statistics, seconds.
        bucket_s: the detection window and baseline bucket, seconds.
        baseline_s: how much history the baseline median covers, seconds.
        warmup_buckets: buckets of history before the baseline is trusted.
        min_notional: a burst needs at least this notional in ``bucket_s`` (quote).
        min_count: ... and at least this many liquidations.
        multiple: ... and at least this multiple of the baseline.
        cooldown_s: a burst ends after this long without a liquidation on its side.
    """

    windows_s: tuple[int, ...] = (10, 60, 300)
    bucket_s: int = 10
    baseline_s: int = 3600
    warmup_buckets: int = 6
    min_notional: Decimal = Decimal(50_000)
    min_count: int = 5
    multiple: Decimal = Decimal(5)
    cooldown_s: int = 30


class Severity(enum.StrEnum):
    """How far above its trigger a burst went (peak / threshold)."""

    LOW = "low"  # < 2x
    MEDIUM = "medium"  # 2x to 5x
    HIGH = "high"  # 5x to 20x
    CRITICAL = "critical"  # >= 20x


class BurstPhase(enum.StrEnum):
    """An alert is raised when a burst starts and once more when it ends."""

    STARTED = "started"
    ENDED = "ended"


class WindowStats(msgspec.Struct, frozen=True):
    """Liquidations of one side in the last ``window_s``."""

    window_s: int
    count: int
    notional: Decimal


class LiquidationStats(msgspec.Struct, frozen=True, kw_only=True):
    """After each liquidation: its side's sliding windows and the baseline."""

    symbol: str
    side: BookSide
    event_us: int
    quantity: Decimal
    price: Decimal
    notional: Decimal
    windows: tuple[WindowStats, ...]
    baseline: Decimal | None  # None while warming up


class BurstAlert(msgspec.Struct, frozen=True, kw_only=True):
    """A liquidation burst; the alert schema (see docs/derivatives.md).

    ``started``: raised at detection, with what triggered it. ``ended``: the whole
    burst, after ``cooldown_s`` without a liquidation on that side.
    """

    burst_id: str  # "<symbol>:<side>:<start µs>", stable across both phases
    phase: BurstPhase
    symbol: str
    side: BookSide
    start_us: int  # first liquidation of the triggering window
    detected_us: int
    end_us: int | None  # last liquidation (ended only)
    peak_window_notional: Decimal  # the highest bucket_s notional seen
    total_notional: Decimal
    count: int
    threshold: Decimal  # the notional that had to be exceeded
    baseline: Decimal | None
    severity: Severity


@dataclass
class _Burst:
    start_us: int
    detected_us: int
    last_us: int
    peak: Decimal
    total: Decimal
    count: int
    threshold: Decimal
    baseline: Decimal | None


@dataclass
class _Window:
    """Liquidations in the last ``width_us``, with running sums (O(1) per event)."""

    width_us: int
    events: deque[tuple[int, Decimal]] = field(default_factory=deque)  # (T, notional)
    notional: Decimal = Decimal(0)

    def add(self, at: int, notional: Decimal) -> None:
        self.events.append((at, notional))
        self.notional += notional
        self.expire(at)

    def expire(self, now: int) -> None:
        events = self.events
        while events and events[0][0] <= now - self.width_us:
            self.notional -= events.popleft()[1]

    def stats(self, window_s: int) -> WindowStats:
        return WindowStats(window_s, len(self.events), self.notional)


@dataclass
class _Side:
    windows: dict[int, _Window] = field(default_factory=dict)  # by width, seconds
    buckets: dict[int, Decimal] = field(
        default_factory=dict
    )  # bucket index -> notional
    burst: _Burst | None = None
    # The baseline only covers completed buckets, so it is fixed within a bucket.
    baseline_bucket: int | None = None
    baseline: Decimal | None = None


@dataclass
class BurstState:
    """Per side of one symbol."""

    sides: dict[Side, _Side] = field(default_factory=dict)
    first_us: int | None = None  # the first event seen: the start of the history
    last_us: int = 0
    invalid: int = 0  # liquidations with a non-numeric quantity or price


def step(
    state: BurstState | None,
    event: Liquidation | int,
    config: BurstConfig,
    symbol: str = "",
) -> tuple[BurstState, list[LiquidationStats | BurstAlert]]:
    """Fold a liquidation, or a heartbeat (an event time in µs), into the state."""
    state = state or BurstState()
    out: list[LiquidationStats | BurstAlert] = []
    if isinstance(event, int):
        at = event
        name = symbol
    else:
        at = event.T
        name = event.s
    # Time only moves forward: an event older than one already folded (the exchange
    # sent it late) is folded at the latest time seen, so windows, bursts and alerts
    # stay in time order whatever order the events came in.
    now = state.last_us = max(state.last_us, at)
    if state.first_us is None:
        state.first_us = now
    for side, data in state.sides.items():  # bursts end on time, even when quiet
        _maybe_end(name, side, data, now, config, out)
    if isinstance(event, Liquidation):
        _on_liquidation(state, event, now, config, out)
    return state, out


def _on_liquidation(
    state: BurstState,
    event: Liquidation,
    now: int,
    config: BurstConfig,
    out: list[LiquidationStats | BurstAlert],
) -> None:
    quantity, price = to_decimal(event.q), to_decimal(event.p)
    if quantity is None or price is None:
        state.invalid += 1  # a non-numeric liquidation is counted, never folded
        return
    data = state.sides.setdefault(event.S, _Side())
    notional = quantity * price
    windows, baseline = _fold(state, data, now, notional, config)
    out.append(
        LiquidationStats(
            symbol=event.s,
            side=BookSide.of(event.S),
            event_us=event.T,
            quantity=quantity,
            price=price,
            notional=notional,
            windows=windows,
            baseline=baseline,
        )
    )
    alert = _detect(data, now, notional, baseline, config, event.s, event.S)
    if alert is not None:
        out.append(alert)


def _fold(
    state: BurstState, data: _Side, now: int, notional: Decimal, config: BurstConfig
) -> tuple[tuple[WindowStats, ...], Decimal | None]:
    """One liquidation's notional into its side's buckets and windows.

    Returns the windows' statistics and the side's baseline (recomputed once per
    bucket).
    """
    bucket = now // (config.bucket_s * _S)
    data.buckets[bucket] = data.buckets.get(bucket, Decimal(0)) + notional
    oldest_bucket = bucket - config.baseline_s // config.bucket_s
    for old in [b for b in data.buckets if b < oldest_bucket]:
        del data.buckets[old]
    for width in (*config.windows_s, config.bucket_s):
        if width not in data.windows:
            data.windows[width] = _Window(width * _S)
    for window in data.windows.values():
        window.add(now, notional)
    windows = tuple(data.windows[w].stats(w) for w in config.windows_s)
    if data.baseline_bucket != bucket:
        assert state.first_us is not None
        first_bucket = state.first_us // (config.bucket_s * _S)
        data.baseline = _baseline(data, first_bucket, bucket, config)
        data.baseline_bucket = bucket
    return windows, data.baseline


def _detect(
    data: _Side,
    now: int,
    notional: Decimal,
    baseline: Decimal | None,
    config: BurstConfig,
    symbol: str,
    side: Side,
) -> BurstAlert | None:
    """Extend the side's burst, or start one when the trigger window passes the bar."""
    trigger_window = data.windows[config.bucket_s]
    trigger = trigger_window.stats(config.bucket_s)
    burst = data.burst
    if burst is not None:
        burst.last_us = now
        burst.total += notional
        burst.count += 1
        burst.peak = max(burst.peak, trigger.notional)
        return None
    threshold = config.min_notional
    if baseline is not None:
        threshold = max(threshold, baseline * config.multiple)
    if trigger.count < config.min_count or trigger.notional < threshold:
        return None
    start = trigger_window.events[0][0]
    data.burst = _Burst(
        start,
        now,
        now,
        trigger.notional,
        trigger.notional,
        trigger.count,
        threshold,
        baseline,
    )
    return _alert(symbol, side, data.burst, BurstPhase.STARTED)


def _maybe_end(
    symbol: str,
    side: Side,
    data: _Side,
    now: int,
    config: BurstConfig,
    out: list[LiquidationStats | BurstAlert],
) -> None:
    burst = data.burst
    if burst is not None and now - burst.last_us >= config.cooldown_s * _S:
        out.append(_alert(symbol, side, burst, BurstPhase.ENDED))
        data.burst = None


def _baseline(
    data: _Side, first_bucket: int, bucket: int, config: BurstConfig
) -> Decimal | None:
    """Median notional per completed bucket over the baseline horizon (zeros count)."""
    span = config.baseline_s // config.bucket_s
    first = max(first_bucket, bucket - span)
    completed = range(first, bucket)
    if len(completed) < config.warmup_buckets:
        return None
    zero = Decimal(0)
    return statistics.median(data.buckets.get(b, zero) for b in completed)


def _alert(symbol: str, side: Side, burst: _Burst, phase: BurstPhase) -> BurstAlert:
    ratio = burst.peak / burst.threshold if burst.threshold else Decimal(0)
    severity = (
        Severity.CRITICAL
        if ratio >= 20
        else Severity.HIGH
        if ratio >= 5
        else Severity.MEDIUM
        if ratio >= 2
        else Severity.LOW
    )
    out_side = BookSide.of(side)
    return BurstAlert(
        burst_id=f"{symbol}:{out_side.value}:{burst.start_us}",
        phase=phase,
        symbol=symbol,
        side=out_side,
        start_us=burst.start_us,
        detected_us=burst.detected_us,
        end_us=burst.last_us if phase is BurstPhase.ENDED else None,
        peak_window_notional=burst.peak,
        total_notional=burst.total,
        count=burst.count,
        threshold=burst.threshold,
        baseline=burst.baseline,
        severity=severity,
    )
