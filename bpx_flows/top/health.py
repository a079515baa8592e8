"""The feed's health for ``top``: read from the live source's connections.

Connections up, frames per second, resyncs and reconnects, the REST backlog and
the receive latency, computed between two reads (the screen reads four times a
second). A replay has no connections: records per second only.
"""

from __future__ import annotations

import time
from typing import Any

from .state import TopState

__all__ = ["Health"]


class Health:
    """Rates between reads; ``source`` is set once the run built it."""

    def __init__(self, state: TopState, name: str) -> None:
        self.state = state
        self.name = name
        self.source: Any = None
        self._last = time.monotonic()
        self._frames = 0.0
        self._records = 0
        self.frames_per_s = 0.0
        self.records_per_s = 0.0

    def attach(self, source: Any) -> None:
        """The run's source (called from the flow's thread)."""
        self.source = source

    def read(self) -> dict[str, Any]:
        """Everything the feed panel shows."""
        now = time.monotonic()
        elapsed = max(now - self._last, 1e-3)
        records, latencies, warnings = self.state.totals()
        found: dict[str, Any] = {"source": self.name, "warnings": warnings}
        connections = self._connections()
        frames = 0.0
        if connections:
            frames = sum(sum(c.session.stats.frames.values()) for c in connections)
            found.update(
                connections=len(connections),
                connections_up=sum(1 for c in connections if c.connected),
                resyncs=sum(
                    s.stats.resyncs
                    for c in connections
                    for s in dict.copy(c.books.syncs).values()
                ),
                reconnects=sum(sum(c.stats.disconnects.values()) for c in connections),
                queued=sum(c.pending for c in connections),
                trade_gaps=sum(
                    c.gaps.open for c in connections if getattr(c, "gaps", None)
                ),
                backlog=_rest_backlog(),
            )
        if elapsed >= 0.2:  # rates over a fifth of a second at least
            self.frames_per_s = (frames - self._frames) / elapsed
            self.records_per_s = (records - self._records) / elapsed
            self._frames, self._records, self._last = frames, records, now
        found["frames_per_s"] = self.frames_per_s
        found["records_per_s"] = self.records_per_s
        found["integrity"] = self.state.integrity_events()
        if latencies:
            ordered = sorted(latencies)
            p50 = ordered[len(ordered) // 2] / 1000
            p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1000
            found["latency_ms"] = (p50, p99)
        return found

    def _connections(self) -> list[Any]:
        source = self.source
        if source is None or not hasattr(source, "connections"):
            return []
        found = source.connections()
        return list(found.values()) if isinstance(found, dict) else list(found)


def _rest_backlog() -> int:
    """REST requests waiting for the process's budgets (snapshots, history)."""
    from bpx_flows.connectors.rest import HISTORY_BUDGET, PROCESS_BUDGET

    return int(PROCESS_BUDGET.waiting + HISTORY_BUDGET.waiting)
