"""The Bytewax sources end to end: live from the simulator, recording, replay."""

from __future__ import annotations

import dataclasses
import gzip
import time
from pathlib import Path
from typing import Any

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, cluster_main, run_main

from bpx_flows.connectors.backpack import Credentials, parse_streams
from bpx_flows.connectors.backpack.booksync import BookSnapshot, Resync
from bpx_flows.connectors.backpack.decode import BadFrame
from bpx_flows.connectors.backpack.wire import Frame
from bpx_flows.connectors.connection import ConnectionConfig
from bpx_flows.connectors.recording import Recorder, iter_lines
from bpx_flows.connectors.routing import live_groups
from bpx_flows.connectors.sim import Fault, FaultKind, SimThread
from bpx_flows.connectors.sources import (
    BackpackSource,
    ReplaySource,
    SourceConfig,
    partition,
)

pytestmark = pytest.mark.e2e

STREAMS = [
    "depth.SOL_USDC",
    "depth.200ms.BTC_USDC_PERP",
    "trade.SOL_USDC",
    "trade.BTC_USDC_PERP",
    "bookTicker.SOL_USDC",
    "markPrice.SOL_USDC_PERP",
    "account.orderUpdate",
]


def source_config(
    thread: SimThread, seconds: float, per_connection: int
) -> SourceConfig:
    server = thread.server
    return SourceConfig(
        connection=ConnectionConfig(
            ws_url=server.ws_url, backoff_initial_s=0.05, backoff_max_s=0.2
        ),
        rest_url=server.rest_url,
        streams_per_connection=per_connection,
        run_for_s=seconds,
    )


def run_tape(source: Any, workers: int = 1) -> list[Any]:
    """Everything the tape emits: good records first, then the dead letters."""
    out: list[Any] = []
    dead: list[Any] = []
    flow = Dataflow("tape")
    split = op.branch(
        "split", op.input("feed", flow, source), lambda r: not isinstance(r, BadFrame)
    )
    op.output("print", split.trues, TestingSink(out))
    op.output("dead_letters", split.falses, TestingSink(dead))
    if workers == 1:
        run_main(flow)
    else:
        cluster_main(flow, [], 0, worker_count_per_proc=workers)
    return out + dead


def test_partitions_are_stable_groups() -> None:
    streams = parse_streams(STREAMS)
    parts = partition(streams, 3)
    assert list(parts) == ["conn-000", "conn-001", "conn-002"]
    assert parts == partition(list(reversed(streams)), 3)
    assert sum(len(g) for g in parts.values()) == len(STREAMS)
    with pytest.raises(ValueError, match=">= 1"):
        partition(streams, 0)


def test_each_worker_opens_its_share_of_the_connections() -> None:
    streams = parse_streams(STREAMS)
    source = BackpackSource(streams, SourceConfig(streams_per_connection=2))
    whole = partition(streams, 2)
    shares = [source.groups_for(w, 3) for w in range(3)]
    assert sum(len(s) for s in shares) == len(whole)
    assert {k: v for share in shares for k, v in share.items()} == whole
    assert source.groups_for(0, 1) == whole


def test_a_plan_for_more_workers_than_the_run_has_is_refused() -> None:
    streams = parse_streams(STREAMS)
    plan = live_groups(streams, 2, 50)
    source = BackpackSource(streams, groups=plan)
    assert source.groups_for(1, 2) == plan[1]
    with pytest.raises(ValueError, match=r"workers \[1\].*1 worker"):
        source.groups_for(0, 1)


@pytest.mark.parametrize("workers", [1, 2])
def test_live_source_feeds_a_flow(
    fresh_sim: SimThread, credentials: Credentials, workers: int
) -> None:
    source = BackpackSource(
        parse_streams(STREAMS), source_config(fresh_sim, 3.0, 3), credentials
    )
    out = run_tape(source, workers)
    streams = {r.stream for r in out if isinstance(r, Frame)}
    assert {"trade.SOL_USDC", "depth.SOL_USDC", "account.orderUpdate"} <= streams
    snapshots = {r.stream for r in out if isinstance(r, BookSnapshot)}
    assert snapshots == {"depth.SOL_USDC", "depth.200ms.BTC_USDC_PERP"}
    assert not [r for r in out if isinstance(r, BadFrame)]


def test_record_then_replay_gives_the_same_records(
    fresh_sim: SimThread, credentials: Credentials, tmp_path: Path
) -> None:
    server = fresh_sim.server
    for fault in (
        Fault(FaultKind.MALFORMED, after=200),
        Fault(FaultKind.SKIP_DEPTH, after=150, count=2),
        Fault(FaultKind.DROP, after=600),
    ):
        fresh_sim.call(lambda f=fault: server.arm(f))
    path = tmp_path / "session.jsonl.gz"
    with Recorder(path, STREAMS) as recorder:
        source = BackpackSource(
            parse_streams(STREAMS),
            source_config(fresh_sim, 4.0, 100),
            credentials,
            recorder,
        )
        live = run_tape(source)
    replayed = run_tape(ReplaySource([path]))
    assert any(isinstance(r, BadFrame) for r in live)
    assert any(isinstance(r, Resync) for r in live)
    assert len(live) > 300
    assert replayed == live


def test_replay_resumes_exactly_after_a_snapshot(
    tmp_path: Path, fresh_sim: SimThread
) -> None:
    path = tmp_path / "s.jsonl"
    with Recorder(path, STREAMS[:3]) as recorder:
        source = BackpackSource(
            parse_streams(STREAMS[:3]), source_config(fresh_sim, 4.0, 100), tap=recorder
        )
        run_tape(source)
    whole = [r for batch in _batches(ReplaySource([path]), None) for r in batch]
    # Take a few small batches, snapshot, and resume in a new partition.
    src = ReplaySource([path], batch_size=7)
    key = src.list_parts()[0]
    p1 = src.build_part("in", key, None)
    head = p1.next_batch() + p1.next_batch() + p1.next_batch()
    state = p1.snapshot()
    tail = [r for batch in _batches(src, state) for r in batch]
    assert len(whole) > 100
    assert head + tail == whole


def _batches(src: ReplaySource, state: Any) -> list[list[Any]]:
    part = src.build_part("in", src.list_parts()[0], state)
    batches = []
    for _ in range(100_000):  # bounded
        try:
            batches.append(part.next_batch())
        except StopIteration:
            return batches
    msg = "replay did not end"
    raise AssertionError(msg)


def test_reader_stops_quietly_at_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "torn.jsonl.gz"
    good = b'{"recv_us":1,"stream":"trade.X","data":{}}\n'
    with gzip.open(path, "wb") as fh:
        fh.write(good * 3 + b'{"recv_us":2,"str')
    assert list(iter_lines(path)) == [good] * 3
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert len(list(iter_lines(path))) <= 3


def test_a_timed_stop_emits_everything_it_recorded(
    fresh_sim: SimThread, tmp_path: Path
) -> None:
    # A slow consumer and tiny batches leave records waiting at the deadline: they
    # were received and recorded, so the run must emit them too.
    path = tmp_path / "s.jsonl"
    config = dataclasses.replace(source_config(fresh_sim, 2.0, 100), batch_size=2)
    live: list[Any] = []
    with Recorder(path, STREAMS[:4]) as recorder:
        flow = Dataflow("slow")
        source = BackpackSource(parse_streams(STREAMS[:4]), config, tap=recorder)
        records = op.input("in", flow, source)
        op.output("out", op.map("slow", records, _slowly), TestingSink(live))
        run_main(flow)
    replayed = [r for batch in _batches(ReplaySource([path]), None) for r in batch]
    assert len(live) > 30
    assert live == replayed


def _slowly(record: Any) -> Any:
    time.sleep(0.03)
    return record


def test_a_silent_connection_never_holds_up_a_busy_one_on_the_same_worker() -> None:
    # Two connections on one worker: one never receives a frame, the other a trade
    # every 2 ms. The worker may sleep up to 30 s when *nothing* is ready on it; a
    # design that waits on the silent socket alone would hold the busy one's frames
    # for 30 s per round and deliver a handful in the 4 s run; the shared loop
    # delivers them as they arrive.
    import asyncio
    import json
    import threading

    from websockets.asyncio.server import ServerConnection, serve

    sent: list[int] = []
    ready = threading.Event()
    port: list[int] = []

    async def handler(ws: ServerConnection) -> None:
        subscribe = json.loads(await ws.recv())
        if "trade.SOL_USDC" in subscribe["params"]:
            for n in range(1, 1_001):
                data = {"e": "trade", "E": n, "T": n, "a": "1", "b": "2", "m": True}
                data |= {"p": "10", "q": "1", "s": "SOL_USDC", "t": n}
                await ws.send(json.dumps({"data": data, "stream": "trade.SOL_USDC"}))
                sent.append(n)
                await asyncio.sleep(0.002)
        await ws.wait_closed()

    async def main(stop: asyncio.Event) -> None:
        async with serve(handler, "127.0.0.1", 0, ping_interval=None) as server:
            port.append(next(iter(server.sockets)).getsockname()[1])
            ready.set()
            await stop.wait()

    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    server_thread = threading.Thread(
        target=lambda: loop.run_until_complete(main(stop)), daemon=True
    )
    server_thread.start()
    try:
        assert ready.wait(10)
        config = SourceConfig(
            connection=ConnectionConfig(
                ws_url=f"ws://127.0.0.1:{port[0]}", ping_interval_s=None
            ),
            rest_url="http://127.0.0.1:9",  # never asked: no depth streams
            batch_timeout_s=30.0,
            run_for_s=4.0,
        )
        groups = {
            0: {
                "conn-000": parse_streams(["liquidation.SOL_USDC_PERP"]),  # silent
                "conn-001": parse_streams(["trade.SOL_USDC"]),
            }
        }
        source = BackpackSource([], config, groups=groups)
        out = run_tape(source)
    finally:
        loop.call_soon_threadsafe(stop.set)
        server_thread.join(timeout=10)
        loop.close()
    ids = [r.data.t for r in out if isinstance(r, Frame)]
    # Everything the server sent before the source closed arrived, in order.
    assert len(sent) > 300
    assert ids == list(range(1, len(ids) + 1))
    assert len(ids) >= len(sent) - 50


REST_STREAMS = [
    "depth.SOL_USDC",
    "trade.SOL_USDC",
    "kline.1m.SOL_USDC",
    "markPrice.SOL_USDC_PERP",
    "openInterest.SOL_USDC_PERP",
]


def test_every_kind_of_rest_answer_replays_to_the_live_records(
    fresh_sim: SimThread, tmp_path: Path
) -> None:
    """Live and replay read REST answers through one function (``records_of``):
    depth snapshots, a trade gap fetched back, kline history, both seeds."""
    server = fresh_sim.server
    # Frames lost in a stall (the trades among them are fetched back), then a
    # dropped connection (books resync from new snapshots).
    for fault in (
        Fault(FaultKind.STALL, after=40, seconds=2.0),
        Fault(FaultKind.DROP, after=120),
    ):
        fresh_sim.call(lambda f=fault: server.arm(f))
    config = source_config(fresh_sim, 5.0, 100)
    connection = dataclasses.replace(
        config.connection, backfill_trades=True, kline_backfill_s=120.0
    )
    path = tmp_path / "rest.jsonl"
    with Recorder(path, REST_STREAMS) as recorder:
        source = BackpackSource(
            parse_streams(REST_STREAMS),
            dataclasses.replace(config, connection=connection),
            tap=recorder,
        )
        live = run_tape(source)
    text = path.read_text()
    for rest in (
        "/api/v1/depth",
        "/api/v1/trades/history",
        "/api/v1/klines",
        "/api/v1/markPrices",
        "/api/v1/openInterest",
    ):
        assert f'"rest":"{rest}"' in text, rest
    kinds = {type(r.data).__name__ for r in live if isinstance(r, Frame)}
    assert {"BackfilledTrade", "SeededMarkPrice", "OpenInterest"} <= kinds
    assert any(isinstance(r, BookSnapshot) for r in live)
    assert run_tape(ReplaySource([path])) == live
