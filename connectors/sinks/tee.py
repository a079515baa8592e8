"""A sink writing every batch to several dynamic sinks (console, file, metrics)."""

from __future__ import annotations

from typing import Any

from bytewax.outputs import DynamicSink, StatelessSinkPartition

__all__ = ["TeeSink"]


class _TeePartition(StatelessSinkPartition[Any]):
    def __init__(self, parts: list[StatelessSinkPartition[Any]]) -> None:
        self._parts = parts

    def write_batch(self, items: list[Any]) -> None:
        for part in self._parts:
            part.write_batch(items)

    def close(self) -> None:
        for part in self._parts:
            part.close()


class TeeSink(DynamicSink[Any]):
    """Writes each batch to every given sink, in order.

    Partition: one per worker, holding one partition of each inner sink. Delivery is
    that of the inner sinks; an inner sink that raises stops the flow (wrap fallible
    outputs, like webhooks, in a sink that queues and counts, as ``WebhookSink`` does).
    """

    def __init__(self, *sinks: DynamicSink[Any]) -> None:
        self._sinks = sinks

    def build(
        self, step_id: str, worker_index: int, worker_count: int
    ) -> _TeePartition:
        """Build every inner sink's partition for this worker."""
        parts = [s.build(step_id, worker_index, worker_count) for s in self._sinks]
        return _TeePartition(parts)
