"""Running ``bpx-flows`` as a user does, for the tests that use the command line."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "bpx_flows"]
# No settings leak in from the environment the suite runs in.
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("BPX_", "BYTEWAX_"))}


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``bpx-flows ARGS...`` in a child process, reaped within ``timeout``."""
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
        check=False,
    )


def outputs(path: Path) -> collections.Counter[str]:
    """Every record of an ``--out`` file, without the wall-clock emit stamp."""
    lines: collections.Counter[str] = collections.Counter()
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        record.pop("emit_us", None)
        lines[json.dumps(record, sort_keys=True)] += 1
    return lines


def kill_once_written(args: list[str], out: Path, at_least: int = 20_000) -> int:
    """``bpx-flows ARGS`` killed with SIGKILL once ``out`` holds ``at_least`` bytes
    (mid-run: it must still be running then); its exit code."""
    import signal
    import time

    with subprocess.Popen(
        [*CLI, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV
    ) as process:
        try:
            deadline = time.monotonic() + 60
            while not out.exists() or out.stat().st_size < at_least:
                assert process.poll() is None, "the run ended before the kill"
                assert time.monotonic() < deadline, "no output from the run"
                time.sleep(0.05)
            process.send_signal(signal.SIGKILL)
        finally:
            process.wait(timeout=30)
    return process.returncode
