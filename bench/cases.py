"""Benchmark cases, each run in its own process so peak RSS is its own.

    python -m bench.cases replay FILE
    python -m bench.cases live WS_URL REST_URL FILE
    python -m bench.cases bare WS_URL FILE

Each prints one JSON line: frames, seconds, frames_per_s, peak_rss_mb.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from typing import Any

from bytewax.outputs import DynamicSink, StatelessSinkPartition


def header(path: str) -> dict[str, Any]:
    from bpx_flows.connectors.recording import iter_lines

    return json.loads(next(iter_lines(path)))


def frame_count(path: str) -> int:
    from bpx_flows.connectors.recording import is_frame_line, iter_lines

    return sum(1 for line in iter_lines(path) if is_frame_line(line))


def peak_rss_mb() -> float:
    # VmHWM is this process's own high-water mark; ru_maxrss would include the
    # parent's size at fork time on Linux.
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Clock:
    def __init__(self) -> None:
        self.frames = 0
        self.records = 0
        self.first = 0.0
        self.last = 0.0
        self.done = False
        self.stop: Any = None  # the source's StopSignal, set when the feed ended


class _Part(StatelessSinkPartition[Any]):
    def __init__(self, clock: _Clock) -> None:
        self._clock = clock

    def write_batch(self, items: list[Any]) -> None:
        from bpx_flows.connectors.backpack.booksync import Resync
        from bpx_flows.connectors.backpack.wire import Frame

        clock = self._clock
        if clock.done:
            return
        now = time.perf_counter()
        if not clock.first:
            clock.first = now
        for index, item in enumerate(items):
            if type(item) is Resync:  # the feed ended and the source reconnected
                items = items[:index]
                clock.done = True
                if clock.stop is not None:
                    clock.stop.set()
                break
        clock.last = now
        clock.records += len(items)
        clock.frames += sum(1 for i in items if type(i) is Frame)


class TimingSink(DynamicSink[Any]):
    """Counts records and frames, timing first to last batch."""

    def __init__(self, clock: _Clock) -> None:
        self.clock = clock

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Part:
        return _Part(self.clock)


def run_flow(source: Any, clock: _Clock) -> None:
    import bytewax.operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.testing import run_main

    flow = Dataflow("bench")
    op.output("count", op.input("feed", flow, source), TimingSink(clock))
    run_main(flow)


def report(frames: int, seconds: float, **extra: Any) -> None:
    print(
        json.dumps(
            {
                "frames": frames,
                "seconds": round(seconds, 4),
                "frames_per_s": round(frames / seconds) if seconds else None,
                "peak_rss_mb": round(peak_rss_mb(), 1),
                **extra,
            }
        ),
        flush=True,
    )


def case_replay(path: str) -> None:
    from bpx_flows.connectors.sources import ReplaySource

    clock = _Clock()
    start = time.perf_counter()
    run_flow(ReplaySource([path]), clock)
    report(clock.frames, time.perf_counter() - start, records=clock.records)


def case_live(ws_url: str, rest_url: str, path: str) -> None:
    from bpx_flows.connectors.backpack.streams import parse_streams
    from bpx_flows.connectors.connection import ConnectionConfig
    from bpx_flows.connectors.sources import BackpackSource, SourceConfig

    streams = parse_streams(header(path)["streams"])
    clock = _Clock()
    config = SourceConfig(
        connection=ConnectionConfig(ws_url=ws_url, silence_s=None),
        rest_url=rest_url,
        streams_per_connection=len(streams),
        run_for_s=120.0,
    )
    source = BackpackSource(streams, config)
    clock.stop = source.stop
    run_flow(source, clock)
    report(clock.frames, clock.last - clock.first, records=clock.records)


def case_bare(ws_url: str, path: str) -> None:
    import websockets

    streams = header(path)["streams"]
    expected = frame_count(path)

    async def receive() -> tuple[int, float]:
        async with websockets.connect(ws_url, compression=None, max_size=2**24) as ws:
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": streams}))
            count, first = 0, 0.0
            async for _ in ws:
                if not count:
                    first = time.perf_counter()
                count += 1
                if count >= expected:
                    break
            return count, time.perf_counter() - first

    frames, seconds = asyncio.run(receive())
    report(frames, seconds)


def wired(
    name: str,
    source: Any,
    sink: Any,
    sections: tuple[Any, ...] = (),
    replay: bool = True,
) -> Any:
    """Flow ``name`` as ``bpx-flows run`` wires it, every output into ``sink``."""
    from bpx_flows.flows.spec import FlowContext
    from bpx_flows.registry import FLOWS
    from bpx_flows.wiring import Sinks, wire

    context = FlowContext(sections={type(s): s for s in sections}, replay=replay)
    # As the runner builds it without a recovery dir.
    return wire(FLOWS[name], context, source, Sinks(sink, sink), snapshots=False)


def case_book_replay(path: str, every_ms: str = "1000") -> None:
    """The book flow from replay; stats once per ``every_ms`` (0: every update)."""
    from bytewax.testing import run_main

    from bpx_flows.connectors.sources import ReplaySource
    from bpx_flows.flows.book import BookSettings
    from bpx_flows.memory import tune_gc

    clock = _Clock()
    sink = TimingSink(clock)
    section = BookSettings(every_ms=float(every_ms))
    flow = wired("book", ReplaySource([path]), sink, (section,))
    tune_gc()  # as ``bpx-flows run`` does
    start = time.perf_counter()  # after the imports and the flow's construction
    cpu = time.process_time()
    run_main(flow)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    # Counted by the caller when it counts this process's instructions (the count's
    # own pass over the file is no part of the flow).
    frames = int(os.environ.get("BENCH_FRAMES_COUNTED") or frame_count(path))
    report(
        frames,
        seconds,
        outputs=clock.records,
        cpu_us_per_frame=round(cpu / frames * 1e6, 2),
    )


CASES = {
    "replay": case_replay,
    "live": case_live,
    "bare": case_bare,
    "book_replay": case_book_replay,
}


def case_flow_replay(name: str, path: str) -> None:
    """A flow (``derivatives``, ``market``...) from replay into counting sinks."""
    from bytewax.testing import run_main

    from bpx_flows.connectors.sources import ReplaySource

    clock = _Clock()
    sink = TimingSink(clock)
    flow = wired(name, ReplaySource([path]), sink)
    start = time.perf_counter()
    run_main(flow)
    seconds = time.perf_counter() - start
    # As in case_book_replay: counted by the caller when it counts instructions.
    frames = int(os.environ.get("BENCH_FRAMES_COUNTED") or frame_count(path))
    report(frames, seconds, outputs=clock.records)


CASES["flow_replay"] = case_flow_replay


def case_candles_replay(path: str) -> None:
    """Trades/s through the candle flow (its defaults: 1s and 1m) from replay."""
    from bytewax.testing import run_main

    from bpx_flows.connectors.sources import ReplaySource

    clock = _Clock()
    sink = TimingSink(clock)
    flow = wired("candles", ReplaySource([path]), sink)  # [candles]: 1s and 1m
    start = time.perf_counter()
    run_main(flow)
    report(frame_count(path), time.perf_counter() - start, outputs=clock.records)


def case_candle_latency(seconds: str) -> None:
    """Live on the simulator: wall time from a candle's end to the sink, in ms."""
    import threading

    from bytewax.outputs import DynamicSink, StatelessSinkPartition
    from bytewax.testing import run_main

    from bpx_flows.connectors.backpack.streams import KlineInterval, parse_streams
    from bpx_flows.connectors.connection import ConnectionConfig
    from bpx_flows.connectors.sim import ServerConfig, SimConfig, SimServer, SimThread
    from bpx_flows.connectors.sources import BackpackSource, SourceConfig
    from bpx_flows.flows.candles import CandleSettings, candle_streams, wake_times
    from bpx_flows.operators.candles import Candle

    latencies_ms: list[float] = []

    class _Part(StatelessSinkPartition[Any]):
        def write_batch(self, items: list[Any]) -> None:
            now_us = time.time_ns() // 1000
            latencies_ms.extend(
                (now_us - c.end_us) / 1000 for c in items if isinstance(c, Candle)
            )

    class _Sink(DynamicSink[Any]):
        def build(self, step_id: str, worker_index: int, worker_count: int) -> _Part:
            return _Part()

    section = CandleSettings(intervals=["1s", "1m"], lateness_ms=200)
    server = SimServer(SimConfig(rate_scale=5.0), ServerConfig())
    with SimThread(server):
        intervals = (KlineInterval.S1, KlineInterval.M1)
        source = BackpackSource(
            parse_streams(candle_streams(["SOL_USDC", "BTC_USDC_PERP"], intervals)),
            SourceConfig(
                connection=ConnectionConfig(ws_url=server.ws_url),
                rest_url=server.rest_url,
                run_for_s=float(seconds),
                wakes=wake_times(section.config(replay=False)),  # as a run has them
            ),
        )
        flow = wired("candles", source, _Sink(), (section,), replay=False)
        runner = threading.Thread(target=run_main, args=(flow,))
        runner.start()
        runner.join()
    latencies_ms.sort()
    n = len(latencies_ms)
    print(
        json.dumps(
            {
                "candles": n,
                "allowed_lateness_ms": 200,
                "p50_ms": round(latencies_ms[n // 2], 1) if n else None,
                "p99_ms": round(latencies_ms[min(n - 1, int(n * 0.99))], 1)
                if n
                else None,
                "peak_rss_mb": round(peak_rss_mb(), 1),
            }
        ),
        flush=True,
    )


CASES["candles_replay"] = case_candles_replay
CASES["candle_latency"] = case_candle_latency

if __name__ == "__main__":
    CASES[sys.argv[1]](*sys.argv[2:])
