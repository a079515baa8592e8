"""A market pipeline on a simulator, with the invariants every fault case checks.

The pipeline is the market flow's parts (books with a checksum per update, candles,
liquidation bursts) plus taps on the trades and late trades, so each invariant can be
checked from outputs alone:

- books: at a paused checkpoint, each book's checksum at the simulator's update id
  equals the simulator's own book;
- trades: every trade id from the first to the last one received either arrived or
  lies in a reported ``TradeGap``; every received trade is in exactly one 1 s candle
  or in the late output (nothing lost silently, nothing counted twice);
- alerts: no burst alert twice;
- recovery: each book's outage (``resync_started`` to ``resync_finished``) is
  measured from the integrity events.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from bytewax.testing import TestingSink, run_main

from bpx_flows.connectors.backpack import parse_streams
from bpx_flows.connectors.backpack.streams import KlineInterval
from bpx_flows.connectors.backpack.wire import Frame, Trade
from bpx_flows.connectors.connection import ConnectionConfig
from bpx_flows.connectors.sim import SimThread
from bpx_flows.connectors.sources import BackpackSource, SourceConfig
from bpx_flows.flows.book import analyze_books
from bpx_flows.flows.candles import CandleConfig, roll_candles
from bpx_flows.flows.liquidations import detect_bursts
from bpx_flows.flows.market import market_streams
from bpx_flows.operators.book_state import (
    BookConfig,
    BookIntegrity,
    BookStats,
    IntegrityKind,
    book_checksum,
)
from bpx_flows.operators.bursts import BurstAlert, BurstConfig
from bpx_flows.operators.candles import Candle, TradeGap

SYMBOLS = ["SOL_USDC", "SOL_USDC_PERP"]


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class _SlowPart(StatelessSinkPartition[Any]):
    def __init__(self, items: list[Any], delay_s: float) -> None:
        self._items = items
        self._delay_s = delay_s

    def write_batch(self, items: list[Any]) -> None:
        time.sleep(self._delay_s)
        self._items.extend(items)


class SlowSink(DynamicSink[Any]):
    """A sink that takes ``delay_s`` per batch (a slow database, a slow webhook)."""

    def __init__(self, items: list[Any], delay_s: float) -> None:
        self._items = items
        self._delay_s = delay_s

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _SlowPart:
        return _SlowPart(self._items, self._delay_s)


@dataclass
class Pipeline:
    """The pipeline on ``thread``'s simulator, run in a background thread."""

    thread: SimThread
    connection: ConnectionConfig = field(default_factory=ConnectionConfig)
    rest_timeout_s: float = 10.0
    sink_delay_s: float = 0.0
    outputs: list[Any] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)
    late: list[Trade] = field(default_factory=list)
    source: BackpackSource | None = None
    _runner: threading.Thread | None = None

    def start(self) -> None:
        server = self.thread.server
        streams = market_streams(SYMBOLS)
        connection = dataclasses.replace(self.connection, ws_url=server.ws_url)
        self.source = BackpackSource(
            parse_streams(streams),
            SourceConfig(
                connection=connection,
                rest_url=server.rest_url,
                run_for_s=300.0,
                rest_timeout_s=self.rest_timeout_s,
            ),
        )
        flow = Dataflow("reliability")
        records = op.input("feed", flow, self.source)
        books = analyze_books(
            "books", records, BookConfig(emit_every_us=0, checksum=True)
        )
        candles = roll_candles(
            "candles",
            records,
            CandleConfig(intervals=(KlineInterval.S1, KlineInterval.M1)),
        )
        bursts = detect_bursts(
            "bursts", records, BurstConfig(min_notional=1, min_count=3, multiple=2)
        )
        out = op.merge(
            "out",
            books.stats,
            books.integrity,
            candles.candles,
            candles.integrity,
            bursts.alerts,
        )
        sink: Any = (
            SlowSink(self.outputs, self.sink_delay_s)
            if self.sink_delay_s
            else TestingSink(self.outputs)
        )
        op.output("outputs", out, sink)
        trades = op.filter_map(
            "trades",
            records,
            lambda r: (
                r.data if isinstance(r, Frame) and type(r.data) is Trade else None
            ),
        )
        op.output("trade_tap", trades, TestingSink(self.trades))
        op.output("late_tap", candles.late, TestingSink(self.late))
        self._runner = threading.Thread(target=run_main, args=(flow,), daemon=True)
        self._runner.start()
        wait_for(
            lambda: {s.symbol for s in self.of(BookStats)} == set(SYMBOLS),
            20,
            "first book stats",
        )

    def stop(self) -> None:
        self.source.stop.set()
        assert self._runner is not None
        self._runner.join(timeout=60)
        assert not self._runner.is_alive(), "the flow did not stop"

    def of(self, kind: type) -> list[Any]:
        return [r for r in list(self.outputs) if isinstance(r, kind)]

    def wait_recovered(self, timeout_s: float = 30) -> None:
        """Until every book that started a resync has finished it."""

        def recovered() -> bool:
            open_resyncs: set[str] = set()
            for event in self.of(BookIntegrity):
                if event.kind is IntegrityKind.RESYNC_STARTED:
                    open_resyncs.add(event.stream)
                elif event.kind is IntegrityKind.RESYNC_FINISHED:
                    open_resyncs.discard(event.stream)
            return not open_resyncs

        wait_for(recovered, timeout_s, "the books to be resynced")

    # Invariants.

    def assert_books_equal_the_simulator(self, timeout_s: float = 20) -> None:
        server = self.thread.server
        exchange = server.exchange
        assert exchange is not None
        self.thread.call(server.pause)
        try:
            truth = {
                s: self.thread.call(lambda s=s: exchange.depth_snapshot(s, 10**9))
                for s in SYMBOLS
            }

            def caught_up() -> bool:
                latest = {x.symbol: x for x in self.of(BookStats)[-2000:]}
                return all(
                    s in latest and latest[s].update_id >= t.lastUpdateId
                    for s, t in truth.items()
                )

            wait_for(caught_up, timeout_s, "the books to reach the checkpoint")
            for symbol, snap in truth.items():
                ours = [
                    x
                    for x in self.of(BookStats)
                    if x.symbol == symbol and x.update_id == snap.lastUpdateId
                ]
                assert ours, f"{symbol}: no stats at update id {snap.lastUpdateId}"
                assert ours[-1].checksum == book_checksum(snap.bids, snap.asks), (
                    f"{symbol}: book differs from the simulator at {snap.lastUpdateId}"
                )
        finally:
            self.thread.call(server.resume)

    def assert_trades_accounted(self) -> dict[str, int]:
        """After ``stop`` (windows flush at the end); returns trades lost per symbol."""
        received: dict[str, set[int]] = defaultdict(set)
        for trade in self.trades:
            received[trade.s].add(trade.t)
        gaps: dict[str, set[int]] = defaultdict(set)
        for gap in self.of(TradeGap):
            gaps[gap.symbol].update(range(gap.first_missing, gap.last_missing + 1))
        counted: dict[str, int] = defaultdict(int)
        for candle in self.of(Candle):
            if candle.interval is KlineInterval.S1 and not candle.filled:
                counted[candle.symbol] += candle.trades
        for trade in self.late:
            counted[trade.s] += 1
        missing = {}
        for symbol, ids in received.items():
            full = set(range(min(ids), max(ids) + 1))
            lost = full - ids
            assert lost <= gaps[symbol], (
                f"{symbol}: trades {sorted(lost - gaps[symbol])[:10]} lost "
                "without a TradeGap"
            )
            assert counted[symbol] == len(ids), (
                f"{symbol}: {len(ids)} distinct trades received, "
                f"{counted[symbol]} in candles or late"
            )
            missing[symbol] = len(lost)
        return missing

    def assert_no_duplicate_alerts(self) -> None:
        alerts = [(a.burst_id, a.phase) for a in self.of(BurstAlert)]
        assert len(alerts) == len(set(alerts)), "a burst alert was emitted twice"

    def outage_ms(self) -> float:
        """The longest time a book was invalid (resync started -> finished), ms."""
        started: dict[str, int] = {}
        longest = 0.0
        for event in self.of(BookIntegrity):
            if event.kind is IntegrityKind.RESYNC_STARTED:
                started.setdefault(event.stream, event.recv_us)
            elif (
                event.kind is IntegrityKind.RESYNC_FINISHED and event.stream in started
            ):
                began = started.pop(event.stream)
                longest = max(longest, (event.recv_us - began) / 1000)
        return longest

    def recovery_ms(self, fault_times_us: list[int]) -> float | None:
        """Longest time from a fault to every book it invalidated being valid, ms.

        Includes detecting the fault (a stall is found by the silence watchdog);
        ``None`` when no fault invalidated a book.
        """
        events = [
            e
            for e in self.of(BookIntegrity)
            if e.kind in (IntegrityKind.RESYNC_STARTED, IntegrityKind.RESYNC_FINISHED)
        ]
        times = sorted(fault_times_us)
        longest: float | None = None
        for index, fired in enumerate(times):
            until = times[index + 1] if index + 1 < len(times) else 1 << 62
            pending: set[str] = set()
            done_us = None
            for event in events:
                if event.recv_us < fired:
                    continue
                if event.kind is IntegrityKind.RESYNC_STARTED and event.recv_us < until:
                    pending.add(event.stream)
                elif (
                    event.kind is IntegrityKind.RESYNC_FINISHED
                    and event.stream in pending
                ):
                    pending.discard(event.stream)
                    done_us = event.recv_us
                    if not pending:
                        break
            if done_us is not None and not pending:
                took = (done_us - fired) / 1000
                longest = took if longest is None else max(longest, took)
        return longest

    def resyncs(self) -> int:
        return sum(
            1 for e in self.of(BookIntegrity) if e.kind is IntegrityKind.RESYNC_STARTED
        )

    def connection_stats(self) -> dict[str, int]:
        assert self.source is not None
        totals: dict[str, int] = defaultdict(int)
        for conn in self.source.connections().values():
            totals["connects"] += conn.stats.connects
            totals["disconnects"] += sum(conn.stats.disconnects.values())
            totals["dead_letters"] += sum(conn.session.stats.bad_frames.values())
            totals["pushback_waits"] += conn.stats.pushback_waits
        return dict(totals)
