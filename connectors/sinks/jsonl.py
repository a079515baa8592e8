"""JSON Lines file sink: one record per line, appended, flushed every batch, rotated."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
from bytewax.outputs import DynamicSink, StatelessSinkPartition

__all__ = ["JsonLinesSink"]

_encode = msgspec.json.Encoder().encode


class _JsonLinesPartition(StatelessSinkPartition[Any]):
    def __init__(
        self, path: Path, max_bytes: int | None, every_s: float | None
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._max_bytes = max_bytes
        self._every_s = every_s
        self._file: BinaryIO = path.open("ab")
        self._opened = time.monotonic()
        self.rotations = 0

    def write_batch(self, items: list[Any]) -> None:
        self._file.write(b"".join(_encode(item) + b"\n" for item in items))
        self._file.flush()
        too_big = self._max_bytes is not None and self._file.tell() >= self._max_bytes
        too_old = (
            self._every_s is not None
            and time.monotonic() - self._opened >= self._every_s
        )
        if too_big or too_old:
            self._rotate()

    def _rotate(self) -> None:
        """Close the file under a timestamped name and start a new one."""
        self._file.close()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        target = self._path.with_name(
            f"{self._path.stem}.{stamp}.{self.rotations}{self._path.suffix}"
        )
        self._path.rename(target)
        self.rotations += 1
        self._file = self._path.open("ab")
        self._opened = time.monotonic()

    def close(self) -> None:
        self._file.close()


class JsonLinesSink(DynamicSink[Any]):
    """Appends every item as one JSON object per line (msgspec records as objects).

    Partition: one per worker; with several workers each writes its own file
    (``name.<worker>.jsonl``) so lines never interleave. Delivery: at-least-once with
    recovery (a replayed epoch appends again). Decimals are written as strings.
    Rotation: when the file reaches ``max_bytes`` or is ``every_s`` old (checked after
    each batch), it is renamed ``name.<UTC time>.<n>.jsonl`` and a new one started.

    Args:
        path: the file; created with its directory if missing, appended otherwise.
        max_bytes: rotate at this size; ``None``: never by size.
        every_s: rotate after this many seconds; ``None``: never by age.
    """

    def __init__(
        self,
        path: str | Path,
        max_bytes: int | None = None,
        every_s: float | None = None,
    ) -> None:
        self._path = Path(path)
        self._max_bytes = max_bytes
        self._every_s = every_s

    def build(
        self, step_id: str, worker_index: int, worker_count: int
    ) -> _JsonLinesPartition:
        """Open this worker's file."""
        path = self._path
        if worker_count > 1:
            path = path.with_name(f"{path.stem}.{worker_index}{path.suffix}")
        return _JsonLinesPartition(path, self._max_bytes, self._every_s)
