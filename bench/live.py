"""The live connector side by side with a bare loop and ccxt pro, on identical bytes.

(Over 450 lines: the three clients and their harness are one benchmark, read
together; the shared helpers live in ``bench/harness.py``.)

    python -m bench.live                       # every case, a table on stdout
    python -m bench.live client KIND ...       # one client (run by the above)

Each client runs in its own process against its own simulator process replaying the
same recording (``--hold``: every frame is read exactly once), and measures its own
CPU (user + system) and wall time from its first frame to its last:

- ``bare``: ``websockets`` + ``orjson.loads`` per frame, counting only (the floor);
- ``ccxt``: ccxt pro's ``backpack`` class, ``watch_order_book_for_symbols`` (and
  trades), with its order books;
- ``flow``: a bpx-flows flow (``book``, ``market``, ...) as ``bpx-flows run`` builds
  it, live on the simulator, one worker.

Feeds: the same recording paced (by its receive times, scaled to a frame rate) and
as fast as each client reads. Also: idle cost (subscribed streams that never send)
and receive-to-sink latency of the ``book`` flow on 100 markets.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.harness import cpu_seconds, start_sim

OUT = Path("out")
MARKETS = 20
_SETTLE_S = 5.0  # idle: connections open and subscribed by then
SECONDS = 30.0  # simulated seconds of the recording


def live_session() -> Path:
    """20 spot markets, depth + trade (about 4,000 frames per simulated second)."""
    from bpx_flows.connectors.sim import SimConfig
    from bpx_flows.connectors.sim.engine import MarketSpec
    from bpx_flows.connectors.sim.session import write_session

    path = OUT / f"live-{MARKETS}.jsonl.gz"
    if path.exists():
        return path
    OUT.mkdir(exist_ok=True)
    markets = tuple(
        MarketSpec(
            f"M{i:02d}_USDC", f"M{i:02d}", "USDC", "SPOT", "0.01", "0.01", "100.00", 180
        )
        for i in range(MARKETS)
    )
    streams = [f"{kind}.{m.symbol}" for m in markets for kind in ("depth", "trade")]
    config = SimConfig(seed=11, markets=markets, account_every_s=None)
    write_session(path, SECONDS, config, streams)
    return path


def frames_by_stream(path: Path) -> tuple[dict[str, int], float]:
    """Frames per stream in the recording, and its span in seconds."""
    from bpx_flows.connectors.recording import is_frame_line, iter_lines

    counts: dict[str, int] = {}
    first = last = 0
    for line in iter_lines(path):
        if not is_frame_line(line):
            continue
        record = json.loads(line)
        stream = record.get("stream", "")
        counts[stream] = counts.get(stream, 0) + 1
        first = first or record["recv_us"]
        last = record["recv_us"]
    return counts, (last - first) / 1e6


# Clients (each in its own process).


class Meter:
    """Frames seen, and CPU/wall time between the first and the expected last."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.frames = 0
        self.first: tuple[float, float] | None = None
        self.last: tuple[float, float] | None = None
        self.done = threading.Event()

    def seen(self, frames: int) -> None:
        self.frames = frames
        if self.first is None and frames:
            self.first = (time.perf_counter(), cpu_seconds())
        if self.last is None and frames >= self.expected:
            self.last = (time.perf_counter(), cpu_seconds())
            self.done.set()

    def report(self, **extra: Any) -> None:
        if self.first is None or self.last is None:
            wall = cpu = 0.0
        else:
            wall = self.last[0] - self.first[0]
            cpu = self.last[1] - self.first[1]
        row = {
            "frames": self.frames,
            "expected": self.expected,
            "wall_s": round(wall, 3),
            "cpu_s": round(cpu, 3),
            "frames_per_s": round(self.frames / wall) if wall else None,
            "cpu_us_per_frame": round(1e6 * cpu / self.frames, 2)
            if self.frames
            else None,
            **extra,
        }
        print(json.dumps(row), flush=True)


def client_bare(ws: str, streams: list[str], expected: int) -> None:
    import orjson
    import websockets

    meter = Meter(expected)

    async def receive() -> None:
        async with websockets.connect(ws, compression=None, max_size=2**24) as conn:
            await conn.send(json.dumps({"method": "SUBSCRIBE", "params": streams}))
            count = 0
            loads = orjson.loads
            async for message in conn:
                loads(message)
                count += 1
                if count == 1 or count >= expected or not count % 1000:
                    meter.seen(count)
                if count >= expected:
                    return

    asyncio.run(asyncio.wait_for(receive(), 600))
    meter.report()


def client_ccxt(ws: str, rest: str, symbols: list[str], expected: int) -> None:
    from ccxt import pro

    meter = Meter(expected)
    with_trades = os.environ.get("BENCH_CCXT_TRADES") == "1"

    async def watch() -> dict[str, Any]:
        exchange = pro.backpack()
        exchange.urls["api"] = {
            "public": rest,
            "private": rest,
            "ws": {"public": ws, "private": ws},
        }
        count = [0]
        handle = exchange.handle_message

        def counted(client: Any, message: Any) -> Any:
            count[0] += 1
            if count[0] == 1 or not count[0] % 1000 or count[0] >= expected:
                meter.seen(count[0])
            return handle(client, message)

        exchange.handle_message = counted
        try:
            await exchange.load_markets()
            names = [f"{s.split('_')[0]}/{s.split('_')[1]}" for s in symbols]

            async def books() -> None:
                while not meter.done.is_set():
                    await exchange.watch_order_book_for_symbols(names)

            async def trades() -> None:
                while not meter.done.is_set():
                    await exchange.watch_trades_for_symbols(names)

            tasks = [asyncio.create_task(books())]
            if with_trades:
                tasks.append(asyncio.create_task(trades()))
            while not meter.done.is_set():  # noqa: ASYNC110  (set from a callback)
                await asyncio.sleep(0.01)
            for task in tasks:
                task.cancel()
            crossed = 0
            for name in names:
                book = exchange.orderbooks.get(name)
                if book and book["bids"] and book["asks"]:
                    crossed += book["bids"][0][0] >= book["asks"][0][0]
            return {"books": len(exchange.orderbooks), "crossed": crossed}
        finally:
            await exchange.close()

    extra = asyncio.run(asyncio.wait_for(watch(), 600))
    meter.report(**extra)


def _client_settings(flow_name: str, symbols: list[str], every_update: bool) -> Any:
    from bench.flows import settings_for

    source_settings: dict[str, Any] = {"seconds": 600.0}
    if os.environ.get("BENCH_COMPRESSION") == "1":
        source_settings["compression"] = True
    if flow_name == "tape":  # every record of the named streams, straight to the sink
        from bpx_flows.settings import Settings, merge_overrides

        overrides = {f"source.{k}": v for k, v in source_settings.items()}
        settings = merge_overrides(
            Settings(), {"flow": "tape", "streams": symbols, **overrides}
        )
    else:
        settings = settings_for(flow_name, symbols, **source_settings)
    if not every_update:
        from bpx_flows.settings import merge_overrides

        settings = merge_overrides(settings, {"book.every_ms": 1000.0})
    return settings


def client_flow(
    flow_name: str, ws: str, rest: str, symbols: list[str], expected: int
) -> None:
    from bench.harness import LatencySink, run_bytewax
    from bpx_flows.inputs import source_for
    from bpx_flows.resources import Endpoint
    from bpx_flows.wiring import Sinks, build_flow

    every_update = os.environ.get("BENCH_STATS_EVERY_UPDATE") == "1"
    settings = _client_settings(flow_name, symbols, every_update)
    source: Any = source_for(settings, Endpoint(ws, rest))
    sink = LatencySink()
    # As the runner builds it without a recovery dir.
    flow = build_flow(settings, source, Sinks(sink, sink), snapshots=False)
    meter = Meter(expected)
    idle_s = float(os.environ.get("BENCH_IDLE_S", "0"))

    if every_update:  # latency after the warm-up (100 books wait for snapshots)
        from bench.harness import COUNT_FROM_US, WARM_UP_S

        COUNT_FROM_US[0] = int((time.time() + WARM_UP_S) * 1e6)
    settled: list[tuple[float, float]] = []  # idle: after start-up, and at the end
    cpu0 = cpu_seconds()
    wall0 = time.perf_counter()
    sampler = threading.Thread(
        target=_sample, args=(source, meter, idle_s, settled), daemon=True
    )
    sampler.start()
    run_bytewax(flow, 1, None, [])
    sampler.join(timeout=10)
    _report_flow(source, sink, meter, settled, cpu0, wall0)


def _sample(
    source: Any, meter: Meter, idle_s: float, settled: list[tuple[float, float]]
) -> None:
    """Count the frames taken by the flow until the meter is done, then stop it.

    Every 20 ms; idle, every 0.5 s (the harness's own polling is not the client's
    cost at rest), noting the CPU after start-up and at the end in ``settled``.
    """
    started = time.monotonic()
    every_s = 0.5 if idle_s else 0.02
    while not meter.done.is_set():
        time.sleep(every_s)
        conns = list(source.connections().values())
        # Received and handed to the flow: records still queued at the
        # connection (up to ``max_pending``) are not done yet.
        frames = sum(c.session.stats.frames.total() - c.pending for c in conns)
        meter.seen(max(0, frames))
        if idle_s:
            elapsed = time.monotonic() - started
            if not settled and elapsed >= _SETTLE_S:
                settled.append((time.perf_counter(), cpu_seconds()))
            if elapsed >= idle_s:
                settled.append((time.perf_counter(), cpu_seconds()))
                break
    source.stop.set()


def _report_flow(
    source: Any,
    sink: Any,
    meter: Meter,
    settled: list[tuple[float, float]],
    cpu0: float,
    wall0: float,
) -> None:
    samples = sorted(sink.samples)
    n = len(samples)

    def pct(q: float) -> float | None:
        return round(samples[min(n - 1, int(n * q))] / 1000, 3) if n else None

    worker = (
        next(iter(source.partitions.values())).worker if source.partitions else None
    )
    meter.report(
        outputs=sink.counts[0],
        p50_ms=pct(0.5),
        p99_ms=pct(0.99),
        latency_samples=n,
        run_cpu_s=round(cpu_seconds() - cpu0, 3),
        idle_percent=round(
            100 * (settled[1][1] - settled[0][1]) / (settled[1][0] - settled[0][0]), 2
        )
        if len(settled) == 2
        else None,
        run_wall_s=round(time.perf_counter() - wall0, 3),
        loop_passes=worker.polls if worker else None,
        loop_sleeps=worker.waits if worker else None,
        wire_bytes=sum(c.bytes_on_wire for c in source.connections().values()),
        payload_bytes=sum(
            c.session.stats.bytes_received for c in source.connections().values()
        ),
    )


def client_main(kind: str, *args: str) -> None:
    ws, rest, expected = args[0], args[1], int(args[2])
    rest_args = list(args[3:])
    if kind == "bare":
        client_bare(ws, rest_args, expected)
    elif kind == "ccxt":
        client_ccxt(ws, rest, rest_args, expected)
    else:
        client_flow(kind, ws, rest, rest_args, expected)


# Orchestration.


def start_held_sim(
    session: Path, speed: float
) -> tuple[subprocess.Popen[str], str, str]:
    """The simulator replaying ``session`` to each client once, with no REST limit."""
    flags = ["--hold", "--replay-delay", "1", "--rest-limit", "off"]
    return start_sim(session, speed, *flags)


def run_client(
    kind: str,
    session: Path,
    speed: float,
    expected: int,
    args: list[str],
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    sim, ws, rest = start_held_sim(session, speed)
    more = [str(expected), *args]
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "bench.live", "client", kind, ws, rest, *more],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
            env={**os.environ, **(env or {})},
        )
    finally:
        sim.terminate()
        sim.wait(timeout=20)
    if proc.returncode != 0:
        msg = f"bench.live client {kind} failed:\n{proc.stderr[-3000:]}"
        raise RuntimeError(msg)
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _flow_streams(flow: str, symbols: list[str]) -> list[str]:
    from bench.flows import settings_for
    from bpx_flows.inputs import streams_of

    return streams_of(settings_for(flow, symbols))


def _best(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the least CPU per frame."""
    return min(rows, key=lambda r: r["cpu_us_per_frame"] or float("inf"))


Client = tuple[str, str, list[str], int, dict[str, str]]  # name, kind, args, n, env


def bench_live_connector(repeats: int = 2) -> dict[str, Any]:
    """Every client on the paced and the burst feed; idle; latency at 20k frames/s."""
    from bench.books import session_for

    session = live_session()
    counts, span_s = frames_by_stream(session)
    total = sum(counts.values())
    symbols = sorted({s.split(".", 1)[1] for s in counts})
    paced_rate = 20_000
    paced_speed = paced_rate * span_s / total
    feeds = {"paced": paced_speed, "burst": 0.0}
    print(
        f"live connector: {total:,} frames of {len(symbols)} markets (depth + trade), "
        f"paced at {paced_rate:,} frames/s (x{paced_speed:.2f}) and as fast as "
        "each client reads",
        flush=True,
    )
    results: dict[str, Any] = {"frames": total, "markets": len(symbols)}
    clients = _clients(counts, symbols)
    for feed, speed in feeds.items():
        # In rounds (every client once a round), so the clients a ratio compares ran
        # minutes apart, not a quarter of an hour: the VM's speed drifts over that.
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name, *_ in clients}
        for _ in range(repeats):
            for name, kind, args, want, env in clients:
                runs[name].append(run_client(kind, session, speed, want, args, env))
        rows: dict[str, Any] = {}
        for name, *_ in clients:
            rows[name] = row = _best(runs[name])
            _say_client(feed, name, row)
        results[feed] = _compared(feed, rows)
    results["idle"] = bench_idle()
    results["latency"] = {
        f"tape, {rate:,} frames/s": bench_latency(session_for(100), rate)
        for rate in (5_000, 10_000, 20_000)
    }
    results["latency"]["book, stats every update, 5,000 frames/s"] = bench_latency(
        session_for(100), 5_000, "book"
    )
    results["latency"]["bare websockets + orjson, 5,000 frames/s"] = bench_floor(
        session_for(100), 5_000
    )
    return results


def bench_floor(session: Path, rate: int) -> dict[str, Any]:
    """The bare loop on the latency cases' feed: what receiving alone costs per frame.

    At 5,000 frames/s a frame mostly arrives alone, and a client wakes for each: the
    floor under the tape and book flows' CPU per frame at that rate.
    """
    counts, span_s = frames_by_stream(session)
    total = sum(counts.values())
    row = run_client("bare", session, rate * span_s / total, total, list(counts))
    markets = len({s.split(".", 1)[1] for s in counts})
    print(
        f"  floor: bare websockets + orjson, {markets} markets at "
        f"{row['frames_per_s'] or 0:,} frames/s: {row['cpu_us_per_frame']} µs CPU "
        "per frame",
        flush=True,
    )
    return row


def _clients(counts: dict[str, int], symbols: list[str]) -> list[Client]:
    """Every client of the live case, with the frames each must read."""
    total = sum(counts.values())
    depth_streams = [s for s in counts if s.startswith("depth.")]

    def expected(streams: list[str]) -> int:
        return sum(counts.get(s, 0) for s in streams)

    book = expected(_flow_streams("book", symbols))
    market = expected(_flow_streams("market", symbols))
    return [
        ("bare websockets + orjson", "bare", list(counts), total, {}),
        ("ccxt pro, books", "ccxt", symbols, expected(depth_streams), {}),
        (
            "ccxt pro, books + trades",
            "ccxt",
            symbols,
            total,
            {"BENCH_CCXT_TRADES": "1"},
        ),
        ("bpx-flows book flow", "book", symbols, book, {}),
        ("bpx-flows market flow", "market", symbols, market, {}),
        (
            "bpx-flows book flow, permessage-deflate",
            "book",
            symbols,
            book,
            {"BENCH_COMPRESSION": "1"},
        ),
    ]


def _say_client(feed: str, name: str, row: dict[str, Any]) -> None:
    print(
        f"  {feed}: {name}: {row['cpu_us_per_frame']} µs CPU per frame, "
        f"{row['frames_per_s'] or 0:,} frames/s ({row['frames']:,} of "
        f"{row['expected']:,} frames in {row['wall_s']} s)"
        + (
            f", {row['crossed']} crossed of {row['books']} books"
            if "books" in row
            else ""
        )
        + (
            f", wire {row['wire_bytes'] / row['payload_bytes']:.2f}x payload"
            if row.get("payload_bytes")
            else ""
        ),
        flush=True,
    )


def _compared(feed: str, rows: dict[str, Any]) -> dict[str, Any]:
    """``rows`` with the ratios the targets are stated in."""
    book = rows["bpx-flows book flow"]["cpu_us_per_frame"]
    ccxt = rows["ccxt pro, books"]["cpu_us_per_frame"]
    bare = rows["bare websockets + orjson"]
    market = rows["bpx-flows market flow"]
    rows["book_vs_ccxt_cpu"] = round(book / ccxt, 3)
    # What each costs above the bare loop (receiving and parsing alone), compared.
    floor = bare["cpu_us_per_frame"]
    rows["book_excess_vs_ccxt_excess"] = (
        round((book - floor) / (ccxt - floor), 3) if ccxt > floor else None
    )
    rows["market_vs_bare_rate"] = round(
        (market["frames_per_s"] or 0) / (bare["frames_per_s"] or 1), 3
    )
    deflate = rows["bpx-flows book flow, permessage-deflate"]["cpu_us_per_frame"]
    rows["deflate_extra_us_per_frame"] = round(deflate - book, 2)
    print(
        f"  {feed}: book flow {rows['book_vs_ccxt_cpu']}x ccxt's CPU per frame "
        f"({rows['book_excess_vs_ccxt_excess']}x ccxt's above the bare loop); "
        f"market flow {rows['market_vs_bare_rate']}x the bare loop's rate; "
        f"permessage-deflate {rows['deflate_extra_us_per_frame']:+} µs per frame",
        flush=True,
    )
    return rows


def bench_idle(seconds: float = 20.0) -> dict[str, Any]:
    """100 subscribed streams that never send: the connector's cost at rest."""
    from bench.books import session_for

    session = session_for(100)  # depth + bookTicker only: trade streams stay quiet
    symbols = [f"S{i:03d}_USDC" for i in range(100)]
    row = run_client(
        "candles",
        session,
        1.0,
        10**9,  # never reached: the run ends after ``seconds``
        symbols,
        {"BENCH_IDLE_S": str(seconds)},
    )
    streams = len(_flow_streams("candles", symbols))
    percent = row["idle_percent"]
    out = {
        "streams": streams,
        "seconds": row["run_wall_s"],
        "percent_of_a_core": percent,
        "with_start_up_percent": round(100 * row["run_cpu_s"] / row["run_wall_s"], 2),
        "loop_passes": row["loop_passes"],
        "loop_sleeps": row["loop_sleeps"],
    }
    print(
        f"  idle: {streams} quiet streams (candles flow, 100 markets): "
        f"{percent:.2f}% of a core from {_SETTLE_S:g} s to {seconds:g} s "
        f"({out['with_start_up_percent']}% with start-up; {row['loop_passes']} "
        f"loop passes, {row['loop_sleeps']} of them sleeping)",
        flush=True,
    )
    return out


def bench_latency(session: Path, rate: int, flow: str = "tape") -> dict[str, Any]:
    """Receive -> sink, 100 markets: every record (``tape``) or every book update's
    stats (``book``, stats every update)."""
    counts, span_s = frames_by_stream(session)
    total = sum(counts.values())
    symbols = sorted({s.split(".", 1)[1] for s in counts})
    speed = rate * span_s / total
    if flow == "tape":
        args, want = list(counts), total
    else:
        args = symbols
        want = sum(counts.get(s, 0) for s in _flow_streams(flow, symbols))
    row = run_client(
        flow, session, speed, want, args, {"BENCH_STATS_EVERY_UPDATE": "1"}
    )
    what = "every record" if flow == "tape" else "stats every update"
    print(
        f"  latency: {flow} flow, {len(symbols)} markets at "
        f"{row['frames_per_s'] or 0:,} frames/s ({what}): receive -> sink p50 "
        f"{row['p50_ms']} ms, "
        f"p99 {row['p99_ms']} ms over {row['latency_samples']:,} samples; "
        f"{row['cpu_us_per_frame']} µs CPU per frame",
        flush=True,
    )
    return row


def main() -> int:
    results = bench_live_connector()
    OUT.mkdir(exist_ok=True)
    (OUT / "bench-live.json").write_text(json.dumps(results, indent=2))
    print(f"written: {OUT / 'bench-live.json'}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "client":
        client_main(sys.argv[2], *sys.argv[3:])
    else:
        sys.exit(main())
