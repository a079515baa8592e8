"""Clusters fail as a whole and never hang; a clean stop resumes exactly once.

Every case runs ``bpx-flows run`` as a user does (subprocesses on loopback) and is
bounded in time; every process started is reaped.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bpx_flows.cluster import reserve_ports

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-m", "bpx_flows"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("BPX_", "BYTEWAX_"))}
SESSION = (
    Path(__file__).resolve().parents[1] / "data" / "sessions" / "sim-session.jsonl.gz"
)
CANDLES = ["run", "candles", "--replay", str(SESSION), "--quiet"]


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        for pid in _descendants(proc.pid):
            _kill(pid)
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def _start(procs: list[subprocess.Popen[str]], *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [*CLI, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    procs.append(proc)
    return proc


def _finish(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the command line to its end (bounded)."""
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=ENV, timeout=120, check=False
    )


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def _descendants(pid: int) -> list[int]:
    found = []
    for child in _children(pid):
        found += [child, *_descendants(child)]
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _wait_for(predicate, timeout_s: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _cluster_children(proc: subprocess.Popen[str], count: int) -> list[int]:
    assert _wait_for(lambda: len(_children(proc.pid)) >= count, 30)
    return _children(proc.pid)


def test_a_killed_process_ends_the_cluster_with_one_line(procs: list) -> None:
    proc = _start(procs, *CANDLES, "--speed", "1", "--processes", "2")
    children = _cluster_children(proc, 2)
    time.sleep(2)  # formed and reading
    os.kill(children[1], signal.SIGKILL)
    started = time.monotonic()
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - started < 15
    assert proc.returncode != 0
    lines = [line for line in err.splitlines() if "of the cluster" in line]
    assert len(lines) == 1, err[-3000:]
    assert "process 1 of the cluster was killed by SIGKILL" in lines[0]
    # Only the parent speaks: the survivor's panic is not passed on.
    assert "Traceback" not in err and "PanicException" not in err, err[-3000:]
    assert not any(_alive(pid) for pid in children)


def test_killing_the_parent_leaves_no_child_running(procs: list) -> None:
    proc = _start(procs, *CANDLES, "--speed", "1", "--processes", "2")
    children = _cluster_children(proc, 2)
    time.sleep(1)
    proc.kill()
    proc.communicate(timeout=30)
    assert _wait_for(lambda: not any(_alive(pid) for pid in children), 20)


def test_sigterm_ends_a_process_waiting_for_a_peer_that_never_comes(
    procs: list,
) -> None:
    held = reserve_ports(2)
    try:
        addresses = ";".join(f"127.0.0.1:{s.getsockname()[1]}" for s in held)
        proc = _start(procs, *CANDLES, "--process-id", "0", "--addresses", addresses)
        time.sleep(3)  # forming: process 1 never starts
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        proc.communicate(timeout=30)
        assert time.monotonic() - started < 5
        assert proc.returncode != 0
    finally:
        for sock in held:
            sock.close()


def test_sigterm_stops_a_whole_cluster(procs: list) -> None:
    proc = _start(procs, *CANDLES, "--speed", "1", "--processes", "2")
    children = _cluster_children(proc, 2)
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert not any(_alive(pid) for pid in children)


def test_a_second_run_on_a_busy_recovery_dir_is_refused(
    procs: list, tmp_path: Path
) -> None:
    state = str(tmp_path / "state")
    first = _start(procs, *CANDLES, "--speed", "1", "--recovery-dir", state)
    lock = tmp_path / "state" / ".bpx-flows.lock"
    assert _wait_for(lock.exists, 30)
    time.sleep(1)
    for extra in ([], ["--processes", "2"]):
        second = _finish(*CANDLES, "--recovery-dir", state, *extra)
        assert second.returncode == 2, second.stderr
        assert "is in use by pid" in second.stderr
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=30)


@pytest.mark.parametrize(
    "layout",
    [
        pytest.param([], id="1-worker"),
        pytest.param(["--processes", "2"], id="2-processes"),
    ],
)
def test_sigterm_then_resume_writes_exactly_the_uninterrupted_output(
    procs: list, tmp_path: Path, layout: list[str]
) -> None:
    def command(name: str) -> list[str]:
        return [
            *CANDLES,
            *layout,
            "--recovery-dir",
            str(tmp_path / f"state-{name}"),
            "--snapshot-every",
            "0.5",
            "--out",
            str(tmp_path / f"{name}.jsonl"),
        ]

    whole = _finish(*command("whole"))
    assert whole.returncode == 0, whole.stderr[-3000:]
    stopped = _start(procs, *command("split"), "--speed", "3")
    time.sleep(5)  # a few snapshots in, windows open
    stopped.send_signal(signal.SIGTERM)
    _, err = stopped.communicate(timeout=60)
    assert stopped.returncode == 0, err[-3000:]
    assert "resume with the same --recovery-dir" in err
    partial = (tmp_path / "split.jsonl").read_text().splitlines()
    resumed = _finish(*command("split"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected = sorted((tmp_path / "whole.jsonl").read_text().splitlines())
    got = sorted((tmp_path / "split.jsonl").read_text().splitlines())
    assert len(expected) > 50
    assert 0 < len(partial) < len(expected)  # it was stopped in the middle
    assert got == expected


def test_a_stop_that_hangs_in_a_sink_is_bounded() -> None:
    """A sink that never finishes flushing (a Kafka broker that is down) cannot
    hold the process: 10 s after the run's end began it exits, non-zero."""
    script = (
        "import time\n"
        "from bpx_flows.connectors.sources import StopSignal\n"
        "from bpx_flows.signals import stop_on_signals\n"
        "stop = StopSignal()\n"
        "with stop_on_signals(stop):\n"
        "    stop.mark_started()\n"
        "    stop.note_ending()  # the deadline passed\n"
        "    time.sleep(60)  # a sink's flush that never returns\n"
    )
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
        check=False,
    )
    assert 9 < time.monotonic() - started < 20
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "did not stop within 10 s" in lines[0], result.stderr


def test_the_cause_named_is_the_killed_process_not_the_peer_it_took_down() -> None:
    # Process 1 is killed; process 0 then exits 1 because its peer vanished, and
    # may be seen first: the one line must name process 1.
    from types import SimpleNamespace

    from bpx_flows.cluster import _cause

    def child(process_id: int, code: int | None) -> Any:
        proc = SimpleNamespace(returncode=code, poll=lambda: code)
        return SimpleNamespace(process_id=process_id, proc=proc)

    peer, killed, running = child(0, 1), child(1, -9), child(2, None)
    assert _cause([peer, killed, running]) is killed
    assert _cause([peer, running]) is peer


def test_a_child_that_does_not_stop_after_its_parent_died_is_ended() -> None:
    # The child ignores the SIGTERM its parent's death brings (as a flow stuck
    # waiting for dead peers effectively does); it must still be gone once the
    # grace has passed. The parent is a shell that prints the child's pid.
    from bpx_flows.resources import STOP_GRACE_S

    child = (
        "import os, signal, sys, time\n"
        "from bpx_flows.cluster import watch_parent\n"
        "watch_parent()\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print(os.getpid(), flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen(
        ["/bin/sh", "-c", f'BPX_CLUSTER_PARENT=$$ {sys.executable} -c "$CHILD" & wait'],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "CHILD": child},
        start_new_session=True,
    )
    try:
        assert parent.stdout is not None
        # The shell is the parent ($$): the child finds its pid in the environment.
        pid = int(parent.stdout.readline())
        assert _alive(pid)
        parent.kill()
        parent.wait(timeout=10)
        assert _wait_for(lambda: not _alive(pid), STOP_GRACE_S + 5)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        if parent.stdout is not None:
            parent.stdout.close()


def test_a_clusters_stdout_carries_records_only() -> None:
    """Bytewax's retries while the cluster forms go to stderr, never among records."""
    result = subprocess.run(
        [*CLI, *CANDLES, "--processes", "2", "--sink", "stdout:json"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert len(lines) > 50
    assert all(json.loads(line)["type"] for line in lines), lines[:5]
