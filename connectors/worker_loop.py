"""One event loop per Bytewax worker: every live connection the worker owns runs on it.

Bytewax calls a source partition's ``next_batch`` on its worker's thread, one
partition after another. A loop per partition, run only inside that partition's
``next_batch``, reads each socket only while Bytewax happens to ask that partition,
so a quiet connection's wait stalls the busy ones. Here the partitions of a worker
share one loop, driven from whichever partition Bytewax asks:

- ``poll()`` runs one pass of the loop without waiting: every socket of the worker
  that has bytes is read, its frames decoded and its books synced, and the timers
  that are due (pings, watchdogs, snapshot retries) run.
- ``wait(timeout_s)`` runs the loop until any connection of the worker has records
  ready (``wake()``), or the time is up: a worker with nothing to do sleeps in the
  selector, and one that receives a frame resumes at once.

No thread and no lock: the loop only ever runs on the worker's own thread, and
reading pauses by itself while the dataflow is busy downstream (the kernel's socket
buffers fill and TCP pushes back), which is the backpressure the feed needs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, ClassVar, Protocol, TypeVar

__all__ = ["WorkerLoop"]


class _Pending(Protocol):
    """A connection, as far as the loop needs it: how many records wait."""

    @property
    def pending(self) -> int: ...


T = TypeVar("T")

_MOST_PASSES = 16  # loop passes per poll while callbacks keep being queued


class WorkerLoop:
    """The event loop shared by the live partitions built on one worker thread.

    Get it with ``WorkerLoop.for_this_thread()`` and give it back with
    ``release()``; the last release closes the loop.
    """

    _loops: ClassVar[dict[int, WorkerLoop]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, thread_id: int) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread_id = thread_id
        self._users = 0
        self._connections: list[_Pending] = []  # of the partitions using the loop
        self._waiting = False
        self.polls = 0  # passes of the loop, for benchmarks
        self.waits = 0  # of them, those that slept

    @classmethod
    def for_this_thread(cls) -> WorkerLoop:
        """The loop of the calling worker thread (made on first use)."""
        thread_id = threading.get_ident()
        with cls._lock:
            worker = cls._loops.get(thread_id)
            if worker is None:
                worker = cls._loops[thread_id] = WorkerLoop(thread_id)
            worker._users += 1
            return worker

    @classmethod
    def open_loops(cls) -> int:
        """How many worker loops are open in this process (for tests)."""
        with cls._lock:
            return len(cls._loops)

    def add(self, connection: _Pending) -> None:
        """Count a partition's connection when deciding whether to sleep."""
        self._connections.append(connection)

    def remove(self, connection: _Pending) -> None:
        """Stop counting a closed partition's connection."""
        if connection in self._connections:
            self._connections.remove(connection)

    def anything_ready(self) -> bool:
        """Whether any connection of this worker has records waiting."""
        return any(c.pending for c in self._connections)

    def poll(self) -> None:
        """Read what has arrived and run what is ready, without waiting.

        One pass reads every socket with bytes; a few more run only while
        callbacks are queued (a REST answer being read, a reconnect), so work in
        progress keeps moving while the worker is busy with records.
        """
        self.polls += 1
        loop = self.loop
        ready = getattr(loop, "_ready", None)  # CPython's queue of due callbacks
        for _ in range(_MOST_PASSES):
            loop.stop()  # before run_forever: one pass, selector timeout 0
            loop.run_forever()
            if not ready:
                break

    def wait(self, timeout_s: float) -> None:
        """Run the loop until records are ready on this worker (``timeout_s`` most)."""
        self.polls += 1
        self.waits += 1
        loop = self.loop
        timer = loop.call_later(timeout_s, loop.stop)
        self._waiting = True
        try:
            loop.run_forever()
        finally:
            self._waiting = False
            timer.cancel()

    def wake(self) -> None:
        """Records became ready: end the current ``wait`` after this pass."""
        if self._waiting:
            self.loop.stop()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine to its end on this loop (closing a partition)."""
        return self.loop.run_until_complete(coro)

    def release(self) -> None:
        """A partition is done with the loop; the last one closes it."""
        with self._lock:
            self._users -= 1
            if self._users > 0:
                return
            self._loops.pop(self._thread_id, None)
        loop = self.loop
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(
                    asyncio.gather(*pending, return_exceptions=True)
                )
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
