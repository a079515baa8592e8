"""Flow benchmarks as ``bpx-flows run`` builds them (the flow registry), per process.

    python -m bench.flows replay FLOW WORKERS PROCESS_ID ADDRESSES FILE...
    python -m bench.flows live FLOW WS REST SECONDS SYMBOL...

Each prints one JSON line: frames, wall start/end, receive-to-sink latencies of the
outputs that carry their frame's receive time (book stats), CPU seconds and peak RSS.
Replays re-stamp ``recv_us`` as records leave the source, so latency covers source
batch -> keyed exchange -> operator -> sink; live runs use the true receive time.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from bench.cases import frame_count, header, peak_rss_mb
from bench.harness import (
    COUNT_FROM_US,
    WARM_UP_S,
    LatencySink,
    cpu_seconds,
    run_bytewax,
    start_sim,
)
from bpx_flows.connectors.sim import SimConfig


def settings_for(flow: str, symbols: list[str], **source: Any) -> Any:
    from bpx_flows.registry import FLOWS
    from bpx_flows.settings import Settings, merge_overrides

    if FLOWS[flow].markets == "perp":  # the others' records pass by unread
        symbols = [s for s in symbols if s.endswith("_PERP")]
    overrides: dict[str, Any] = {"flow": flow, "symbols": symbols}
    for name in ("workers", "addresses", "process_id"):
        if name in source:
            overrides[f"run.{name}"] = source.pop(name)
    overrides.update({f"source.{k}": v for k, v in source.items()})
    if source.get("kind") != "replay":
        overrides["book.every_ms"] = 0.0  # live: stats (a latency sample) per update
    return merge_overrides(Settings(), overrides)


def _report(sink: LatencySink, frames: int, start: float, cpu0: float) -> None:
    end = time.time()
    samples = sorted(sink.samples)
    n = len(samples)

    def pct(q: float) -> float | None:
        return round(samples[min(n - 1, int(n * q))] / 1000, 3) if n else None

    print(
        json.dumps(
            {
                "frames": frames,
                "start": start,
                "first_output": sink.first[0] if sink.first else end,
                "end": end,
                "outputs": sink.counts[0],
                "latency_samples": n,
                "p50_ms": pct(0.50),
                "p99_ms": pct(0.99),
                "cpu_s": round(cpu_seconds() - cpu0, 3),
                "peak_rss_mb": round(peak_rss_mb(), 1),
            }
        ),
        flush=True,
    )


def case_replay(
    flow_name: str, workers: str, process_id: str, addresses: str, *paths: str
) -> None:
    from bpx_flows.connectors.routing import replay_plan
    from bpx_flows.connectors.sources import ReplaySource
    from bpx_flows.inputs import key_function, routes_for
    from bpx_flows.wiring import Sinks, build_flow

    if os.environ.get("BENCH_NO_RANGE_POLICY"):
        from bpx_flows.connectors.backpack import decode

        decode.sane = lambda _event: True  # the decoder as it was before hardening
    symbols = os.environ.get("BENCH_SYMBOLS", "SOL_USDC").split(",")
    batch = os.environ.get("BENCH_BATCH")
    pid = None if process_id == "-" else int(process_id)
    peers = [] if addresses == "-" else addresses.split(";")
    settings = settings_for(
        flow_name,
        symbols,
        kind="replay",
        replay=list(paths),
        workers=int(workers),
        addresses=peers,
        process_id=pid,
        **({"batch": int(batch)} if batch else {}),
    )
    if os.environ.get("BENCH_TOP_SETTINGS"):  # as bpx-flows top runs the flow
        from bpx_flows.settings import merge_overrides

        settings = merge_overrides(
            settings, {"book.ladder": 12, "book.every_ms": 250.0}
        )
    sink = LatencySink()
    # As bpx-flows run does: symbols spread evenly over the workers, each worker
    # reading the symbols whose state it owns.
    route, owner = routes_for(settings)
    total = int(workers) * max(len(peers), 1)
    source: Any
    if paths[0].startswith("kafka:"):  # a topic: the runner's own source for it
        from bpx_flows.connectors.kafka.spec import topic_partitions
        from bpx_flows.connectors.sources import KafkaReplaySource
        from bpx_flows.inputs import kafka_replay

        topic = kafka_replay(settings)
        assert topic is not None
        source = KafkaReplaySource(
            topic,
            topic_partitions(topic),
            batch_size=settings.source.batch,
            restamp=True,
        )
        counted = [os.environ["BENCH_FRAMES_OF"]]  # the file the topic was filled from
    else:
        plan = replay_plan(list(paths), symbols, total, owner)
        source = ReplaySource(
            paths, batch_size=settings.source.batch, restamp=True, plan=plan
        )
        counted = list(paths)
    out: Any = sink
    if os.environ.get("BENCH_VIEW"):  # top's sink beside it: what the screen costs
        from bpx_flows.connectors.sinks.tee import TeeSink
        from bpx_flows.top import ViewSink
        from bpx_flows.top.state import TopState

        out = TeeSink(sink, ViewSink(TopState()))
    # As the runner builds it without a recovery dir.
    flow = build_flow(
        settings, source, Sinks(out, out), key_function(route), snapshots=False
    )
    frames = sum(frame_count(p) for p in counted) if not pid else 0  # counted once
    cpu0, start = cpu_seconds(), time.time()
    run_bytewax(flow, int(workers), pid, peers)
    _report(sink, frames, start, cpu0)


def case_live(flow_name: str, ws: str, rest: str, seconds: str, *symbols: str) -> None:
    from bpx_flows.inputs import source_for
    from bpx_flows.resources import Endpoint
    from bpx_flows.wiring import Sinks, build_flow

    settings = settings_for(flow_name, list(symbols), seconds=float(seconds))
    source: Any = source_for(settings, Endpoint(ws, rest))
    sink = LatencySink()
    # As the runner builds it without a recovery dir.
    flow = build_flow(settings, source, Sinks(sink, sink), snapshots=False)
    cpu0, start = cpu_seconds(), time.time()
    COUNT_FROM_US[0] = int((start + WARM_UP_S) * 1e6)
    run_bytewax(flow, 1, None, [])
    frames = sum(
        sum(conn.session.stats.frames.values())
        for conn in source.connections().values()
    )
    _report(sink, frames, start, cpu0)


CASES = {"replay": case_replay, "live": case_live}

if __name__ == "__main__":
    CASES[sys.argv[1]](*sys.argv[2:])


# Orchestration (called from bench/run.py).

MARKETS = [m.symbol for m in SimConfig().markets]  # the 8 of the sessions


def _env(symbols: list[str], batch: int | None) -> dict[str, str]:
    env = {**os.environ, "BENCH_SYMBOLS": ",".join(symbols)}
    if batch is not None:
        env["BENCH_BATCH"] = str(batch)
    return env


def _at_once(*args: str, symbols: list[str], copies: int = 2) -> dict[str, Any]:
    """``copies`` independent one-process runs at the same time, as one row.

    No cluster: each process replays the whole recording alone. Their combined rate
    against one run alone is what this machine gives two busy processes at once
    (its cores, caches and memory shared): the ceiling of any 2-process run here.
    """
    import subprocess

    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.flows", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(symbols, None),
        )
        for _ in range(copies)
    ]
    # From the first output of either to the end of the last.
    return _combined(_rows_of(procs, f"bench.flows {args[:2]}"))


def _case(
    *args: str,
    symbols: list[str],
    batch: int | None = None,
    policy: bool = True,
    top: str = "",
) -> Any:
    import subprocess

    env = _env(symbols, batch)
    if not policy:
        env["BENCH_NO_RANGE_POLICY"] = "1"
    if top:  # "settings": as top runs the flow; "view": and with its sink too
        env["BENCH_TOP_SETTINGS"] = "1"
        if top == "view":
            env["BENCH_VIEW"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.flows", *args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env=env,
    )
    if proc.returncode != 0:
        msg = f"bench.flows {args[:2]} failed:\n{proc.stderr[-3000:]}"
        raise RuntimeError(msg)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _cluster(
    flow: str,
    paths: list[str],
    processes: int,
    symbols: list[str],
    batch: int | None = None,
) -> dict[str, Any]:
    """``processes`` Bytewax processes on loopback; wall time from first to last."""
    import subprocess

    from bpx_flows.cluster import reserve_ports

    held = reserve_ports(processes)  # closed when the processes are done
    addresses = ";".join(f"127.0.0.1:{s.getsockname()[1]}" for s in held)
    env = _env(symbols, batch)
    procs = []
    for i in range(processes):
        args = ["replay", flow, "1", str(i), addresses, *paths]
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "bench.flows", *args],
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
        )
        # Process 0 listens first, so the others connect without Timely's retry
        # delay (which would otherwise count as run time).
        time.sleep(1.0 if i == 0 else 0.0)
    rows = _rows_of(procs, "cluster process")
    for sock in held:
        sock.close()
    # From the cluster's first output (it has formed) to the last process's end.
    return _combined(rows)


def _rows_of(procs: list[Any], what: str) -> list[dict[str, Any]]:
    """Each process's report (its last line), once all have ended."""
    rows = []
    for proc in procs:
        out, err = proc.communicate(timeout=900)
        if proc.returncode != 0:
            msg = f"{what} failed ({proc.returncode}):\n{(err or '')[-3000:]}"
            raise RuntimeError(msg)
        rows.append(json.loads(out.strip().splitlines()[-1]))
    return rows


def _combined(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Processes run at once as one row: their frames over the span of all."""
    seconds = max(r["end"] for r in rows) - min(r["first_output"] for r in rows)
    return _row(
        {
            "frames": sum(r["frames"] for r in rows),
            "start": 0.0,
            "end": seconds,
            "outputs": sum(r["outputs"] for r in rows),
            "p50_ms": max((r["p50_ms"] or 0) for r in rows),
            "p99_ms": max((r["p99_ms"] or 0) for r in rows),
            "cpu_s": round(sum(r["cpu_s"] for r in rows), 3),
            "peak_rss_mb": round(sum(r["peak_rss_mb"] for r in rows), 1),
        }
    )


def _best_interleaved(
    cases: list[tuple[str, Any]], repeats: int = 3
) -> dict[str, dict[str, Any]]:
    """The fastest of ``repeats`` runs of each case, the cases run in rounds.

    Each round runs every case once, so the runs a ratio compares (2 processes
    against one) are minutes apart, not a quarter of an hour: this VM's speed drifts
    by up to 2x over that (short runs vary by 10-15 % within a minute).
    """
    best: dict[str, dict[str, Any]] = {}
    for round_ in range(repeats):
        for name, run in cases:
            row = run()
            if name not in best or (row["frames_per_s"] or 0) > (
                best[name]["frames_per_s"] or 0
            ):
                best[name] = row
        print(f"  (round {round_ + 1} of {repeats} done)", flush=True)
    return best


def _row(raw: dict[str, Any]) -> dict[str, Any]:
    seconds = raw["end"] - raw.get("first_output", raw["start"])
    return {
        "frames": raw["frames"],
        "seconds": round(seconds, 3),
        "frames_per_s": round(raw["frames"] / seconds) if seconds else None,
        "outputs": raw["outputs"],
        "p50_ms": raw["p50_ms"],
        "p99_ms": raw["p99_ms"],
        "cpu_s": raw["cpu_s"],
        "peak_rss_mb": raw["peak_rss_mb"],
    }


def bench_flows(session: str, decode_per_s: float, session_100: str) -> dict[str, Any]:
    """Each flow alone; ``market`` on 1/2 workers and 2 processes; two sessions."""
    results: dict[str, Any] = {}
    cases = _flow_cases(session, session_100)
    for name, row in _best_interleaved(cases).items():
        results[name] = row
        _say(name, row)
    one = results["market, 1 worker"]["frames_per_s"]
    results["market_vs_decode"] = round(one / decode_per_s, 3)
    results["two_workers_vs_one"] = round(
        results["market, 2 workers"]["frames_per_s"] / one, 2
    )
    results["two_processes_vs_one"] = round(
        results["market, 2 processes"]["frames_per_s"] / one, 2
    )
    # The machine's own ceiling for two busy processes (no cluster, no sharing).
    results["two_at_once_vs_one"] = round(
        results["market, 1 worker, two independent runs at once"]["frames_per_s"] / one,
        2,
    )
    results["two_processes_vs_one_100_symbols"] = round(
        results["market, 100 symbols, 2 processes"]["frames_per_s"]
        / results["market, 100 symbols, 1 worker"]["frames_per_s"],
        2,
    )
    print(
        f"market: {results['market_vs_decode']}x decode; 2 workers "
        f"{results['two_workers_vs_one']}x one; 2 processes "
        f"{results['two_processes_vs_one']}x one process (100 symbols: "
        f"{results['two_processes_vs_one_100_symbols']}x); two independent "
        f"one-process runs at once {results['two_at_once_vs_one']}x one alone",
        flush=True,
    )
    return results


def _flow_cases(session: str, session_100: str) -> list[tuple[str, Any]]:
    """``(name, run)`` of every flow case: ``run()`` gives its row."""
    hundred = [f"S{i:03d}_USDC" for i in range(100)]

    def one_process(
        flow: str, workers: int, path: str, symbols: list[str], batch: int | None = None
    ) -> Any:
        args = ("replay", flow, str(workers), "-", "-", path)
        return lambda: _row(_case(*args, symbols=symbols, batch=batch))

    def cluster(path: str, symbols: list[str], batch: int | None = None) -> Any:
        return lambda: _cluster("market", [path], 2, symbols, batch)

    cases: list[tuple[str, Any]] = [
        (f"{flow}, 1 worker", one_process(flow, 1, session, MARKETS))
        for flow in ("book", "candles", "derivatives", "liquidations", "market")
    ]
    # The same flow without the range policy (decoder and book levels), side by
    # side: what hardening costs on the hot path.
    no_policy = ("replay", "market", "1", "-", "-", session)
    cases.append(
        (
            "market, 1 worker, without the decoder's range policy",
            lambda: _row(_case(*no_policy, symbols=MARKETS, policy=False)),
        )
    )
    # The flow as bpx-flows top runs it (book stats 4 a second, a 12-level ladder),
    # without and with top's sink beside: what drawing the flow costs the flow.
    plain = ("replay", "market", "1", "-", "-", session)
    cases += [
        (
            "market, 1 worker, top's settings",
            lambda: _row(_case(*plain, symbols=MARKETS, top="settings")),
        ),
        (
            "market, 1 worker, top's settings and view sink",
            lambda: _row(_case(*plain, symbols=MARKETS, top="view")),
        ),
    ]
    market = ("replay", "market", "1", "-", "-", session)
    cases += [
        ("market, 2 workers", one_process("market", 2, session, MARKETS)),
        ("market, 2 processes", cluster(session, MARKETS)),
        (
            "market, 1 worker, two independent runs at once",
            lambda: _at_once(*market, symbols=MARKETS),
        ),
        (
            "market, 100 symbols, 1 worker",
            one_process("market", 1, session_100, hundred),
        ),
        ("market, 100 symbols, 2 processes", cluster(session_100, hundred)),
    ]
    # The replay batch size (source.batch, 10,000 by default) against throughput.
    for batch in (5_000, 20_000):
        cases += [
            (
                f"market, 1 worker, batch {batch:,}",
                one_process("market", 1, session, MARKETS, batch),
            ),
            (
                f"market, 2 processes, batch {batch:,}",
                cluster(session, MARKETS, batch),
            ),
        ]
    return cases


def bench_live(session: str, speed: float, seconds: float) -> dict[str, Any]:
    """``book`` (stats every update) for 100 symbols on a paced simulator replay."""
    from pathlib import Path

    sim, ws, rest = start_sim(Path(session), speed)
    try:
        symbols = sorted(
            {s.split(".", 1)[1] for s in header(session)["streams"] if "." in s}
        )
        raw = _case("live", "book", ws, rest, str(seconds), *symbols, symbols=symbols)
    finally:
        sim.terminate()
        sim.wait(timeout=20)
    row = _row(raw)
    row["symbols"] = len(symbols)
    row["cpu_percent"] = round(100 * raw["cpu_s"] / row["seconds"], 1)
    print(
        f"live, book flow, {len(symbols)} symbols at {row['frames_per_s']:,} frames/s "
        f"(stats every update): CPU {row['cpu_percent']}% of a core, latency receive "
        f"-> sink after a {WARM_UP_S:g} s warm-up: p50 {row['p50_ms']} ms, "
        f"p99 {row['p99_ms']} ms, "
        f"peak RSS {row['peak_rss_mb']} MB",
        flush=True,
    )
    return row


def _say(name: str, row: dict[str, Any]) -> None:
    latency = (
        f", latency p50 {row['p50_ms']} ms p99 {row['p99_ms']} ms"
        if row["p50_ms"] is not None
        else ""
    )
    print(
        f"{name}: {row['frames_per_s']:,} frames/s ({row['frames']:,} frames in "
        f"{row['seconds']} s){latency}, CPU {row['cpu_s']} s, "
        f"peak RSS {row['peak_rss_mb']} MB",
        flush=True,
    )
