"""Liquidation bursts end to end: a cascade at a known time gives exactly one alert."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest
from bytewax.testing import run_main

from bpx_flows.connectors.backpack import parse_streams
from bpx_flows.connectors.backpack.wire import Side
from bpx_flows.connectors.connection import ConnectionConfig
from bpx_flows.connectors.sim import (
    ScheduledCascade,
    ServerConfig,
    SimConfig,
    SimServer,
    SimThread,
)
from bpx_flows.connectors.sources import BackpackSource, SourceConfig
from bpx_flows.flows.liquidations import BurstSettings, liquidation_streams
from bpx_flows.operators.bursts import BurstAlert, BurstPhase
from tests.wired import wired

pytestmark = pytest.mark.e2e

SPEED = 10.0  # simulated seconds per wall second
PERPS = ["SOL_USDC_PERP", "BTC_USDC_PERP", "ETH_USDC_PERP"]
CONFIG = BurstSettings(
    min_notional=Decimal(500), min_count=5, multiple=Decimal(5), cooldown_s=10
)


def run_session(
    cascades: tuple[ScheduledCascade, ...], sim_seconds: float
) -> tuple[list[BurstAlert], int]:
    exchange = SimConfig(
        seed=3, cascade_every_s=None, cascades_at=cascades, liquidation_every_s=8.0
    )
    server = SimServer(exchange, ServerConfig(speed=SPEED))
    alerts: list[BurstAlert] = []
    stats: list[Any] = []
    with SimThread(server):
        source = BackpackSource(
            parse_streams(liquidation_streams(PERPS)),
            SourceConfig(
                connection=ConnectionConfig(ws_url=server.ws_url),
                rest_url=server.rest_url,
                run_for_s=sim_seconds / SPEED,
            ),
        )
        runner = threading.Thread(
            target=run_main,
            args=(
                wired(
                    "liquidations",
                    source,
                    stats,
                    alerts,
                    sections=[CONFIG],
                    replay=False,
                ),
            ),
        )
        runner.start()
        runner.join(timeout=sim_seconds / SPEED + 30)
        assert not runner.is_alive()
        start_us = server.start_us
    assert stats, "no liquidation at all reached the flow"
    return alerts, start_us


def test_a_cascade_gives_one_alert_per_side_within_two_seconds() -> None:
    cascades = (
        ScheduledCascade(80.0, "SOL_USDC_PERP", Side.ASK),
        ScheduledCascade(95.0, "ETH_USDC_PERP", Side.BID),
    )
    alerts, start_us = run_session(cascades, 125.0)
    started = [a for a in alerts if a.phase is BurstPhase.STARTED]
    assert sorted((a.symbol, a.side) for a in started) == [
        ("ETH_USDC_PERP", "bid"),  # outputs say bid/ask, lower case
        ("SOL_USDC_PERP", "ask"),
    ]
    for alert in started:
        cascade = next(c for c in cascades if c.symbol == alert.symbol)
        cascade_us = start_us + int(cascade.at_s * 1_000_000)
        assert 0 <= alert.detected_us - cascade_us <= 2_000_000
    ended = [a for a in alerts if a.phase is BurstPhase.ENDED]
    assert {a.burst_id for a in ended} <= {a.burst_id for a in started}
    assert len(ended) == len({a.burst_id for a in ended})


def test_a_quiet_run_of_the_same_length_gives_no_alert() -> None:
    alerts, _ = run_session((), 125.0)
    assert alerts == []
