"""The live Backpack feed as a Bytewax source: one partition per worker."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from bytewax.inputs import DynamicSource, StatelessSourcePartition

from ..backpack.signing import Credentials
from ..backpack.streams import StreamName
from ..clock import WATERMARK_EVERY_US, WakeTimes, Watermark, now_us
from ..connection import (
    DEFAULT_WS_URL,
    Connection,
    ConnectionConfig,
    Record,
    Tap,
)
from ..errors import BpxError, ConfigError
from ..rest import DEFAULT_REST_URL, RestClient
from ..routing import partition
from ..worker_loop import WorkerLoop
from .stop import StopSignal

__all__ = ["BackpackSource", "SourceConfig"]


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
        wakes: when the flow's timers come due (candle windows closing by the
            clock): a worker with nothing to read sleeps past none of them.
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
    wakes: WakeTimes | None = None


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
        stop: StopSignal,
    ) -> None:
        self._config = config
        self._stop = stop
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
        if self._stop.is_set() or (
            self._deadline is not None and time.monotonic() >= self._deadline
        ):
            self._stop.note_ending()
            self.close()
            # Everything received (and recorded) before the sockets closed is
            # emitted: a stopped run loses nothing it read, and its recording
            # replays to the same records.
            rest = [r for conn in self._order for r in conn.drain()]
            if rest:
                return rest
            if self._stop.is_set():
                self._stop.end()
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
                if not self._stop.is_set():
                    self._failures.append(exc)
                self._stop.set()
                continue
            if taken:
                batch += taken
                if len(batch) >= room:
                    break
        return batch

    def _idle_wait_s(self) -> float:
        """How long a worker with nothing ready sleeps (a frame ends it sooner).

        At most ``batch_timeout_s`` (a stop request is seen within that bound),
        never past the deadline, the next watermark or the flow's next timer.
        """
        wait_s = self._config.batch_timeout_s
        wakes = self._config.wakes
        if wakes is not None:
            now = now_us()
            wait_s = min(wait_s, (wakes.next_after(now) - now) / 1e6)
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
    across restarts (books re-seed from a fresh snapshot). Ends on its ``stop``,
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
        stop: the run's stop flag (``None``: a new one, as ``self.stop``).
    """

    def __init__(
        self,
        streams: Sequence[StreamName],
        config: SourceConfig | None = None,
        credentials: Credentials | None = None,
        tap: Tap | None = None,
        groups: dict[int, dict[str, list[StreamName]]] | None = None,
        stop: StopSignal | None = None,
    ) -> None:
        self.config = config or SourceConfig()
        self.stop = self._stop = stop or StopSignal()
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
                raise ConfigError(msg)
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
        self._stop.mark_started()
        groups = self.groups_for(worker_index, worker_count)
        if not groups:
            return _NoStreams()  # a worker with no streams of its own
        failures = self.failures if self.config.end_on_fatal else None
        part = _LivePartition(
            groups, self.config, self._credentials, self._tap, failures, self._stop
        )
        self.partitions[worker_index] = part
        return part


class _NoStreams(StatelessSourcePartition[Record]):
    """A worker with no connections: ends at once."""

    def next_batch(self) -> list[Record]:
        raise StopIteration
