"""``make bench``: decode speed and source throughput, in one run.

Sources: replay, live over loopback, and a bare ``websockets`` loop on the same feed.
Results: stdout and out/bench.json.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import start_sim

OUT = Path("out")
SESSION = OUT / "bench-session.jsonl.gz"
SESSION_SECONDS = float(os.environ.get("BENCH_SESSION_SECONDS", "110"))
RATE_SCALE = 10.0


def ensure_session() -> None:
    from bpx_flows.connectors.sim import SimConfig
    from bpx_flows.connectors.sim.session import write_session

    OUT.mkdir(exist_ok=True)
    if SESSION.exists():
        return
    print(
        f"writing the benchmark session ({SESSION_SECONDS:g} simulated s)...",
        flush=True,
    )
    config = SimConfig(seed=42, rate_scale=RATE_SCALE, account_every_s=None)
    write_session(SESSION, SESSION_SECONDS, config)


def raw_frames() -> list[bytes]:
    from bpx_flows.connectors.recording import is_frame_line, iter_lines, unsplice

    return [unsplice(line) for line in iter_lines(SESSION) if is_frame_line(line)]


def best_rate(
    fn: Callable[[bytes], Any], frames: list[bytes], repeats: int = 3
) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for frame in frames:
            fn(frame)
        best = min(best, time.perf_counter() - start)
    return len(frames) / best


def bench_decode(frames: list[bytes]) -> dict[str, Any]:
    import orjson

    from bpx_flows.connectors.backpack import decode as decode_module
    from bpx_flows.connectors.backpack.decode import FrameDecoder

    decoder = FrameDecoder()
    sample = frames[:200_000]
    results: dict[str, Any] = {"frames": len(sample)}
    # The same decoder without the range policy (limits.sane), side by side: what
    # rejecting absurd values at the edge costs on the hot path. The two alternate,
    # best of five each, because this machine's speed drifts within seconds.
    policy = decode_module.sane
    with_policy: list[float] = []
    without: list[float] = []
    try:
        for _ in range(5):
            decode_module.sane = policy
            with_policy.append(best_rate(decoder.decode, sample, repeats=1))
            decode_module.sane = lambda _event: True
            without.append(best_rate(decoder.decode, sample, repeats=1))
    finally:
        decode_module.sane = policy
    results["ours_with_range_policy"] = max(with_policy)
    results["ours_without_range_policy"] = max(without)
    for gc_on in (True, False):
        if not gc_on:
            gc.disable()
        try:
            suffix = "" if gc_on else "_gc_off"
            results[f"ours{suffix}"] = best_rate(decoder.decode, sample)
            results[f"orjson{suffix}"] = best_rate(orjson.loads, sample)
            results[f"json{suffix}"] = best_rate(json.loads, sample)
        finally:
            gc.enable()
    return results


def run_case(*args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.cases", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        msg = f"bench case {args[0]} failed:\n{proc.stderr[-3000:]}"
        raise RuntimeError(msg)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_books() -> list[dict[str, Any]]:
    from bench.books import load_records, session_for, time_decode, time_operator

    rows = []
    for symbols in (1, 10, 100):
        path = session_for(symbols)
        records, raw = load_records(path)
        decode = time_decode(raw)
        per_second = time_operator(records, 1_000_000)
        per_update = time_operator(records, 0)
        flow = run_case("book_replay", str(path))
        # The same flow with stats after every update, as a strategy runs it: the
        # better of two runs each, alternating (this machine's speed drifts).
        every = run_case("book_replay", str(path), "0")
        again = run_case("book_replay", str(path))
        every_again = run_case("book_replay", str(path), "0")
        once_cpu = min(flow["cpu_us_per_frame"], again["cpu_us_per_frame"])
        every_cpu = min(every["cpu_us_per_frame"], every_again["cpu_us_per_frame"])
        flow = max(flow, again, key=lambda r: r["frames_per_s"])
        every = max(every, every_again, key=lambda r: r["frames_per_s"])
        row = {
            "symbols": symbols,
            "frames": len(raw),
            "decode_frames_per_s": round(decode),
            "operator_updates_per_s": round(per_second),
            "operator_updates_per_s_stats_every_update": round(per_update),
            "flow_frames_per_s": flow["frames_per_s"],
            "flow_peak_rss_mb": flow["peak_rss_mb"],
            "flow_vs_decode": round(flow["frames_per_s"] / decode, 3),
            "flow_cpu_us_per_frame": once_cpu,
            "flow_every_update_frames_per_s": every["frames_per_s"],
            "flow_every_update_cpu_us_per_frame": every_cpu,
            "flow_every_update_peak_rss_mb": every["peak_rss_mb"],
            "stats_every_update_cost_x": round(every_cpu / once_cpu, 2),
        }
        rows.append(row)
        print(
            f"book, {symbols:>3} symbols ({len(raw):,} frames): operator "
            f"{per_second:,.0f} updates/s (stats every update: {per_update:,.0f}); "
            f"flow from replay {flow['frames_per_s']:,} frames/s "
            f"= {row['flow_vs_decode']:.2f}x decode ({decode:,.0f}/s), "
            f"peak RSS {flow['peak_rss_mb']} MB; CPU per frame {once_cpu} µs, "
            f"with stats every update {every_cpu} µs "
            f"({row['stats_every_update_cost_x']}x)",
            flush=True,
        )
    return rows


def bench_derivative_flows() -> dict[str, Any]:
    from bench.books import derivatives_session

    path = derivatives_session()
    rows = {}
    for name in ("derivatives", "liquidations"):
        row = run_case("flow_replay", name, str(path))
        rows[name] = row
        print(
            f"{name} flow from replay (100 perps): {row['frames_per_s']:,} events/s "
            f"({row['frames']:,} frames, {row['outputs']:,} outputs, "
            f"peak RSS {row['peak_rss_mb']} MB)",
            flush=True,
        )
    return rows


def bench_candles() -> dict[str, Any]:
    from bench.books import trades_session

    path = trades_session()
    flow = run_case("candles_replay", str(path))
    print(
        f"candle flow from replay (1s/1m/5m/1h): {flow['frames_per_s']:,} trades/s "
        f"({flow['frames']:,} trades, {flow['outputs']:,} candles, "
        f"peak RSS {flow['peak_rss_mb']} MB)",
        flush=True,
    )
    latency = run_case("candle_latency", "20")
    print(
        f"candle latency, window end -> sink, live on the simulator (lateness "
        f"{latency['allowed_lateness_ms']} ms): p50 {latency['p50_ms']} ms, "
        f"p99 {latency['p99_ms']} ms over {latency['candles']} candles",
        flush=True,
    )
    return {"replay": flow, "latency": latency}


def bench_sources() -> dict[str, Any]:
    """The replay source, and the live source against a bare websockets loop."""
    results: dict[str, Any] = {}
    replay = run_case("replay", str(SESSION))
    results["replay_source"] = replay
    print(
        f"replay source: {replay['frames_per_s']:,} frames/s "
        f"({replay['frames']:,} frames, peak RSS {replay['peak_rss_mb']} MB)"
    )
    sim, ws_url, rest_url = start_sim(SESSION)
    try:
        bare = run_case("bare", ws_url, str(SESSION))
        live = run_case("live", ws_url, rest_url, str(SESSION))
    finally:
        sim.terminate()
        sim.wait(timeout=20)
    results["bare_websockets_loop"] = bare
    results["live_source"] = live
    ratio = live["frames_per_s"] / bare["frames_per_s"]
    results["live_vs_bare"] = round(ratio, 3)
    print(
        f"bare websockets loop: {bare['frames_per_s']:,} frames/s "
        f"(peak RSS {bare['peak_rss_mb']} MB)"
    )
    print(
        f"live source over loopback: {live['frames_per_s']:,} frames/s "
        f"= {ratio:.2f}x the bare loop (peak RSS {live['peak_rss_mb']} MB)"
    )
    return results


def _best_cpu_ms(work: Any, repeats: int = 5) -> float:
    """The least CPU time of ``repeats`` calls of ``work``, milliseconds."""
    times = []
    for _ in range(repeats):
        start = time.process_time()
        work()
        times.append(time.process_time() - start)
    return round(min(times) * 1e3, 3)


def bench_state_and_start() -> dict[str, Any]:
    """A 1,000-level book's snapshot, and a REST client's start, each beside its
    baseline: the same levels pickled as objects (a dict of tuples of ``Decimal``s
    and the sorted ticks, as books were pickled before), and an https client."""
    import pickle
    import random

    from bpx_flows.connectors.rest import RestClient
    from bpx_flows.operators.book import L2Book

    rng = random.Random(7)
    book = L2Book(None, (10, 25, 50, 100))
    book.apply(
        [(f"{100 - i / 100:.2f}", f"{rng.random() * 10:.4f}") for i in range(1000)],
        [(f"{100.01 + i / 100:.2f}", f"{rng.random() * 10:.4f}") for i in range(1000)],
        1,
    )
    sides = (book._bids, book._asks)  # the objects the old pickle held
    as_objects = tuple((side.levels, side.ticks) for side in sides)
    compact = pickle.dumps(book, pickle.HIGHEST_PROTOCOL)
    objects = pickle.dumps(as_objects, pickle.HIGHEST_PROTOCOL)
    row = {
        "book_pickle_ms": _best_cpu_ms(
            lambda: pickle.dumps(book, pickle.HIGHEST_PROTOCOL)
        ),
        "objects_pickle_ms": _best_cpu_ms(
            lambda: pickle.dumps(as_objects, pickle.HIGHEST_PROTOCOL)
        ),
        "book_load_ms": _best_cpu_ms(lambda: pickle.loads(compact)),
        "objects_load_ms": _best_cpu_ms(lambda: pickle.loads(objects)),
        "book_bytes": len(compact),
        "objects_bytes": len(objects),
        "rest_client_http_ms": _best_cpu_ms(lambda: RestClient("http://127.0.0.1:9")),
        "rest_client_https_ms": _best_cpu_ms(lambda: RestClient("https://127.0.0.1:9")),
    }
    print(
        f"book snapshot, 1,000 levels a side: pickle {row['book_pickle_ms']} ms "
        f"(the same levels as objects: {row['objects_pickle_ms']} ms), load "
        f"{row['book_load_ms']} ms ({row['objects_load_ms']} ms), "
        f"{row['book_bytes']:,} bytes ({row['objects_bytes']:,}); REST client start, "
        f"CPU: http {row['rest_client_http_ms']} ms, https (CA bundle) "
        f"{row['rest_client_https_ms']} ms",
        flush=True,
    )
    return row


def main() -> int:
    ensure_session()
    frames = raw_frames()
    print(
        f"session: {len(frames):,} frames, {SESSION.stat().st_size / 1e6:.1f} MB gzip"
    )
    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "session_frames": len(frames),
    }
    decode = bench_decode(frames)
    results["decode"] = decode
    on, off = decode["ours_with_range_policy"], decode["ours_without_range_policy"]
    print(
        f"decode ({decode['frames']:,} frames): ours {decode['ours']:,.0f}/s, "
        f"orjson.loads {decode['orjson']:,.0f}/s, json.loads {decode['json']:,.0f}/s "
        f"-> {decode['ours'] / decode['orjson']:.2f}x orjson "
        f"(GC off: {decode['ours_gc_off'] / decode['orjson_gc_off']:.2f}x); "
        f"range policy on/off, alternating: {on:,.0f}/s vs {off:,.0f}/s "
        f"(costs {1 - on / off:.1%})"
    )
    results.update(bench_sources())
    results["books"] = bench_books()
    from bench.books import session_for
    from bench.instructions import bench_book_instructions, bench_market_instructions

    results["book_instructions"] = bench_book_instructions(session_for(1))
    results["market_instructions"] = bench_market_instructions(SESSION)
    from bench.books import derivatives_session
    from bench.shards import bench_shards

    results["shards"] = bench_shards(
        {"bench session": SESSION, "derivatives session": derivatives_session()}
    )
    results["state_and_start"] = bench_state_and_start()
    results["derivative_flows"] = bench_derivative_flows()
    results["candles"] = bench_candles()
    from bench.flows import bench_flows, bench_live

    results["flows"] = bench_flows(str(SESSION), decode["ours"], str(session_for(100)))
    # book-100: 100 markets, ~2,780 frames per simulated second; 1.8x = ~5,000/s.
    results["live_100_symbols"] = bench_live(str(session_for(100)), 1.8, 20.0)
    from bench.kafka import bench_kafka

    results["kafka"] = bench_kafka(str(SESSION))
    from bench.live import bench_live_connector

    results["live_connector"] = bench_live_connector()
    (OUT / "bench.json").write_text(json.dumps(results, indent=2))
    print(f"written: {OUT / 'bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
