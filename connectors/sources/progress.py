"""Progress of a long replay: a log line every few seconds with the rate and an ETA."""

from __future__ import annotations

import logging
import time
from typing import Protocol

__all__ = ["ReplayProgress"]

progress_log = logging.getLogger("bpx_flows.progress")


class Readable(Protocol):
    """What is being read: it knows how much of it is read."""

    def fraction_read(self) -> float:
        """0..1."""
        ...


class ReplayProgress:
    """A log line every few seconds while a recording replays: lines, rate, ETA."""

    def __init__(
        self, name: str, reader: Readable, start_line: int, every_s: float
    ) -> None:
        self._every_s = every_s
        self._name = name
        self._reader = reader
        self._start_line = start_line
        self._t0 = self._last = time.monotonic()

    def tick(self, lines: int) -> None:
        """``lines`` read so far: a log line if the last was long enough ago."""
        now = time.monotonic()
        if now - self._last < self._every_s:
            return
        self._last = now
        rate = (lines - self._start_line) / max(now - self._t0, 1e-9)
        read = self._reader.fraction_read()
        elapsed = now - self._t0
        eta = elapsed * (1 - read) / read if read > 0 else float("nan")
        progress_log.info(
            "replay %s: %s lines, %s lines/s, %.0f%% read, ETA %.0f s",
            self._name,
            f"{lines:,}",
            f"{rate:,.0f}",
            read * 100,
            eta,
        )

    def done(self, lines: int) -> None:
        """The end of the recording, after ``lines`` lines."""
        elapsed = time.monotonic() - self._t0
        progress_log.info(
            "replay %s: done, %s lines in %.1f s", self._name, f"{lines:,}", elapsed
        )
