"""Console and counting sinks."""

from __future__ import annotations

import contextlib
import os
import sys
from collections import Counter
from collections.abc import Callable
from typing import Any, TextIO

from bytewax.outputs import DynamicSink, StatelessSinkPartition

__all__ = ["CountingSink", "LineSink"]


class _LinePartition(StatelessSinkPartition[Any]):
    def __init__(
        self,
        stream: TextIO,
        render: Callable[[Any], str | None],
        prefix: str,
        on_reader_gone: Callable[[], None] | None,
    ) -> None:
        self._stream = stream
        self._render = render
        self._prefix = prefix
        self._on_reader_gone = on_reader_gone

    def write_batch(self, items: list[Any]) -> None:
        render, prefix = self._render, self._prefix
        lines = (render(item) for item in items)  # None: nothing to print for it
        text = "".join(f"{prefix}{line}\n" for line in lines if line is not None)
        if not text:
            return
        try:
            self._stream.write(text)
            self._stream.flush()
        except BrokenPipeError:
            if self._on_reader_gone is not None:
                self._on_reader_gone()
            _quiet(self._stream)


def _quiet(stream: TextIO) -> None:
    """After the reader of ``stream`` left (``| head``): write to /dev/null.

    Later writes, and the interpreter's last flush, then do not raise again.
    """
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


class LineSink(DynamicSink[Any]):
    """Writes one line per item to a text stream (stdout by default).

    Partition: one per worker, each writing whole batches (lines never interleave
    within a batch). Delivery: at-least-once with recovery. Never ends on its own.

    Args:
        render: item -> line (without the newline; ``None``: no line for it);
            ``str`` by default.
        stream: where to write; ``sys.stdout`` when ``None``.
        prefix: put in front of every line, e.g. the worker index.
        on_reader_gone: called when the reader of the stream left (``| head``),
            e.g. the run's ``StopSignal.set``; ``None``: the lines are dropped.
    """

    def __init__(
        self,
        render: Callable[[Any], str | None] = str,
        stream: TextIO | None = None,
        prefix: str = "",
        on_reader_gone: Callable[[], None] | None = None,
    ) -> None:
        self._render = render
        self._stream = stream
        self._prefix = prefix
        self._on_reader_gone = on_reader_gone

    def build(
        self, step_id: str, worker_index: int, worker_count: int
    ) -> _LinePartition:
        """One partition per worker."""
        prefix = self._prefix.format(worker=worker_index)
        stream = self._stream or sys.stdout
        return _LinePartition(stream, self._render, prefix, self._on_reader_gone)


class _CountingPartition(StatelessSinkPartition[Any]):
    def __init__(self, counts: Counter[str], key: Callable[[Any], str]) -> None:
        self._counts = counts
        self._key = key

    def write_batch(self, items: list[Any]) -> None:
        key = self._key
        self._counts.update(key(item) for item in items)


class CountingSink(DynamicSink[Any]):
    """Counts items by ``key(item)`` in ``counts``; for demos and benchmarks.

    All workers of a process share ``counts`` (Counter updates are atomic enough
    under the GIL for whole-batch ``update`` calls).
    """

    def __init__(self, key: Callable[[Any], str] = lambda _: "items") -> None:
        self.counts: Counter[str] = Counter()
        self._key = key

    def build(
        self, step_id: str, worker_index: int, worker_count: int
    ) -> _CountingPartition:
        """One partition per worker, all counting into ``counts``."""
        return _CountingPartition(self.counts, self._key)
