"""The book flow end to end: faults on the wire, books still equal the engine's."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from bytewax.testing import run_main

from bpx_flows.connectors.backpack import parse_streams
from bpx_flows.connectors.connection import ConnectionConfig
from bpx_flows.connectors.sim import Fault, FaultKind, SimThread
from bpx_flows.connectors.sources import BackpackSource, SourceConfig
from bpx_flows.flows.book import book_streams
from bpx_flows.operators.book_state import (
    BookConfig,
    BookIntegrity,
    BookStats,
    book_checksum,
)
from tests.wired import book_settings, wired

pytestmark = pytest.mark.e2e

SYMBOLS = ["SOL_USDC", "BTC_USDC_PERP"]


def wait_for(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_books_equal_the_engine_and_agree_with_book_ticker(
    fresh_sim: SimThread,
) -> None:
    server = fresh_sim.server
    assert server.exchange is not None
    exchange = server.exchange
    stats: list[BookStats] = []
    integrity: list[BookIntegrity] = []
    source = BackpackSource(
        parse_streams(book_streams(SYMBOLS)),
        SourceConfig(
            connection=ConnectionConfig(ws_url=server.ws_url, backoff_initial_s=0.05),
            rest_url=server.rest_url,
            run_for_s=60.0,
        ),
    )
    config = BookConfig(emit_every_us=0, checksum=True)
    into = {BookStats: stats, BookIntegrity: integrity}
    flow = wired("book", source, into, sections=[book_settings(config)], replay=False)
    runner = threading.Thread(target=run_main, args=(flow,), daemon=True)
    runner.start()
    try:
        wait_for(lambda: {s.symbol for s in stats} == set(SYMBOLS), 15, "first stats")
        faults = [
            Fault(FaultKind.REPEAT_DEPTH, after=20, count=4),
            Fault(FaultKind.MALFORMED, after=60),
            Fault(FaultKind.DROP, after=150),
            Fault(FaultKind.REST_STATUS, status=503, count=1),
        ]
        for fault in faults:
            fresh_sim.call(lambda f=fault: server.arm(f))
        wait_for(lambda: not server.faults, 20, "every fault to fire")
        for checkpoint in range(3):
            time.sleep(0.5)
            fresh_sim.call(server.pause)
            try:
                truth = {
                    s: fresh_sim.call(lambda s=s: exchange.depth_snapshot(s, 10**9))
                    for s in SYMBOLS
                }

                def caught_up(truth: dict = truth) -> bool:
                    return all(
                        any(
                            x.symbol == s and x.update_id == t.lastUpdateId
                            for x in stats[-400:]
                        )
                        for s, t in truth.items()
                    )

                wait_for(caught_up, 15, f"checkpoint {checkpoint}")
                for symbol, snap in truth.items():
                    ours = next(
                        x
                        for x in reversed(stats)
                        if x.symbol == symbol and x.update_id == snap.lastUpdateId
                    )
                    assert ours.checksum == book_checksum(snap.bids, snap.asks), symbol
            finally:
                fresh_sim.call(server.resume)
    finally:
        source.stop.set()
        runner.join(timeout=30)
    assert not runner.is_alive()
    last = stats[-1]
    assert last.tickers_checked >= 10
    assert last.tickers_mismatched == 0
    kinds = {e.kind.value for e in integrity}
    assert {"resync_started", "resync_finished"} <= kinds  # the dropped connection
    assert "ticker_mismatch" not in kinds and "crossed" not in kinds
