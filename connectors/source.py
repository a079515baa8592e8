"""Bytewax input sources: the live Backpack feed and the replay of a recording."""

from __future__ import annotations

import logging
import os
import pickle
import re
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import msgspec
from bytewax.inputs import (
    AbortExecution,
    DynamicSource,
    FixedPartitionedSource,
    StatefulSourcePartition,
    StatelessSourcePartition,
)

from bpx_flows.connectors.backpack.booksync import BookSnapshot
from bpx_flows.connectors.backpack.replayer import Replayer
from bpx_flows.connectors.backpack.signing import Credentials
from bpx_flows.connectors.backpack.streams import StreamName
from bpx_flows.connectors.backpack.wire import Frame
from bpx_flows.connectors.clock import WATERMARK_EVERY_US, Watermark, now_us
from bpx_flows.connectors.connection import (
    DEFAULT_WS_URL,
    Connection,
    ConnectionConfig,
    Record,
    Tap,
)
from bpx_flows.connectors.errors import BpxError
from bpx_flows.connectors.recording import RecordingReader
from bpx_flows.connectors.rest import DEFAULT_REST_URL, RestClient
from bpx_flows.connectors.routing import ShardPlan, partition
from bpx_flows.connectors.shard import Shard
from bpx_flows.connectors.worker_loop import WorkerLoop

__all__ = ["BackpackSource", "ReplaySource", "SourceConfig", "StopSignal", "partition"]

log = logging.getLogger("bpx_flows.source")
progress_log = logging.getLogger("bpx_flows.progress")


class StopSignal:
    """A process-wide "finish now" flag: sources end their partitions when it is set.

    The runner sets it on SIGINT/SIGTERM, so a flow ends like a finite one (sinks
    flushed, connections closed) instead of dying with a traceback. With
    ``abort_on_stop(True)`` (a run with recovery) the sources abort the execution
    instead of ending: Bytewax then commits nothing after the last snapshot, so open
    windows are not flushed and a resumed run continues exactly.
    """

    _event = threading.Event()
    _abort = False
    _started = threading.Event()
    _ending = threading.Event()

    @classmethod
    def set(cls) -> None:
        """Ask every source in this process to finish."""
        cls._event.set()

    @classmethod
    def clear(cls) -> None:
        """Reset (tests run several flows in one process)."""
        cls._event.clear()
        cls._started.clear()
        cls._ending.clear()

    @classmethod
    def abort_on_stop(cls, abort: bool) -> None:
        """Whether a stop aborts the run (recovery) rather than ending it."""
        cls._abort = abort

    @classmethod
    def aborting(cls) -> bool:
        """Whether a stop aborts the run (see ``abort_on_stop``)."""
        return cls._abort

    @classmethod
    def end(cls) -> NoReturn:
        """What a partition raises once a stop was requested."""
        if cls._abort:
            raise AbortExecution
        raise StopIteration

    @classmethod
    def note_ending(cls) -> None:
        """A source reached its own end (a deadline): the run is finishing."""
        cls._ending.set()

    @classmethod
    def ending(cls) -> bool:
        """Whether a source reached its own end."""
        return cls._ending.is_set()

    @classmethod
    def mark_started(cls) -> None:
        """A source partition was built: the dataflow runs (the cluster formed)."""
        cls._started.set()

    @classmethod
    def started(cls) -> bool:
        """Whether any source partition of this process was built."""
        return cls._started.is_set()

    @classmethod
    def is_set(cls) -> bool:
        """Whether a stop was requested."""
        return cls._event.is_set()


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """How the live source connects and batches.

    Attributes:
        connection: per-connection behaviour (URL, timeouts, backoff, limits).
        rest_url: the REST base URL for depth snapshots.
        streams_per_connection: streams carried by one connection.
        batch_timeout_s: the longest a worker with nothing to do sleeps in
            ``next_batch`` before returning an empty batch, seconds (it returns as
            soon as a frame arrives on any of its connections).
        batch_size: the most records handed to Bytewax at once.
        run_for_s: end the source after this long (demos, benchmarks); ``None`` runs
            until stopped.
        rest_timeout_s: one REST request's deadline, seconds (then it is retried).
        end_on_fatal: on a fatal error (refused key...) end the flow cleanly and keep
            the error in ``BackpackSource.failures`` instead of raising it inside
            Bytewax (which prints a Rust panic trace); the CLI reports it in one line.
        watermarks: connections carrying an all-markets stream also emit a
            ``Watermark`` of the receive clock each whole second (for flows that need
            time to pass on quiet markets: RFQ expiry).
    """

    connection: ConnectionConfig = field(default_factory=ConnectionConfig)
    rest_url: str = DEFAULT_REST_URL
    streams_per_connection: int = 50
    batch_timeout_s: float = 0.05
    batch_size: int = 5_000
    run_for_s: float | None = None
    end_on_fatal: bool = False
    rest_timeout_s: float = 10.0
    watermarks: bool = False


class _LivePartition(StatelessSourcePartition[Record]):
    """A worker's live connections, each carrying a fixed group of streams.

    One partition per worker (a ``DynamicSource``), so one ``next_batch`` hands
    Bytewax what every connection of the worker has ready. They all run on the
    worker's loop (``WorkerLoop``): a call reads every socket of the worker, and
    only a worker with nothing ready sleeps in the selector until a frame arrives.
    """

    def __init__(
        self,
        groups: dict[str, list[StreamName]],
        config: SourceConfig,
        creds: Credentials | None,
        tap: Tap | None,
        failures: list[BpxError] | None,
    ) -> None:
        self._config = config
        self._failures = failures
        # One REST client (one connection pool) for the worker's connections; the
        # request budget is shared by the whole process anyway.
        self._rest = RestClient(config.rest_url, timeout_s=config.rest_timeout_s)
        self.connections = {
            name: Connection(streams, config.connection, creds, self._rest, tap)
            for name, streams in groups.items()
        }
        self._order = list(self.connections.values())
        self._next = 0  # the connection served first by the next batch (fairness)
        # Only once nothing above can refuse the streams: the loop is counted.
        self._worker = WorkerLoop.for_this_thread()
        for conn in self._order:
            conn.on_ready = self._worker.wake
            self._worker.add(conn)
        self._deadline = (
            None if config.run_for_s is None else time.monotonic() + config.run_for_s
        )
        self._closed = False
        # The connections carrying an all-markets stream give the watermarks.
        self._clocked = [
            self.connections[name]
            for name, streams in groups.items()
            if config.watermarks and any(s.symbol is None for s in streams)
        ]
        self._watermark_us = 0
        # They connect on the worker's next loop pass.
        for conn in self._order:
            self._worker.loop.call_soon(conn.start)

    @property
    def connection(self) -> Connection:
        """The first connection of this partition (for stats)."""
        return self._order[0]

    @property
    def worker(self) -> WorkerLoop:
        """The worker's shared loop the connections run on."""
        return self._worker

    def next_batch(self) -> list[Record]:
        if self._closed:
            raise StopIteration
        if StopSignal.is_set() or (
            self._deadline is not None and time.monotonic() >= self._deadline
        ):
            StopSignal.note_ending()
            self.close()
            # Everything received (and recorded) before the sockets closed is
            # emitted: a stopped run loses nothing it read, and its recording
            # replays to the same records.
            rest = [r for conn in self._order for r in conn.drain()]
            if rest:
                return rest
            if StopSignal.is_set():
                StopSignal.end()
            raise StopIteration
        worker = self._worker
        worker.poll()
        batch = self._take()
        if not batch and not worker.anything_ready():
            worker.wait(self._idle_wait_s())
            batch = self._take()
        if self._clocked and not any(c.pending for c in self._clocked):
            # After the batch: everything those connections received before it
            # left with the batch.
            at = now_us() // WATERMARK_EVERY_US * WATERMARK_EVERY_US
            if at > self._watermark_us:
                self._watermark_us = at
                batch.append(Watermark(at))
        return batch

    def _take(self) -> list[Record]:
        """Up to ``batch_size`` ready records, from each connection in turn."""
        room = self._config.batch_size
        order = self._order
        count = len(order)
        start = self._next
        self._next = (start + 1) % count
        batch: list[Record] = []
        for i in range(count):
            conn = order[(start + i) % count]
            try:
                taken = conn.take_ready(room - len(batch))
            except BpxError as exc:
                if self._failures is None:
                    raise
                # End the flow cleanly (the next call closes and drains every
                # connection); the caller reports the error after the run.
                if not StopSignal.is_set():
                    self._failures.append(exc)
                StopSignal.set()
                continue
            if taken:
                batch += taken
                if len(batch) >= room:
                    break
        return batch

    def _idle_wait_s(self) -> float:
        """How long a worker with nothing ready sleeps (a frame ends it sooner).

        At most ``batch_timeout_s`` (a stop request is seen within that bound),
        never past the deadline or the next watermark.
        """
        wait_s = self._config.batch_timeout_s
        if self._deadline is not None:
            wait_s = min(wait_s, max(0.0, self._deadline - time.monotonic()))
        if self._clocked:
            next_us = self._watermark_us + WATERMARK_EVERY_US
            wait_s = min(wait_s, max(0.0, (next_us - now_us()) / 1e6))
        return wait_s

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        worker = self._worker
        try:
            for conn in self._order:
                worker.remove(conn)
                worker.run(conn.close())
            worker.run(self._rest.aclose())
        finally:
            worker.release()


class BackpackSource(DynamicSource[Record]):
    """The live Backpack feed.

    One partition per worker: the worker's WebSocket connections, each carrying a
    fixed group of streams (``groups``, or ``partition`` of the streams shared out
    over the workers in turn). Emits ``Frame`` records, ``BookSnapshot``/``Resync``
    around depth diffs (books are synced here, at the edge), ``BadFrame`` dead
    letters and ``ServerError`` frames. No resume state: delivery is at-most-once
    across restarts (books re-seed from a fresh snapshot). Ends on ``StopSignal``,
    after ``run_for_s``, or never. Constructing it does no I/O; connections open
    when a worker builds its partition.

    Args:
        streams: what to subscribe.
        config: connection and batching settings.
        credentials: for ``account.*`` streams.
        tap: receives every raw frame and REST answer (the recorder).
        groups: the connections of each worker index, by name
            (``connectors.routing.live_groups`` puts each symbol's streams on the
            worker that owns its state); every worker index must exist in the run.
    """

    def __init__(
        self,
        streams: Sequence[StreamName],
        config: SourceConfig | None = None,
        credentials: Credentials | None = None,
        tap: Tap | None = None,
        groups: dict[int, dict[str, list[StreamName]]] | None = None,
    ) -> None:
        self.config = config or SourceConfig()
        self._streams = list(streams)
        self._groups = groups
        if groups is None:
            partition(self._streams, self.config.streams_per_connection)  # checks
        self._credentials = credentials
        self._tap = tap
        self.partitions: dict[int, _LivePartition] = {}  # by worker index
        self.failures: list[BpxError] = []  # with ``end_on_fatal``: why it ended

    @classmethod
    def from_env(
        cls,
        streams: Sequence[StreamName],
        environ: dict[str, str] | None = None,
        watermarks: bool = False,
    ) -> BackpackSource:
        """A source configured by the environment, for ``python -m bytewax.run``.

        ``BPX_WS_URL`` and ``BPX_REST_URL`` (default: the exchange), ``BPX_SECONDS``
        (run this long), and the key from ``BPX_API_SECRET``/``BPX_API_SECRET_FILE``.
        ``watermarks`` as in ``SourceConfig``.
        """
        env = os.environ if environ is None else environ
        seconds = env.get("BPX_SECONDS")
        config = SourceConfig(
            connection=ConnectionConfig(ws_url=env.get("BPX_WS_URL", DEFAULT_WS_URL)),
            rest_url=env.get("BPX_REST_URL", DEFAULT_REST_URL),
            run_for_s=float(seconds) if seconds else None,
            watermarks=watermarks,
        )
        return cls(streams, config, Credentials.from_env(environ))

    def groups_for(
        self, worker_index: int, worker_count: int
    ) -> dict[str, list[StreamName]]:
        """The connections worker ``worker_index`` of ``worker_count`` opens."""
        if self._groups is not None:
            beyond = sorted(w for w in self._groups if not 0 <= w < worker_count)
            if beyond:
                msg = (
                    f"connection groups were planned for workers {beyond}, but the "
                    f"run has {worker_count} worker(s): their streams would never "
                    "be read"
                )
                raise ValueError(msg)
            return self._groups.get(worker_index, {})
        groups = partition(self._streams, self.config.streams_per_connection)
        return {
            name: streams
            for n, (name, streams) in enumerate(groups.items())
            if n % worker_count == worker_index
        }

    def connections(self) -> dict[str, Connection]:
        """Every connection opened so far in this process, by name (for stats)."""
        return {
            name: conn
            for part in list(self.partitions.values())
            for name, conn in part.connections.items()
        }

    def build(
        self, step_id: str, worker_index: int, worker_count: int
    ) -> StatelessSourcePartition[Record]:
        """Open this worker's connections."""
        StopSignal.mark_started()
        groups = self.groups_for(worker_index, worker_count)
        if not groups:
            return _NoStreams()  # a worker with no streams of its own
        failures = self.failures if self.config.end_on_fatal else None
        part = _LivePartition(
            groups, self.config, self._credentials, self._tap, failures
        )
        self.partitions[worker_index] = part
        return part


class _NoStreams(StatelessSourcePartition[Record]):
    """A worker with no connections: ends at once."""

    def next_batch(self) -> list[Record]:
        raise StopIteration


@dataclass(frozen=True, slots=True)
class ReplayState:
    """Resume state of a replay partition.

    ``lines`` were consumed; ``state`` pickles the replayer (its book-sync state)
    and the records those lines produced that were not emitted yet.
    """

    lines: int
    state: bytes


_RECV_US = re.compile(rb'\{"recv_us":(\d{1,20})')


class _ReplayPartition(StatefulSourcePartition[Any, ReplayState]):
    """One recording file, read in order.

    With ``watermarks``, a ``Watermark`` goes before the first line whose receive
    time reaches a new whole second: decided line by line on the file's own times,
    so the records of any symbol and the watermarks fall in the same order whatever
    the batch sizes, shards or number of workers.
    """

    def __init__(
        self,
        path: Path,
        resume: ReplayState | None,
        speed: float | None,
        batch_size: int,
        restamp: bool = False,
        shard: Shard | None = None,
        progress_every_s: float = 5.0,
        watermarks: bool = False,
    ) -> None:
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
        self._consumed = resume.lines if resume else 0
        self._reader = RecordingReader(path, self._consumed)
        self._blocks = self._reader.blocks()
        self._block: list[bytes] = []  # the lines read from the file, not fed yet
        self._at = 0  # the next of them
        self._progress = _Progress(
            path.name, self._reader, self._consumed, progress_every_s
        )
        self._speed = speed
        self._batch_size = batch_size
        self._first_recv_us: int | None = None
        self._t0 = time.monotonic()
        self._done = False
        self._awake: datetime | None = None

    def next_batch(self) -> list[Any]:
        if StopSignal.is_set():
            StopSignal.end()
        if self._done and not self._pending:
            raise StopIteration
        batch: list[Any] = []
        pending = self._pending
        while len(batch) < self._batch_size:
            if not pending:
                records = self._read(self._batch_size - len(batch))
                if records is None:
                    break
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
        """The records of up to ``most`` next lines, or ``None`` at the end of the file.

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
        return ReplayState(self._consumed, state)


def _stamp_now(records: list[Any]) -> None:
    """Receive time := now, so latency downstream is measured from the source."""
    now = now_us()
    for record in records:
        if type(record) is Frame or type(record) is BookSnapshot:
            msgspec.structs.force_setattr(record, "recv_us", now)


class _Progress:
    """A log line every few seconds while a recording replays: lines, rate, ETA."""

    def __init__(
        self, name: str, reader: RecordingReader, start_line: int, every_s: float
    ) -> None:
        self._every_s = every_s
        self._name = name
        self._reader = reader
        self._start_line = start_line
        self._t0 = self._last = time.monotonic()

    def tick(self, lines: int) -> None:
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
        elapsed = time.monotonic() - self._t0
        progress_log.info(
            "replay %s: done, %s lines in %.1f s", self._name, f"{lines:,}", elapsed
        )


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
    ) -> None:
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
        StopSignal.mark_started()
        only = self._only
        if self._plan is not None:
            path, symbols, default = self._plan.parts[for_part]
            known = frozenset().union(*(v[1] for v in self._plan.parts.values()))
            shard = Shard(symbols, known, default, others=only is None)
            return _ReplayPartition(
                Path(path),
                resume_state,
                self._speed,
                self._batch_size,
                self._restamp,
                shard,
                self._progress_every_s,
                self._watermarks and default,
            )
        return _ReplayPartition(
            self._paths[for_part],
            resume_state,
            self._speed,
            self._batch_size,
            self._restamp,
            None if only is None else Shard(only, only, default=True, others=False),
            self._progress_every_s,
            self._watermarks,
        )
