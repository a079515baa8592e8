"""The fault matrix: each fault on a real socket, then the invariants, asserted.

Every case starts its own simulator (2x event rates, liquidation cascades), runs the
market pipeline of ``harness.py`` on it, arms the fault, waits for it to fire and the
pipeline to recover, and checks: books equal the simulator's at a paused checkpoint,
every trade is in a candle or in a reported gap, no alert twice, memory bounded. The
measured book outage and counters go to ``out/reliability.json`` (docs/reliability.md).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from bpx_flows.connectors.backpack import Credentials, parse_streams
from bpx_flows.connectors.connection import ConnectionConfig
from bpx_flows.connectors.errors import AuthError
from bpx_flows.connectors.sim import (
    Fault,
    FaultKind,
    ServerConfig,
    SimConfig,
    SimServer,
    SimThread,
)
from bpx_flows.connectors.sources import BackpackSource, SourceConfig
from tests.reliability.harness import Pipeline, rss_mb, wait_for

pytestmark = pytest.mark.e2e

RESULTS: dict[str, dict[str, Any]] = {}
OUT = Path("out") / "reliability.json"
FAST = {"backoff_initial_s": 0.05, "backoff_max_s": 0.5}


def new_sim(speed: float = 1.0, **server: Any) -> SimThread:
    exchange = SimConfig(rate_scale=2.0, liquidation_every_s=2.0, cascade_every_s=8.0)
    config = ServerConfig(
        ping_interval_s=1.0, ping_timeout_s=5.0, speed=speed, **server
    )
    return SimThread(SimServer(exchange, config))


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


@pytest.fixture(scope="module", autouse=True)
def write_results() -> Any:
    yield
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(RESULTS, indent=2, sort_keys=True))


CASES: dict[str, dict[str, Any]] = {
    "disconnect storm (8 drops, 10x simulated pace)": {
        "faults": [Fault(FaultKind.DROP, after=1500, times=8)],
        "speed": 10.0,
    },
    "server close 1001 with grace": {"faults": [Fault(FaultKind.CLOSE, after=150)]},
    "stalled stream (4 s of silence)": {
        # The watchdog must outlast a paused checkpoint (no frames while paused).
        "faults": [Fault(FaultKind.STALL, after=150, seconds=4.0)],
        "connection": {"silence_s": 2.0},
        "settle_s": 3.0,
    },
    "depth sequence gap": {"faults": [Fault(FaultKind.SKIP_DEPTH, after=60, count=3)]},
    "duplicated depth range": {
        "faults": [Fault(FaultKind.REPEAT_DEPTH, after=60, count=6)]
    },
    "malformed frame": {"faults": [Fault(FaultKind.MALFORMED, after=100)]},
    "oversized frame (17 MiB)": {
        "faults": [Fault(FaultKind.OVERSIZED, after=100, count=17 << 20)]
    },
    "REST 429, 503 and a timeout during resync": {
        "faults": [
            Fault(FaultKind.REST_STATUS, status=429, count=2),
            Fault(FaultKind.REST_STATUS, status=503, count=1),
            Fault(FaultKind.REST_DELAY, seconds=2.0, count=1),
            Fault(FaultKind.SKIP_DEPTH, after=60, count=2),
        ],
        "rest_timeout_s": 1.0,
    },
    "slow sink (500 ms per batch)": {
        # The connection is read only while the flow asks for records, so a sink
        # that holds the worker for 0.5 s meets a burst of frames far above 5.
        "faults": [],
        "sink_delay_s": 0.5,
        "connection": {"max_pending": 5},
        "settle_s": 5.0,
    },
}


@pytest.mark.parametrize("name", list(CASES))
def test_fault(name: str) -> None:
    case = CASES[name]
    thread = new_sim(case.get("speed", 1.0))
    with thread:
        server = thread.server
        pipeline = Pipeline(
            thread,
            connection=ConnectionConfig(**{**FAST, **case.get("connection", {})}),
            rest_timeout_s=case.get("rest_timeout_s", 10.0),
            sink_delay_s=case.get("sink_delay_s", 0.0),
        )
        rss_before = rss_mb()
        pipeline.start()
        started = time.monotonic()
        try:
            for fault in case["faults"]:
                thread.call(lambda f=fault: server.arm(f))
            wait_for(lambda: not server.faults, 60, "every fault to fire")
            fired_s = time.monotonic() - started
            time.sleep(case.get("settle_s", 1.0))
            pipeline.wait_recovered()
            pipeline.assert_books_equal_the_simulator()
        finally:
            pipeline.stop()
        missing = pipeline.assert_trades_accounted()
        pipeline.assert_no_duplicate_alerts()
        rss_growth = rss_mb() - rss_before
        assert rss_growth < 150, f"memory grew by {rss_growth:.0f} MB"
        stats = pipeline.connection_stats()
        RESULTS[name] = {
            "faults_fired": dict(server.stats.faults_fired),
            "fired_after_s": round(fired_s, 2),
            "book_outage_ms": round(pipeline.outage_ms(), 1),
            "recovery_ms": _rounded(
                pipeline.recovery_ms(list(server.stats.fault_times_us))
            ),
            "resyncs": pipeline.resyncs(),
            "trades_lost_and_reported": sum(missing.values()),
            "rss_growth_mb": round(rss_growth, 1),
            **stats,
        }
    expect_reconnect = any(
        f.kind
        in (FaultKind.DROP, FaultKind.CLOSE, FaultKind.STALL, FaultKind.OVERSIZED)
        for f in case["faults"]
    )
    if expect_reconnect:
        assert stats["disconnects"] >= 1
        assert pipeline.resyncs() >= 1
    if any(f.kind is FaultKind.MALFORMED for f in case["faults"]):
        assert stats["dead_letters"] >= 1
    if any(f.kind is FaultKind.REPEAT_DEPTH for f in case["faults"]):
        assert pipeline.resyncs() == 0  # duplicates are dropped, not a resync
    if case.get("sink_delay_s"):
        assert stats["pushback_waits"] >= 1  # the reader paused for the sink
        assert stats["disconnects"] == 0  # ... and lost nothing


def test_expired_signature_ends_the_private_stream_fast_and_clearly() -> None:
    creds = Credentials.from_secret("AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=")
    thread = new_sim(account_key=creds.public_key)
    with thread:
        server = thread.server
        thread.call(lambda: server.set_clock_skew(120_000))
        source = BackpackSource(
            parse_streams(["account.orderUpdate"]),
            SourceConfig(
                connection=ConnectionConfig(ws_url=server.ws_url, **FAST),
                rest_url=server.rest_url,
                run_for_s=30.0,
                end_on_fatal=True,
            ),
            creds,
        )
        import bytewax.operators as op
        from bytewax.dataflow import Dataflow
        from bytewax.testing import TestingSink, run_main

        flow = Dataflow("private")
        op.output("out", op.input("in", flow, source), TestingSink([]))
        started = time.monotonic()
        run_main(flow)
        took = time.monotonic() - started
    assert source.failures and isinstance(source.failures[0], AuthError)
    assert "expired" in str(source.failures[0])
    assert "synchronise it (NTP)" in str(source.failures[0])
    connects = sum(c.stats.connects for c in source.connections().values())
    assert connects == 1  # refused for good: no reconnect storm
    assert took < 10
    RESULTS["expired signature on a private stream"] = {
        "ended_after_s": round(took, 2),
        "connects": connects,
    }
