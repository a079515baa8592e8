"""JSON Lines file sink: one record per line, appended, flushed every batch, rotated."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, BinaryIO

from bytewax.outputs import (
    DynamicSink,
    FixedPartitionedSink,
    StatefulSinkPartition,
    StatelessSinkPartition,
)

from ..kinds import record_json

__all__ = ["JsonLinesSink", "ResumableJsonLinesSink"]

_encode = record_json  # each line says its record's type first


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


class _ResumableJsonLinesPartition(StatefulSinkPartition[Any, int]):
    def __init__(self, path: Path, resume_at: int | None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO = path.open("r+b" if path.exists() else "w+b")
        # Resuming: drop what was written after the snapshot (it is written again);
        # a fresh run owns the file from the start.
        self._file.truncate(resume_at or 0)
        self._file.seek(resume_at or 0)

    def write_batch(self, values: list[Any]) -> None:
        self._file.write(b"".join(_encode(value) + b"\n" for value in values))
        self._file.flush()

    def snapshot(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        self._file.close()


class ResumableJsonLinesSink(FixedPartitionedSink[Any, int]):
    """One JSON Lines file written exactly once across crashes, with recovery.

    Partition: one (``"out"``), so one worker of the cluster writes the file; items
    arrive as ``(key, record)`` and the key is dropped. Resume state: the file size at
    the last snapshot; a resumed run truncates the file there and writes on, so with
    Bytewax recovery every record is in the file exactly once. A fresh run (no resume
    state) starts the file empty.
    """

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)

    def list_parts(self) -> list[str]:
        """The one file."""
        return ["out"]

    def build_part(
        self, step_id: str, for_part: str, resume_state: int | None
    ) -> _ResumableJsonLinesPartition:
        """Open the file at the snapshot's size (or empty)."""
        return _ResumableJsonLinesPartition(self._path, resume_state)
