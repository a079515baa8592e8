"""Backpack's REST limits: the simulator enforces them, the connector stays within.

The simulator answers 429 with the exchange's body beyond its limits (2,000 requests
a minute, 30 for historical candles and trades, by default). The connector's clients
share one budget per process, so 100 books re-seeding after a disconnect storm are
spaced out and never meet a 429, here against limits tightened so that the storm
would exceed them unspaced.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from typing import Any

import httpx
import pytest

from bpx_flows.connectors.backpack import parse_streams
from bpx_flows.connectors.backpack.booksync import BookSnapshot
from bpx_flows.connectors.connection import Connection, ConnectionConfig
from bpx_flows.connectors.rest import RestBudget, RestClient
from bpx_flows.connectors.sim import (
    Fault,
    FaultKind,
    ServerConfig,
    SimConfig,
    SimServer,
    SimThread,
)
from bpx_flows.connectors.sim.engine import MarketSpec
from tests.cli import CLI, run_cli

pytestmark = pytest.mark.e2e


def test_the_simulator_answers_429_beyond_its_limits() -> None:
    config = ServerConfig(rest_limit=(6, 30.0), history_limit=(3, 30.0))
    server = SimServer(SimConfig(seed=1), config)
    with SimThread(server):
        klines = {"symbol": "SOL_USDC", "interval": "1m", "startTime": "0"}
        answers = [
            httpx.get(f"{server.rest_url}/api/v1/klines", params=klines, timeout=5)
            for _ in range(4)
        ]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        refused = answers[-1]
        assert refused.json() == {
            "code": "TOO_MANY_REQUESTS",
            "message": "Too many requests",
        }
        assert 1 <= int(refused.headers["Retry-After"]) <= 30
        # The history budget is spent; other paths have 3 of their 6 left.
        others = [
            httpx.get(f"{server.rest_url}/api/v1/markets", timeout=5).status_code
            for _ in range(4)
        ]
        assert others == [200, 200, 200, 429]
        assert server.stats.rest_throttled == 2


def test_no_limit_when_turned_off() -> None:
    config = ServerConfig(rest_limit=None, history_limit=None)
    server = SimServer(SimConfig(seed=1), config)
    with SimThread(server):
        codes = {
            httpx.get(f"{server.rest_url}/api/v1/markets", timeout=5).status_code
            for _ in range(50)
        }
        assert codes == {200}


MARKETS = tuple(
    MarketSpec(
        f"M{i:03d}_USDC", f"M{i:03d}", "USDC", "SPOT", "0.01", "0.01", "100.00", 5.0
    )
    for i in range(100)
)


async def _books_reseed_after_storms(server: SimServer, storms: int) -> dict[str, Any]:
    """Two connections of 50 books each, sharing one budget; storms of drops."""
    budget = RestBudget(per_minute=60 * 30, burst=5)  # <= 35 in any second: < 50
    streams = [f"depth.{m.symbol}" for m in MARKETS]
    clients = [
        RestClient(server.rest_url, rate_per_s=1_000, budget=budget) for _ in range(2)
    ]
    connections = [
        Connection(
            parse_streams(streams[k * 50 : (k + 1) * 50]),
            ConnectionConfig(
                ws_url=server.ws_url, backoff_initial_s=0.05, backoff_max_s=0.2
            ),
            rest=clients[k],
        )
        for k in range(2)
    ]
    seeded: dict[str, int] = {}
    rounds = storms + 1
    deadline = time.monotonic() + 120
    try:
        for round_ in range(rounds):
            if round_:
                server.arm(Fault(FaultKind.DROP, after=0, times=2))
            while time.monotonic() < deadline:
                for conn in connections:
                    for record in await conn.take(0.05):
                        if isinstance(record, BookSnapshot):
                            seeded[record.symbol] = seeded.get(record.symbol, 0) + 1
                if all(seeded.get(m.symbol, 0) > round_ for m in MARKETS):
                    break
    finally:
        for conn in connections:
            await conn.close()
        for client in clients:
            await client.aclose()
    return {"seeded": seeded, "granted": budget.granted}


def test_a_hundred_books_reseed_after_a_disconnect_storm_within_the_limit() -> None:
    # 50 requests per second allowed: 100 snapshots at once would exceed it.
    config = ServerConfig(rest_limit=(50, 1.0), history_limit=None, speed=2.0)
    server = SimServer(SimConfig(seed=4, markets=MARKETS, account_every_s=None), config)
    with SimThread(server):
        result = asyncio.run(_books_reseed_after_storms(server, storms=2))
    assert all(result["seeded"].get(m.symbol, 0) >= 3 for m in MARKETS), result
    assert server.stats.rest_throttled == 0
    assert result["granted"] >= 300  # every book fetched at least 3 snapshots


def test_the_sim_command_takes_its_limits_from_flags() -> None:
    command = [*CLI, "sim", "--rest-limit", "2/60"]
    with subprocess.Popen(
        [*command, "--history-limit", "off"], stdout=subprocess.PIPE, text=True
    ) as sim:
        try:
            assert sim.stdout is not None
            url = json.loads(sim.stdout.readline())["rest"] + "/api/v1/time"
            codes = [httpx.get(url, timeout=5).status_code for _ in range(3)]
            assert codes == [200, 200, 429]
        finally:
            sim.terminate()
            sim.wait(timeout=30)
    bad = run_cli("sim", "--rest-limit", "many", timeout=60)
    assert bad.returncode == 2 and "expected N/S" in bad.stderr
