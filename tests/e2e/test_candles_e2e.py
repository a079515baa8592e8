"""Candles end to end: our closed candles equal the simulator's own closed klines."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from bytewax.testing import run_main

from bpx_flows.connectors.backpack import parse_streams
from bpx_flows.connectors.backpack.streams import KlineInterval as I
from bpx_flows.connectors.backpack.wire import Trade
from bpx_flows.connectors.connection import ConnectionConfig
from bpx_flows.connectors.sim import ServerConfig, SimConfig, SimServer, SimThread
from bpx_flows.connectors.sources import BackpackSource, SourceConfig
from bpx_flows.flows.candles import CandleConfig, candle_streams
from bpx_flows.operators.candles import Candle, HistoricalCandle, KlineMismatch
from tests.wired import candle_settings, wired

pytestmark = pytest.mark.e2e

SYMBOLS = ["SOL_USDC", "BTC_USDC_PERP"]


def test_closed_candles_match_the_exchange_klines() -> None:
    server = SimServer(SimConfig(seed=4, rate_scale=3.0), ServerConfig(speed=10.0))
    intervals = (I.S1, I.M1)
    candles: list[Candle] = []
    integrity: list[Any] = []
    late: list[Any] = []
    with SimThread(server):
        source = BackpackSource(
            parse_streams(candle_streams(SYMBOLS, intervals)),
            SourceConfig(
                connection=ConnectionConfig(ws_url=server.ws_url),
                rest_url=server.rest_url,
                run_for_s=15.0,  # 150 simulated seconds
            ),
        )
        config = CandleConfig(intervals=intervals, allowed_lateness_us=500_000)
        section, replay = candle_settings(config)
        into = {Candle | HistoricalCandle: candles, Trade: late, object: integrity}
        flow = wired("candles", source, into, sections=[section], replay=replay)
        runner = threading.Thread(target=run_main, args=(flow,))
        runner.start()
        runner.join(timeout=60)
        assert not runner.is_alive()
    mismatches = [e for e in integrity if isinstance(e, KlineMismatch)]
    assert mismatches == []
    complete = [c for c in candles if not c.partial]
    minutes = {c.symbol for c in complete if c.interval is I.M1}
    print(
        sorted(
            (c.symbol, c.start_us, c.partial, c.trades)
            for c in candles
            if c.interval is I.M1
        )
    )
    import collections

    print(
        collections.Counter((c.symbol, c.interval) for c in candles),
        max(c.start_us for c in candles if c.symbol == "SOL_USDC"),
        [type(e).__name__ for e in integrity][:5],
        len(late),
    )
    assert minutes == set(SYMBOLS)  # full minutes were compared too
    assert len([c for c in complete if c.interval is I.S1]) > 100
    assert late == []
