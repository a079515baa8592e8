"""A disconnect during a burst of trades: the trades come back from REST and the
candles they changed are corrected until they equal an uninterrupted run's."""

from __future__ import annotations

import dataclasses
import threading
from itertools import repeat
from typing import Any

import msgspec
import pytest
from bytewax.testing import TestingSource, run_main

from bpx_flows.connectors import connection as connection_module
from bpx_flows.connectors.backpack import parse_streams
from bpx_flows.connectors.backpack.backfill import BackfillOutcome, TradeBackfill
from bpx_flows.connectors.backpack.streams import KlineInterval as I
from bpx_flows.connectors.backpack.wire import Frame, Trade
from bpx_flows.connectors.connection import ConnectionConfig
from bpx_flows.connectors.recording import Recorder
from bpx_flows.connectors.sim import (
    DEFAULT_MARKETS,
    Fault,
    FaultKind,
    ServerConfig,
    SimConfig,
    SimServer,
    SimThread,
)
from bpx_flows.connectors.sources import (
    BackpackSource,
    ReplaySource,
    SourceConfig,
)
from bpx_flows.flows.candles import CandleConfig, candle_streams
from bpx_flows.operators.candles import (
    Candle,
    HistoricalCandle,
    KlineMismatch,
    KlineResolved,
    TradeGap,
)
from tests.candle_revisions import latest
from tests.wired import candle_settings, wired

pytestmark = pytest.mark.e2e

SYMBOL = "SOL_USDC"
INTERVALS = (I.S1, I.M1)
S = 1_000_000


def run_flow(source: Any, config: CandleConfig) -> tuple[list[Candle], list[Any]]:
    candles: list[Candle] = []
    integrity: list[Any] = []
    section, replay = candle_settings(config)
    into = {Candle | HistoricalCandle: candles, Trade: [], object: integrity}
    flow = wired("candles", source, into, sections=[section], replay=replay)
    runner = threading.Thread(target=run_main, args=(flow,), daemon=True)
    runner.start()
    runner.join(timeout=90)
    assert not runner.is_alive()
    return candles, integrity


def test_candles_after_a_disconnect_equal_an_uninterrupted_run(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Dropped twice mid-burst; 0.8 s of wall time (4 simulated seconds of trades)
    # pass before each reconnect, far past the lateness, so candles close without
    # the missed trades and are revised when the backfill lands. The delay is
    # fixed here: jittered (0-0.8 s), a short one let the backfill land before any
    # window closed, and the run saw no revision.
    monkeypatch.setattr(
        connection_module, "backoff", lambda initial_s, *_, **__: repeat(initial_s)
    )
    drops = [Fault(FaultKind.DROP, after=n) for n in (1_000, 2_000)]
    market = tuple(m for m in DEFAULT_MARKETS if m.symbol == SYMBOL)
    server = SimServer(
        SimConfig(seed=11, markets=market, rate_scale=15.0, trade_history=500_000),
        ServerConfig(speed=5.0),  # the exchange's 30 history requests a minute: on
        faults=drops,
    )
    assert server.config.history_limit == (30, 60.0)
    config = CandleConfig(intervals=INTERVALS, allowed_lateness_us=300_000)
    recording = tmp_path / "backfill.jsonl.gz"
    with SimThread(server):
        streams = candle_streams([SYMBOL], INTERVALS)
        with Recorder(recording, streams) as recorder:
            source = BackpackSource(
                parse_streams(streams),
                SourceConfig(
                    connection=ConnectionConfig(
                        ws_url=server.ws_url,
                        backoff_initial_s=0.8,
                        backfill_trades=True,
                    ),
                    rest_url=server.rest_url,
                    run_for_s=14.0,
                ),
                tap=recorder,
            )
            live, integrity = run_flow(source, config)
        assert server.exchange is not None
        rows = server.exchange.trade_rows(SYMBOL, 500_000)
    gaps = [e for e in integrity if isinstance(e, TradeGap) and e.count]
    reports = [e for e in integrity if isinstance(e, TradeBackfill)]
    assert len(gaps) >= 1 and sum(g.count for g in gaps) >= 10, gaps
    assert [r.outcome for r in reports] == [BackfillOutcome.FILLED] * len(gaps)
    assert sum(r.fetched for r in reports) == sum(g.count for g in gaps)
    assert any(c.revision for c in live)

    # The uninterrupted run: every trade the exchange printed, in order.
    tape = [
        Frame(
            f"trade.{SYMBOL}",
            Trade(
                E=r.timestamp * 1000,
                T=r.timestamp * 1000,
                a="",
                b="",
                m=r.isBuyerMaker,
                p=r.price,
                q=r.quantity,
                s=SYMBOL,
                t=r.id or 0,
            ),
        )
        for r in rows
    ]
    truth, _ = run_flow(
        TestingSource(tape), dataclasses.replace(config, wall_clock=False)
    )
    ours, theirs = latest(live, ignore_partial=True), latest(truth, ignore_partial=True)
    first = min(c.start_us for c in live if c.interval is I.S1) + S  # after partial
    last = max(c.start_us for c in live if c.interval is I.S1) - S  # before the stop
    compared = [
        k
        for k in theirs
        if first <= k[1]
        and ours.get(k, theirs[k]).end_us <= last
        and (k[0] is I.S1 or k[1] >= first + 60 * S)
    ]
    assert len(compared) > 50
    assert {k: ours.get(k) for k in compared} == {k: theirs[k] for k in compared}
    # Without the corrections they would differ: the gaps did cost candles.
    first_cut = {
        (c.interval, c.start_us): msgspec.structs.replace(c, partial=False)
        for c in live
        if c.revision == 0
    }
    assert any(first_cut.get(k) != theirs[k] for k in compared)
    # A window the exchange's kline showed different before its correction ends
    # with a KlineResolved: no mismatch stands for a window that is now right.
    disputed = {
        (e.interval, e.start_us) for e in integrity if isinstance(e, KlineMismatch)
    }
    resolved = {
        (e.interval, e.start_us) for e in integrity if isinstance(e, KlineResolved)
    }
    assert (disputed - resolved) & set(compared) == set()

    # The recording replays to the same candles, corrections included.
    replayed, replay_integrity = run_flow(
        ReplaySource([recording]), dataclasses.replace(config, wall_clock=False)
    )
    assert [r for r in replay_integrity if isinstance(r, TradeBackfill)] == reports
    again = latest(replayed, ignore_partial=True)
    assert {k: again.get(k) for k in compared} == {k: ours[k] for k in compared}
