"""JSON Lines file sink: one record per line, appended, flushed every batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

import msgspec
from bytewax.outputs import DynamicSink, StatelessSinkPartition

__all__ = ["JsonLinesSink"]

_encode = msgspec.json.Encoder().encode


class _JsonLinesPartition(StatelessSinkPartition[Any]):
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO = path.open("ab")

    def write_batch(self, items: list[Any]) -> None:
        self._file.write(b"".join(_encode(item) + b"\n" for item in items))
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class JsonLinesSink(DynamicSink[Any]):
    """Appends every item as one JSON object per line (msgspec records as objects).

    Partition: one per worker; with several workers each writes its own file
    (``name.<worker>.jsonl``) so lines never interleave. Delivery: at-least-once with
    recovery (a replayed epoch appends again). Decimals are written as strings.

    Args:
        path: the file; created with its directory if missing, appended otherwise.
    """

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)

    def build(
        self, step_id: str, worker_index: int, worker_count: int
    ) -> _JsonLinesPartition:
        """Open this worker's file."""
        path = self._path
        if worker_count > 1:
            path = path.with_name(f"{path.stem}.{worker_index}{path.suffix}")
        return _JsonLinesPartition(path)
