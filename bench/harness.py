"""What the benchmarks share: the simulator, a latency sink, the Bytewax run."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bytewax.outputs import DynamicSink, StatelessSinkPartition

# Live runs skip the warm-up: the first diffs of 100 books wait for their REST
# snapshots (rate-limited), which is start-up, not steady-state latency.
COUNT_FROM_US = [0]
WARM_UP_S = 5.0


class _LatencyPart(StatelessSinkPartition[Any]):
    def __init__(
        self, samples: list[int], counts: list[int], first: list[float]
    ) -> None:
        self._samples = samples
        self._counts = counts
        self._first = first

    def write_batch(self, items: list[Any]) -> None:
        now = time.time_ns() // 1000
        if not self._first:
            self._first.append(time.time())
        self._counts[0] += len(items)
        samples = self._samples
        for item in items:
            recv = getattr(item, "recv_us", None)
            if recv and recv >= COUNT_FROM_US[0]:
                samples.append(now - recv)


class LatencySink(DynamicSink[Any]):
    """Counts outputs and keeps receive-to-sink latencies, microseconds."""

    def __init__(self) -> None:
        self.samples: list[int] = []
        self.counts = [0]
        self.first: list[float] = []  # wall time of the first output batch

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _LatencyPart:
        return _LatencyPart(self.samples, self.counts, self.first)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_bytewax(
    flow: Any, workers: int, process_id: int | None, addresses: list[str]
) -> None:
    from datetime import timedelta

    from bytewax._bytewax import cli_main

    from bpx_flows.memory import tune_gc

    tune_gc()  # as ``bpx-flows run`` does
    cli_main(
        flow,
        workers_per_process=workers,
        process_id=process_id,
        addresses=addresses or None,
        epoch_interval=timedelta(seconds=float(os.environ.get("BENCH_EPOCH_S", "10"))),
    )


def start_sim(
    session: Path, speed: float = 0.0, *flags: str
) -> tuple[subprocess.Popen[str], str, str]:
    """The simulator replaying ``session`` (speed 0: as fast as clients read)."""
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bpx_flows",
            "sim",
            "--replay",
            str(session),
            "--speed",
            str(speed),
            *flags,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sim.stdout is not None
    urls = json.loads(sim.stdout.readline())
    return sim, urls["ws"], urls["rest"]
