"""The "finish now" flag a run's sources watch: an object passed in, not a global."""

from __future__ import annotations

import threading
from typing import NoReturn

from bytewax.inputs import AbortExecution

__all__ = ["StopSignal"]


class StopSignal:
    """Tells a run's sources to finish: they end their partitions when it is set.

    The runner makes one per run and gives it to the sources and to its signal
    handler, so SIGINT/SIGTERM end a flow like a finite one (sinks flushed,
    connections closed) instead of killing it with a traceback. With
    ``abort_on_stop`` (a run with recovery) the sources abort the execution instead
    of ending: Bytewax then commits nothing after the last snapshot, so open
    windows are not flushed and a resumed run continues exactly. Thread-safe.

    Args:
        abort_on_stop: whether a stop aborts the run rather than ending it.
    """

    def __init__(self, abort_on_stop: bool = False) -> None:
        self.abort_on_stop = abort_on_stop
        self._event = threading.Event()
        self._started = threading.Event()
        self._ending = threading.Event()

    def set(self) -> None:
        """Ask every source of the run to finish."""
        self._event.set()

    def is_set(self) -> bool:
        """Whether a stop was requested."""
        return self._event.is_set()

    def end(self) -> NoReturn:
        """What a partition raises once a stop was requested."""
        if self.abort_on_stop:
            raise AbortExecution
        raise StopIteration

    def note_ending(self) -> None:
        """A source reached its own end (a deadline): the run is finishing."""
        self._ending.set()

    def ending(self) -> bool:
        """Whether a source reached its own end."""
        return self._ending.is_set()

    def mark_started(self) -> None:
        """A source partition was built: the dataflow runs (the cluster formed)."""
        self._started.set()

    def started(self) -> bool:
        """Whether any source partition of the run was built."""
        return self._started.is_set()
