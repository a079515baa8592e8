"""The wall clock, read only at the edges, and the receive clock as a record."""

from __future__ import annotations

import time

import msgspec

__all__ = ["WATERMARK_EVERY_US", "Watermark", "now_us"]

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
