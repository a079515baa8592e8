"""``make soak``: the market flow on 100 markets for a simulated hour, faults sprinkled.

    python -m bench.soak [--sim-minutes 60] [--speed 30] [--symbols 100]

The simulator runs in its own process (so this process's memory is the pipeline's),
at ``speed`` simulated seconds per wall second; every few wall seconds a random fault
(drop, close, depth gap, duplicated depth, malformed frame) is armed through its
``/sim/fault`` control. Every 2 s this process samples its RSS, threads, the asyncio
tasks of each connection's event loop, the records waiting in each connection, and
the simulator's open connections. At the end it checks:

- RSS after the warm-up stays within ``rss_bound_mb`` (last quarter vs first quarter);
- no leaked connections (the simulator never holds more than one per connection
  group beyond a reconnect in flight) and none left when done;
- tasks and threads stay bounded; pending records stay under ``max_pending``.

Results go to stdout and ``out/soak.json``. ``tests/reliability/test_soak.py`` runs a
short version in ``make test``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import sys
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SoakResult", "run_soak"]

_FAULTS = [
    "kind=drop&after=200",
    "kind=close&after=200",
    "kind=skip_depth&after=50&count=3",
    "kind=repeat_depth&after=50&count=5",
    "kind=malformed&after=50",
]


@dataclass
class SoakResult:
    """What a soak run saw."""

    sim_minutes: float
    wall_s: float
    symbols: int
    frames: int
    outputs: int
    faults_armed: int
    faults_fired: dict[str, int]
    reconnects: int
    rss_mb: list[float] = field(default_factory=list)
    threads: list[int] = field(default_factory=list)
    tasks: list[int] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)
    sim_connections: list[int] = field(default_factory=list)
    connection_groups: int = 0
    rss_growth_mb: float = 0.0
    problems: list[str] = field(default_factory=list)


def _markets(count: int) -> tuple[Any, ...]:
    from bpx_flows.connectors.sim.engine import MarketSpec

    return tuple(
        MarketSpec(
            f"S{i:03d}_USDC" + ("_PERP" if i % 2 else ""),
            f"S{i:03d}",
            "USDC",
            "PERP" if i % 2 else "SPOT",
            "0.01",
            "0.01",
            "100.00",
            1.0,
        )
        for i in range(count)
    )


def _serve(symbols: int, speed: float, urls: Any) -> None:
    """The simulator process: serve until terminated."""
    from bpx_flows.connectors.sim import ServerConfig, SimConfig, SimServer, SimThread

    config = SimConfig(
        seed=17,
        markets=_markets(symbols),
        account_every_s=None,
        liquidation_every_s=5.0,
        cascade_every_s=300.0,
    )
    thread = SimThread(SimServer(config, ServerConfig(speed=speed)))
    with thread:
        urls.put((thread.server.ws_url, thread.server.rest_url))
        while True:
            time.sleep(3600)


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run_soak(
    sim_minutes: float = 60.0,
    speed: float = 30.0,
    symbols: int = 100,
    fault_every_s: float = 5.0,
    rss_bound_mb: float = 40.0,
    seed: int = 1,
    sample_every_s: float = 2.0,
) -> SoakResult:
    """Run the soak; ``problems`` lists every invariant that failed."""

    from bytewax.testing import run_main

    from bpx_flows.connectors.sinks import CountingSink
    from bpx_flows.inputs import source_for
    from bpx_flows.resources import Endpoint
    from bpx_flows.settings import Settings, merge_overrides
    from bpx_flows.wiring import Sinks, build_flow

    wall_s = sim_minutes * 60 / speed
    context = multiprocessing.get_context("spawn")
    urls = context.Queue()
    sim = context.Process(target=_serve, args=(symbols, speed, urls), daemon=True)
    sim.start()
    try:
        ws, rest = urls.get(timeout=60)
        names = [m.symbol for m in _markets(symbols)]
        settings = merge_overrides(
            Settings(),
            {"flow": "market", "symbols": names, "source.seconds": wall_s},
        )
        source: Any = source_for(settings, Endpoint(ws, rest))
        sink = CountingSink(lambda record: type(record).__name__)
        counts = sink.counts
        # As the runner builds it without a recovery dir.
        flow = build_flow(settings, source, Sinks(sink, sink), snapshots=False)
        result = SoakResult(sim_minutes, wall_s, symbols, 0, 0, 0, {}, 0)
        runner = threading.Thread(target=run_main, args=(flow,), daemon=True)
        runner.start()
        max_pending = _watch(
            runner,
            source,
            rest,
            result,
            random.Random(seed),
            fault_every_s,
            sample_every_s,
        )
        status = _get(f"{rest}/sim/status")
        conns = list(source.connections().values())
        result.faults_fired = status["stats"]["faults_fired"]
        result.frames = sum(sum(c.session.stats.frames.values()) for c in conns)
        result.reconnects = sum(sum(c.stats.disconnects.values()) for c in conns)
        result.outputs = sum(counts.values())
        time.sleep(1.0)
        left_open = int(_get(f"{rest}/sim/status")["connections"])
    finally:
        sim.terminate()
        sim.join(timeout=10)
    _check(result, rss_bound_mb, left_open, max_pending, settings)
    return result


def _watch(
    runner: threading.Thread,
    source: Any,
    rest: str,
    result: SoakResult,
    rng: random.Random,
    fault_every_s: float,
    sample_every_s: float,
) -> int:
    """While the flow runs: arm a random fault now and then, sample the process.

    Returns the most records one connection held for the flow at once.
    """
    import asyncio

    started = time.monotonic()
    next_fault = started + fault_every_s
    next_sample = started + sample_every_s
    max_pending = 0
    while runner.is_alive():
        runner.join(timeout=0.2)
        now = time.monotonic()
        if now >= next_fault and now - started < result.wall_s - 5:
            _get(f"{rest}/sim/fault?{rng.choice(_FAULTS)}")
            result.faults_armed += 1
            next_fault = now + fault_every_s
        if now < next_sample:
            continue
        next_sample = now + sample_every_s
        parts = list(source.partitions.values())
        conns = list(source.connections().values())
        result.connection_groups = len(conns)
        result.rss_mb.append(round(_rss_mb(), 1))
        result.threads.append(threading.active_count())
        loops = {id(p.worker.loop): p.worker.loop for p in parts}
        result.tasks.append(sum(len(asyncio.all_tasks(x)) for x in loops.values()))
        result.pending.append(sum(c.pending for c in conns))
        max_pending = max(max_pending, max((c.pending for c in conns), default=0))
        status = _get(f"{rest}/sim/status")
        result.sim_connections.append(int(status["connections"]))
    return max_pending


def _check(
    result: SoakResult,
    rss_bound_mb: float,
    left_open: int,
    max_pending: int,
    settings: Any,
) -> None:
    problems = result.problems
    samples = result.rss_mb
    if len(samples) >= 8:
        quarter = max(len(samples) // 4, 1)
        warm = samples[quarter:]  # the first quarter is warm-up (books filling)
        first = sum(warm[:quarter]) / quarter
        last = sum(warm[-quarter:]) / quarter
        result.rss_growth_mb = round(last - first, 1)
        if last - first > rss_bound_mb:
            problems.append(f"RSS grew {last - first:.1f} MB after warm-up")
    else:
        problems.append(f"only {len(samples)} samples: run longer")
    groups = result.connection_groups
    if any(n > groups + 1 for n in result.sim_connections):
        problems.append(
            f"the simulator held {max(result.sim_connections)} connections for "
            f"{groups} connection groups"
        )
    if left_open:
        problems.append(f"{left_open} connection(s) still open after the run")
    if result.tasks and max(result.tasks) > 10 * max(groups, 1):
        problems.append(f"asyncio tasks reached {max(result.tasks)}")
    if result.threads and max(result.threads) - min(result.threads) > 4:
        problems.append(f"threads varied {min(result.threads)}..{max(result.threads)}")
    from bpx_flows.connectors.connection import ConnectionConfig

    if max_pending > ConnectionConfig().max_pending:
        problems.append(f"a connection held {max_pending} pending records")
    if result.faults_armed and not result.faults_fired:
        problems.append("no fault fired")
    if not result.frames or not result.outputs:
        problems.append("no data flowed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak")
    parser.add_argument("--sim-minutes", type=float, default=60.0)
    parser.add_argument("--speed", type=float, default=30.0)
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--fault-every", type=float, default=5.0, metavar="S")
    args = parser.parse_args(argv)
    result = run_soak(args.sim_minutes, args.speed, args.symbols, args.fault_every)
    rss = result.rss_mb
    print(
        f"soak: {result.sim_minutes:g} simulated minutes of {result.symbols} markets "
        f"in {result.wall_s:.0f} s: {result.frames:,} frames, "
        f"{result.outputs:,} outputs, "
        f"{result.faults_armed} faults armed ({result.faults_fired}), "
        f"{result.reconnects} reconnects"
    )
    print(
        f"  RSS {min(rss, default=0):.1f}..{max(rss, default=0):.1f} MB "
        f"(growth after warm-up {result.rss_growth_mb} MB); threads "
        f"{min(result.threads, default=0)}..{max(result.threads, default=0)}; "
        f"tasks max {max(result.tasks, default=0)}; pending max "
        f"{max(result.pending, default=0)}; simulator connections max "
        f"{max(result.sim_connections, default=0)} for {result.connection_groups} "
        "groups"
    )
    Path("out").mkdir(exist_ok=True)
    Path("out/soak.json").write_text(json.dumps(asdict(result), indent=1))
    for problem in result.problems:
        print(f"  PROBLEM: {problem}")
    print("soak: ok" if not result.problems else "soak: FAILED")
    return 0 if not result.problems else 1


if __name__ == "__main__":
    sys.exit(main())
