"""SIGINT and SIGTERM end a run cleanly, within a bounded time."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import threading
from collections.abc import Iterator

from bpx_flows.connectors.sources import StopSignal
from bpx_flows.resources import STOP_GRACE_S

__all__ = ["ABORT_GRACE_S", "stop_on_signals"]

ABORT_GRACE_S = 3.0  # an aborted run (recovery) has nothing left worth waiting for


@contextlib.contextmanager
def stop_on_signals(stop: StopSignal) -> Iterator[None]:
    """SIGINT/SIGTERM end the sources, so the flow finishes cleanly.

    With ``stop.abort_on_stop`` (a recovery directory), the sources abort the run
    instead of ending it, so nothing after the last snapshot is committed. Python
    runs signal handlers only between bytecodes of the main thread, which sits in
    Bytewax's Rust loop (and, while a cluster forms, does not come back): a watcher
    thread reads the signal from a wakeup fd, sets the stop flag, and ends the
    process itself if the run has not ended ``STOP_GRACE_S`` later.
    """
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.getsignal(sig) for sig in signals}
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    for sig in signals:
        signal.signal(sig, lambda *_: stop.set())
    old_wakeup = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    done = threading.Event()
    watcher = threading.Thread(
        target=_watch_signals,
        args=(read_fd, done, stop),
        name="bpx-signals",
        daemon=True,
    )
    watcher.start()
    try:
        yield
    finally:
        done.set()
        signal.set_wakeup_fd(old_wakeup)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(write_fd)  # ends the watcher's read
        watcher.join(timeout=1)
        os.close(read_fd)


def _watch_signals(read_fd: int, done: threading.Event, stop: StopSignal) -> None:
    """Wait for a signal or the run's own end; then bound how long the stop takes.

    A run ends on a signal, on its deadline (``--seconds``) or when its reader left
    (``| head``); in each case the sinks then flush. A sink that cannot deliver (a
    Kafka broker that is down) must not hold the process forever: ``STOP_GRACE_S``
    after the stop began, the process exits with one line and a non-zero code.
    """
    signum = 0
    while not done.is_set():
        ready, _, _ = select.select([read_fd], [], [], 0.2)
        if ready:
            try:
                data = os.read(read_fd, 16)
            except OSError:
                return
            if not data:
                return  # the write end closed: the run is over
            signum = data[0]
            stop.set()
            break
        if stop.is_set() or stop.ending():
            break
    if done.is_set():
        return
    # Before any partition is built (a cluster forming) nothing is in flight.
    aborting = stop.abort_on_stop and signum != 0
    grace_s = ABORT_GRACE_S if aborting else STOP_GRACE_S
    grace_s = grace_s if stop.started() else 0.5
    if done.wait(grace_s):
        return
    if aborting:
        # With recovery a stop is an abort: what counts is the last snapshot, and a
        # process of a cluster whose peer has already gone would wait for it
        # forever. Ending here loses nothing the next run does not write again.
        print(
            "stopped: resume with the same --recovery-dir (state as of the last "
            "snapshot)",
            file=sys.stderr,
            flush=True,
        )
        os._exit(0)
    try:
        name = signal.Signals(signum).name if signum else "the end of its input"
    except ValueError:
        name = f"signal {signum}"
    print(
        f"error: the run did not stop within {grace_s:g} s of {name} (a sink "
        "that cannot deliver?); exiting without a clean stop",
        file=sys.stderr,
        flush=True,
    )
    os._exit(128 + signum if signum else 1)
