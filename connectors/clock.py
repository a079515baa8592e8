"""The wall clock, read only at the edges, and the receive clock as a record."""

from __future__ import annotations

import time
from dataclasses import dataclass

import msgspec

__all__ = ["WATERMARK_EVERY_US", "WakeTimes", "Watermark", "now_us"]

WATERMARK_EVERY_US = 1_000_000  # a partition's receive clock advances in whole seconds


def now_us() -> int:
    """Microseconds since the epoch."""
    return time.time_ns() // 1000


class Watermark(msgspec.Struct, frozen=True):
    """The receive clock of one source partition passed ``at_us``.

    Every record the partition received before ``at_us`` was emitted before this one,
    so a step fed by that partition alone may act on time having passed (an RFQ
    expiring on a quiet market) without running ahead of its input. Replays derive it
    from the recording's receive times (the same records on any number of workers);
    live partitions from the clock. Only partitions of all-markets streams emit it,
    once per whole second (``WATERMARK_EVERY_US``), and only for flows that ask.
    """

    at_us: int


@dataclass(frozen=True, slots=True)
class WakeTimes:
    """When a flow's timers come due on the wall clock: offsets into each period.

    A live worker with nothing to read sleeps in its source until a frame comes (or
    ``batch_timeout_s``), and Bytewax runs a step's timer (a window closing by the
    clock) only once the source returns: on a quiet feed a timer could wait that
    long. A source given these never sleeps past one of them. ``period_us`` is the
    timers' cycle (a candle flow's shortest interval), ``offsets_us`` the times into
    it (any size: taken modulo the period).
    """

    period_us: int
    offsets_us: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.period_us <= 0 or not self.offsets_us:
            msg = f"no wake times in {self!r}"
            raise ValueError(msg)
        phases = tuple(sorted({o % self.period_us for o in self.offsets_us}))
        object.__setattr__(self, "offsets_us", phases)

    def next_after(self, at_us: int) -> int:
        """The first wake time after ``at_us``."""
        period = self.period_us
        start = at_us - at_us % period
        for offset in self.offsets_us:
            if start + offset > at_us:
                return start + offset
        return start + period + self.offsets_us[0]
