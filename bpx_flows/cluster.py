"""A local Bytewax cluster: one child process per ``run.processes``, supervised as one.

The parent starts the built-in simulator when it is the source (so every process
reads the same exchange), takes the recovery directory's lock and initialises it,
reserves the cluster's ports, and starts the children. It then supervises them the
way an OTP ``one_for_all`` supervisor does: when one child fails, the others are
stopped, and the run ends with one line naming the process and its last error.

- Ports: each is reserved by a socket bound with ``SO_REUSEADDR`` and never
  listening, held until the children have exited. The kernel hands that port to
  no one else, and a child's listener (Rust's ``TcpListener::bind`` also sets
  ``SO_REUSEADDR``) may still bind it. Nothing is bound-and-closed and hoped free.
- Signals: SIGINT/SIGTERM are forwarded to the children; a child that has not
  ended ``STOP_GRACE_S`` later is killed.
- The parent's death: each child asks the kernel for SIGTERM when its parent dies
  (``PR_SET_PDEATHSIG``) and also checks its parent's pid once a second, so no child
  outlives a killed parent.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

from bpx_flows.resources import (
    LOCK_HELD_ENV,
    STOP_GRACE_S,
    endpoint_for,
    init_recovery,
    recovery_lock,
)
from bpx_flows.settings import Settings, merge_overrides, settings_to_data

__all__ = ["PARENT_ENV", "reserve_ports", "run_cluster", "watch_parent"]

log = logging.getLogger("bpx_flows.cluster")

PARENT_ENV = "BPX_CLUSTER_PARENT"  # the parent's pid, in every child's environment
_POLL_S = 0.05
_CAUSE_SETTLE_S = 0.3  # after a first failure: time for the cause to show
_PR_SET_PDEATHSIG = 1


def reserve_ports(count: int) -> list[socket.socket]:
    """``count`` loopback ports held for a cluster (bound, not listening)."""
    held = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            held.append(sock)
    except OSError:
        for sock in held:
            sock.close()
        raise
    return held


def run_cluster(settings: Settings) -> int:
    """Run ``settings`` as ``run.processes`` local processes; the worst exit code."""
    import msgspec

    run = settings.run
    with ExitStack() as stack:
        stack.enter_context(recovery_lock(settings))
        endpoint = stack.enter_context(endpoint_for(settings))
        shared: dict[str, Any] = {"run.processes": 1}
        if endpoint is not None:
            shared.update(
                {
                    "source.kind": "endpoint",
                    "source.ws": endpoint.ws,
                    "source.rest": endpoint.rest,
                }
            )
        ports = reserve_ports(run.processes)
        for sock in ports:
            stack.callback(sock.close)
        addresses = [f"127.0.0.1:{sock.getsockname()[1]}" for sock in ports]
        init_recovery(settings, run.processes * run.workers)
        print(
            f"cluster: {run.processes} processes x {run.workers} worker(s) on "
            f"{';'.join(addresses)}",
            file=sys.stderr,
            flush=True,
        )
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="bpx-run-"))
        env = {**os.environ, PARENT_ENV: str(os.getpid())}
        if run.recovery_dir:
            env[LOCK_HELD_ENV] = run.recovery_dir
        children = []
        for process_id in range(run.processes):
            child = merge_overrides(
                settings,
                {**shared, "run.process_id": process_id, "run.addresses": addresses},
            )
            path = Path(tmp) / f"process-{process_id}.json"
            path.write_bytes(msgspec.json.encode(settings_to_data(child)))
            command = [
                sys.executable,
                "-m",
                "bpx_flows",
                "run",
                "--resolved",
                str(path),
            ]
            children.append(_Child(process_id, command, env))
        return _supervise(children)


class _Child:
    """One process of the cluster; its stderr is passed on and its tail kept.

    Lines are passed on ``HOLD_S`` late: when a process dies, its peers panic
    within milliseconds (their connection to it broke), and the parent, which says
    what happened in one line, drops what they say after that (``silence``).
    """

    HOLD_S = 0.5

    def __init__(self, process_id: int, command: list[str], env: dict[str, str]):
        self.process_id = process_id
        self.proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
        self.tail: deque[str] = deque(maxlen=20)
        self._held: deque[tuple[float, str]] = deque()
        self._lock = threading.Lock()
        self._silent = False
        assert self.proc.stderr is not None
        self._pump = threading.Thread(
            target=self._forward, args=(self.proc.stderr,), daemon=True
        )
        self._pump.start()

    def _forward(self, stream: IO[bytes]) -> None:
        for raw in stream:
            text = raw.decode(errors="replace")
            line = text.rstrip()
            if line:
                self.tail.append(line)
            with self._lock:
                if not self._silent:
                    self._held.append((time.monotonic(), text))

    def release(self, hold_s: float = HOLD_S) -> None:
        """Pass on the lines held longer than ``hold_s`` (0: all, at the end)."""
        if hold_s == 0:
            self._pump.join(timeout=1)
        due = time.monotonic() - hold_s
        out = []
        with self._lock:
            while self._held and self._held[0][0] <= due:
                out.append(self._held.popleft()[1])
        if out:
            sys.stderr.write("".join(out))
            sys.stderr.flush()

    def silence(self) -> None:
        """Drop what it said lately and what it says from now on."""
        with self._lock:
            self._silent = True
            self._held.clear()

    def last_error(self) -> str:
        """The child's last line that reads like an error (or its last line)."""
        self._pump.join(timeout=1)
        for line in reversed(self.tail):
            if line.startswith("error:") or "Error" in line or "panicked" in line:
                return line.removeprefix("error: ")
        return self.tail[-1] if self.tail else "no output"


def _supervise(children: list[_Child]) -> int:
    stop_at: list[float] = []

    def forward(signum: int, _frame: Any) -> None:
        if not stop_at:
            stop_at.append(time.monotonic() + STOP_GRACE_S)
        for child in children:
            if child.proc.poll() is None:
                child.proc.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _wait(children, stop_at)
    finally:
        for child in children:
            if child.proc.poll() is None:
                child.proc.kill()
            child.proc.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _wait(children: list[_Child], stop_at: list[float]) -> int:
    while True:
        codes = [child.proc.poll() for child in children]
        failed = [c for c, code in zip(children, codes, strict=True) if code]
        if failed and not stop_at:
            for child in children:  # the peers' panics: the line below says it
                child.silence()
            first = _cause(children)
            code = first.proc.returncode
            how = (
                f"was killed by {_signal_name(-code)}" if code < 0 else f"exited {code}"
            )
            print(
                f"error: process {first.process_id} of the cluster {how}: "
                f"{first.last_error()}; stopping the others",
                file=sys.stderr,
                flush=True,
            )
            _stop_all(children)
            return code if code > 0 else 128 - code
        if all(code is not None for code in codes):
            for child in children:
                child.release(0)
            done = [code for code in codes if code is not None]
            bad = [code for code in done if code != 0]
            return max(bad, key=abs) if bad else 0
        if stop_at and time.monotonic() > stop_at[0]:
            print(
                f"error: the cluster did not stop within {STOP_GRACE_S:g} s; "
                "killing its processes",
                file=sys.stderr,
                flush=True,
            )
            _stop_all(children, grace_s=0)
            return 1
        for child in children:
            child.release()
        time.sleep(_POLL_S)


def _cause(children: list[_Child]) -> _Child:
    """The process whose end brought the cluster down.

    A killed process takes its peers down within milliseconds (each one's Timely
    connection to it breaks, and it exits 1), so the first failure seen may be a
    consequence: wait a moment, then name a process killed by a signal before one
    that exited with an error.
    """
    time.sleep(_CAUSE_SETTLE_S)
    ended = [c for c in children if c.proc.poll()]
    killed = [c for c in ended if (c.proc.returncode or 0) < 0]
    return (killed or ended)[0]


def _stop_all(children: list[_Child], grace_s: float = 5.0) -> None:
    for child in children:
        if child.proc.poll() is None:
            child.proc.terminate()
    deadline = time.monotonic() + grace_s
    for child in children:
        left = max(deadline - time.monotonic(), 0)
        try:
            child.proc.wait(timeout=left)
        except subprocess.TimeoutExpired:
            child.proc.kill()
            child.proc.wait()


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def watch_parent() -> None:
    """In a cluster's child: end with the parent, however the parent ends.

    Asks the kernel for SIGTERM when the parent dies, and, where that is not
    available, a daemon thread checks the parent's pid once a second; a child still
    running ``STOP_GRACE_S`` after its parent died exits at once (code 1).
    """
    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return
    expected = int(parent)
    name = ctypes.util.find_library("c")
    if name and sys.platform.startswith("linux"):
        libc = ctypes.CDLL(name, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != expected:  # the parent died before the call above
        os.kill(os.getpid(), signal.SIGTERM)

    def check() -> None:
        while os.getppid() == expected:
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)
        # A child whose peers died with the parent can wait for them forever in
        # Bytewax's cluster (seen: a flow stopped by SIGTERM, still running 90 min
        # later). Nobody is left to read its output: end it after the grace.
        time.sleep(STOP_GRACE_S)
        os._exit(1)

    threading.Thread(target=check, name="bpx-parent", daemon=True).start()
