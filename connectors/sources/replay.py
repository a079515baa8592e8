"""Recordings replayed as a Bytewax source: the same records the live source emitted."""

from __future__ import annotations

import pickle
import re
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from ..backpack.booksync import BookSnapshot
from ..backpack.replayer import Replayer
from ..backpack.wire import Frame
from ..clock import WATERMARK_EVERY_US, Watermark, now_us
from ..errors import BpxError
from ..recording import RecordingReader
from ..routing import ShardPlan
from ..shard import Shard
from .progress import ReplayProgress
from .stop import StopSignal

if TYPE_CHECKING:
    from ..kafka.spec import KafkaSpec

__all__ = [
    "FileLines",
    "KafkaReplaySource",
    "LineFeed",
    "ReplaySource",
    "ReplayState",
    "topic_parts",
]


@dataclass(frozen=True, slots=True)
class ReplayState:
    """Resume state of a replay partition.

    ``lines``: where to go on (lines consumed of a file; the next offset of a topic
    partition); ``state`` pickles the replayer (its book-sync state)
    and the records those lines produced that were not emitted yet.
    """

    lines: int
    state: bytes


_RECV_US = re.compile(rb'\{"recv_us":(\d{1,20})')


class LineFeed(Protocol):
    """Where a replay partition's lines come from: a file, or a topic partition."""

    name: str

    def blocks(self) -> Iterator[list[bytes]]:
        """The lines, a block at a time (``[]``: none yet, ask again)."""
        ...

    def position(self, at: int) -> int:
        """The resume point after the first ``at`` lines of the current block."""
        ...

    def fraction_read(self) -> float:
        """0..1: how much is read."""
        ...


class FileLines:
    """A recording file as a ``LineFeed``: positions count lines."""

    def __init__(self, path: Path, skip: int) -> None:
        self.name = path.name
        self._reader = RecordingReader(path, skip)
        self._before = skip  # lines before the current block

    def blocks(self) -> Iterator[list[bytes]]:
        """The file's lines, about 1 MiB at a time."""
        for block in self._reader.blocks():
            yield block
            self._before += len(block)

    def position(self, at: int) -> int:
        """Lines consumed after the first ``at`` of the current block."""
        return self._before + at

    def fraction_read(self) -> float:
        """The share of the (compressed) file read."""
        return self._reader.fraction_read()


class _ReplayPartition(StatefulSourcePartition[Any, ReplayState]):
    """One recording (a file, a topic partition), read in order.

    With ``watermarks``, a ``Watermark`` goes before the first line whose receive
    time reaches a new whole second: decided line by line on the file's own times,
    so the records of any symbol and the watermarks fall in the same order whatever
    the batch sizes, shards or number of workers.
    """

    def __init__(
        self,
        feed: Callable[[int | None], LineFeed],
        resume: ReplayState | None,
        speed: float | None,
        batch_size: int,
        restamp: bool = False,
        shard: Shard | None = None,
        progress_every_s: float = 5.0,
        watermarks: bool = False,
        *,
        stop: StopSignal,
    ) -> None:
        self._stop = stop
        self._restamp = restamp
        self._shard = shard
        self._replayer = Replayer()
        self._pending: deque[Any] = deque()
        self._watermarks = watermarks
        self._watermark_us: int | None = None  # the last one (None: no time yet)
        if resume is not None:
            self._replayer, pending, *clock = pickle.loads(resume.state)
            self._pending.extend(pending)
            self._watermark_us = clock[0] if clock else None
        self._lines = feed(resume.lines if resume else None)
        self._consumed = 0  # lines, for the progress lines
        self._blocks = self._lines.blocks()
        self._block: list[bytes] = []  # the lines read, not fed yet
        self._at = 0  # the next of them
        self._progress = ReplayProgress(
            self._lines.name, self._lines, 0, progress_every_s
        )
        self._speed = speed
        self._batch_size = batch_size
        self._first_recv_us: int | None = None
        self._t0 = time.monotonic()
        self._done = False
        self._awake: datetime | None = None

    def next_batch(self) -> list[Any]:
        if self._stop.is_set():
            self._stop.end()
        if self._done and not self._pending:
            raise StopIteration
        batch: list[Any] = []
        pending = self._pending
        while len(batch) < self._batch_size:
            if not pending:
                records = self._read(self._batch_size - len(batch))
                if records is None:
                    break  # the end, or nothing yet (a followed topic)
                if self._speed is None:
                    batch.extend(records)  # as fast as possible: no pacing queue
                else:
                    pending.extend(records)
                continue
            if self._speed is not None and not self._due(pending[0]):
                break
            batch.append(pending.popleft())
        if self._restamp:
            _stamp_now(batch)
        return batch

    def _read(self, most: int) -> list[Any] | None:
        """The records of up to ``most`` next lines (``None``: the end, or no line yet).

        Lines are fed a slice at a time (one call for thousands of lines); the
        records of every line counted as consumed leave in this batch or wait in
        ``pending``, so a snapshot taken between batches resumes exactly.
        """
        if self._at >= len(self._block):
            block = next(self._blocks, None)
            if block is None:
                self._done = True
                self._progress.done(self._consumed)
                return None
            self._block, self._at = block, 0
            if not block:
                return None
        lines = self._block[self._at : self._at + max(most, 1)]
        self._at += len(lines)
        self._consumed += len(lines)
        self._progress.tick(self._consumed)
        if self._watermarks:
            return self._feed_with_watermarks(lines)
        return self._feed(lines)

    def _feed(self, lines: list[bytes]) -> list[Any]:
        if self._shard is not None:
            lines = self._shard.select(lines)
        return self._replayer.feed_lines(lines)

    def _feed_with_watermarks(self, lines: list[bytes]) -> list[Any]:
        out: list[Any] = []
        start = 0
        last = self._watermark_us
        recv = _RECV_US.match
        for at, line in enumerate(lines):
            found = recv(line)
            if found is None:
                continue  # the header: no time
            second = int(found.group(1)) // WATERMARK_EVERY_US * WATERMARK_EVERY_US
            if last is None:
                last = second
            elif second > last:
                out += self._feed(lines[start:at])
                out.append(Watermark(second))
                start, last = at, second
        self._watermark_us = last
        out += self._feed(lines[start:])
        return out

    def _due(self, record: Any) -> bool:
        assert self._speed is not None
        recv_us = getattr(record, "recv_us", 0)
        if not recv_us:
            return True
        if self._first_recv_us is None:
            self._first_recv_us = recv_us
            self._t0 = time.monotonic()
        due_s = (recv_us - self._first_recv_us) / 1e6 / self._speed
        wait_s = due_s - (time.monotonic() - self._t0)
        if wait_s <= 0:
            self._awake = None
            return True
        self._awake = datetime.now(UTC) + timedelta(seconds=min(wait_s, 0.05))
        return False

    def next_awake(self) -> datetime | None:
        return self._awake

    def snapshot(self) -> ReplayState:
        state = pickle.dumps((self._replayer, list(self._pending), self._watermark_us))
        return ReplayState(self._lines.position(self._at), state)

    def close(self) -> None:
        close = getattr(self._lines, "close", None)
        if close is not None:
            close()


def _stamp_now(records: list[Any]) -> None:
    """Receive time := now, so latency downstream is measured from the source."""
    now = now_us()
    for record in records:
        if type(record) is Frame or type(record) is BookSnapshot:
            msgspec.structs.force_setattr(record, "recv_us", now)


class ReplaySource(FixedPartitionedSource[Any, ReplayState]):
    """Replays recordings into the same records the live source emits.

    Partition: one recording file. Resume state: the number of lines consumed plus
    the book-sync state, so a resumed replay continues exactly (exactly-once).
    Ends at the end of the last line of each file (a torn tail is skipped).

    Args:
        paths: recording files.
        speed: ``None`` replays as fast as possible; ``1.0`` paces by ``recv_us`` in
            real time, ``10.0`` ten times faster.
        batch_size: the most records per batch.
        restamp: set each record's ``recv_us`` to the time it leaves the source, so
            receive-to-sink latency can be measured on a replay (benchmarks).
        plan: shard each file over the workers (``connectors.routing.replay_plan``):
            each worker reads every line but decodes only the symbols whose state it
            owns, so keyed steps send nothing to other workers or processes.
        only: keep only the lines of these symbols (and of streams of no symbol);
            ``None`` keeps every symbol.
        progress_every_s: a progress log line at most this often, seconds.
        watermarks: the partition of each file that reads its all-markets lines
            also emits a ``Watermark`` each whole second of receive time.
        stop: the run's stop flag (``None``: a new one, as ``self.stop``).
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        speed: float | None = None,
        batch_size: int = 10_000,
        restamp: bool = False,
        plan: ShardPlan | None = None,
        only: frozenset[str] | None = None,
        progress_every_s: float = 5.0,
        watermarks: bool = False,
        stop: StopSignal | None = None,
    ) -> None:
        self.stop = self._stop = stop or StopSignal()
        self._only = only
        self._watermarks = watermarks
        self._progress_every_s = progress_every_s
        self._paths = {
            f"file-{n:03d}-{Path(p).name}": Path(p) for n, p in enumerate(paths)
        }
        self._speed = speed
        self._batch_size = batch_size
        self._restamp = restamp
        self._plan = plan

    def list_parts(self) -> list[str]:
        """One partition per recording file (per file and worker, with a plan)."""
        if self._plan is not None:
            return list(self._plan.parts)
        return list(self._paths)

    def build_part(
        self, step_id: str, for_part: str, resume_state: ReplayState | None
    ) -> _ReplayPartition:
        """Open one recording, resuming after ``resume_state`` when given."""
        self._stop.mark_started()
        only = self._only
        if self._plan is not None:
            path, symbols, default = self._plan.parts[for_part]
            known = frozenset().union(*(v[1] for v in self._plan.parts.values()))
            shard = Shard(symbols, known, default, others=only is None)
            return _ReplayPartition(
                _file_feed(Path(path)),
                resume_state,
                self._speed,
                self._batch_size,
                self._restamp,
                shard,
                self._progress_every_s,
                self._watermarks and default,
                stop=self._stop,
            )
        return _ReplayPartition(
            _file_feed(self._paths[for_part]),
            resume_state,
            self._speed,
            self._batch_size,
            self._restamp,
            None if only is None else Shard(only, only, default=True, others=False),
            self._progress_every_s,
            self._watermarks,
            stop=self._stop,
        )


def _file_feed(path: Path) -> Callable[[int | None], LineFeed]:
    return lambda skip: FileLines(path, skip or 0)


class KafkaReplaySource(FixedPartitionedSource[Any, ReplayState]):
    """A topic the raw feed was recorded into, replayed as a recording.

    Partition: one partition of the topic (``connectors.kafka.placement`` says what
    each holds); Bytewax spreads them over the workers of every process, and a
    worker with none idles. Resume state: the next offset plus the replayer's
    state, as a file's, so a resumed run continues exactly once. Without
    ``follow`` each partition ends at the end it had when the run began. The
    default partition (0) emits the ``Watermark`` records, from its clock lines.

    Args:
        spec: brokers and topic.
        partitions: the topic's partition count (asked before the run).
        follow: read on past the end, until the run stops.
        seconds: with ``follow``, end after this long (``None``: never).
        Others as ``ReplaySource``. A partition's fatal error (the brokers stopped
        answering) goes to ``failures`` and stops the run.
    """

    def __init__(
        self,
        spec: KafkaSpec,
        partitions: int,
        speed: float | None = None,
        batch_size: int = 10_000,
        only: frozenset[str] | None = None,
        progress_every_s: float = 5.0,
        watermarks: bool = False,
        follow: bool = False,
        seconds: float | None = None,
        stop: StopSignal | None = None,
        restamp: bool = False,
    ) -> None:
        self.stop = self._stop = stop or StopSignal()
        self.failures: list[BpxError] = []
        self._restamp = restamp
        self._spec = spec
        self._parts = {name: p for p, name in enumerate(topic_parts(spec, partitions))}
        self._speed = speed
        self._batch_size = batch_size
        self._only = only
        self._progress_every_s = progress_every_s
        self._watermarks = watermarks
        self._follow = follow
        self._seconds = seconds

    def list_parts(self) -> list[str]:
        """One partition per topic partition."""
        return list(self._parts)

    def build_part(
        self, step_id: str, for_part: str, resume_state: ReplayState | None
    ) -> _ReplayPartition:
        """Read one topic partition, from where ``resume_state`` left it."""
        from ..kafka.lines import TopicLines
        from ..kafka.placement import DEFAULT_PARTITION

        self._stop.mark_started()
        number = self._parts[for_part]
        spec, follow, batch = self._spec, self._follow, self._batch_size
        only = self._only
        return _GuardedPartition(
            lambda start: TopicLines(spec, number, start, follow, batch),
            resume_state,
            self._speed,
            self._batch_size,
            self._restamp,
            None if only is None else Shard(only, only, default=True, others=False),
            self._progress_every_s,
            self._watermarks and number == DEFAULT_PARTITION,
            stop=self._stop,
            failures=self.failures,
            deadline=None
            if self._seconds is None
            else time.monotonic() + self._seconds,
        )


def topic_parts(spec: KafkaSpec, partitions: int) -> list[str]:
    """The source partition names of a topic's partitions, in partition order."""
    return [f"kafka-{spec.topic}-{p:04d}" for p in range(max(partitions, 1))]


class _GuardedPartition(_ReplayPartition):
    """A replay partition whose feed can fail (a topic): the error ends the run.

    The error goes to ``failures`` (the runner prints it in one line, exit 2) and
    the run's stop flag is set, so every other partition ends too.
    """

    def __init__(
        self,
        *args: Any,
        failures: list[BpxError],
        deadline: float | None,
        **kwargs: Any,
    ) -> None:
        self._failures = failures
        self._deadline = deadline
        super().__init__(*args, **kwargs)

    def next_batch(self) -> list[Any]:
        if self._deadline is not None and time.monotonic() >= self._deadline:
            self._stop.note_ending()
            raise StopIteration
        try:
            return super().next_batch()
        except BpxError as exc:
            self._failures.append(exc)
            self._stop.set()
            self._stop.end()
