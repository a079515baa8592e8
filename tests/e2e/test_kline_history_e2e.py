"""Kline history at start (``--backfill``), end to end on the simulator with history.

The simulator runs three minutes before it listens; the connector asks two minutes
of 1s and 1m klines, within the simulator's 30-a-minute history limit, while the
simulator drops the connection once. Every kline that closed before the run started
comes back, once, equal to the simulator's own bars; the window the run started in
does not; a recording replays to the same frames.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bpx_flows.connectors.backpack import parse_streams
from bpx_flows.connectors.backpack.kline_history import KLINES_PATH, HistoricalKline
from bpx_flows.connectors.backpack.klines import parse_kline_time
from bpx_flows.connectors.backpack.streams import KlineInterval as I
from bpx_flows.connectors.connection import ConnectionConfig
from bpx_flows.connectors.recording import Recorder
from bpx_flows.connectors.sim import (
    ServerConfig,
    SimConfig,
    SimServer,
    SimThread,
    parse_fault,
)
from bpx_flows.connectors.sources import BackpackSource, ReplaySource, SourceConfig
from tests.e2e.test_source import run_tape

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

S = 1_000_000
STREAMS = [
    "kline.1s.SOL_USDC",
    "kline.1m.SOL_USDC",
    "kline.1s.BTC_USDC",
    "trade.SOL_USDC",
]


def _history(records: list[Any]) -> dict[str, list[HistoricalKline]]:
    out: dict[str, list[HistoricalKline]] = {}
    for r in records:
        if type(getattr(r, "data", None)) is HistoricalKline:
            out.setdefault(r.stream, []).append(r.data)
    return out


def test_history_before_the_start_comes_back_once_equal_to_the_exchange(
    tmp_path: Path,
) -> None:
    server = SimServer(
        SimConfig(seed=5, history_s=180.0),
        ServerConfig(),
        [parse_fault("drop:after=25")],
    )
    path = tmp_path / "history.jsonl"
    with SimThread(server), Recorder(path, STREAMS) as recorder:
        source = BackpackSource(
            parse_streams(STREAMS),
            SourceConfig(
                connection=ConnectionConfig(
                    ws_url=server.ws_url,
                    backoff_initial_s=0.05,
                    backoff_max_s=0.2,
                    kline_backfill_s=120.0,
                ),
                rest_url=server.rest_url,
                run_for_s=8.0,
            ),
            tap=recorder,
        )
        records = run_tape(source)
        assert server.stats.faults_fired.get("drop") == 1
        assert server.stats.rest_throttled == 0  # within 30 a minute
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    asked = [x for x in lines if x.get("rest") == KLINES_PATH]
    assert sorted(x["for_stream"] for x in asked) == sorted(STREAMS[:3])  # once each
    before_us = int(asked[0]["params"]["before_us"])
    start_s = {x["for_stream"]: int(x["params"]["startTime"]) for x in asked}
    assert start_s["kline.1s.SOL_USDC"] == (before_us - 120 * S) // S
    live = _history(records)
    exchange = server.exchange
    assert exchange is not None
    for stream in STREAMS[:3]:
        _, interval_text, symbol = stream.split(".")
        interval = I(interval_text)
        truth = [
            bar
            for bar in exchange.klines(
                symbol, interval, start_s[stream], before_us // S + 1
            )
            if parse_kline_time(bar.end) <= before_us
        ]
        got = live[stream]
        assert [
            (k.t.replace("T", " "), k.o, k.h, k.l, k.c, k.v, k.V, k.n) for k in got
        ] == [
            (b.start, b.open, b.high, b.low, b.close, b.volume, b.quoteVolume, b.trades)
            for b in truth
        ]
        assert all(parse_kline_time(k.T) <= before_us for k in got)
        assert len(got) >= (2 if interval is I.M1 else 60)
    assert _history(run_tape(ReplaySource([path]))) == live
