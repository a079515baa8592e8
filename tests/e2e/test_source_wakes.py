"""A live worker with nothing to read wakes for the flow's timers, not only frames."""

from __future__ import annotations

import time

import pytest

from bpx_flows.connectors.backpack import parse_streams
from bpx_flows.connectors.clock import WakeTimes
from bpx_flows.connectors.connection import ConnectionConfig
from bpx_flows.connectors.sim import SimServer
from bpx_flows.connectors.sources import BackpackSource, SourceConfig

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

QUIET = ["liquidation.SOL_USDC_PERP"]  # rare on the simulator


def _empty_returns(sim: SimServer, wakes: WakeTimes | None) -> tuple[int, int]:
    """Empty batches in 1.5 s of calls, and the records, for a long idle sleep."""
    config = SourceConfig(
        connection=ConnectionConfig(ws_url=sim.ws_url),
        rest_url=sim.rest_url,
        batch_timeout_s=3.0,  # a worker with nothing to read would sleep this long
        wakes=wakes,
    )
    part = BackpackSource(parse_streams(QUIET), config).build("in", 0, 1)
    try:
        part.next_batch()  # connects, subscribes
        empty = records = 0
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            batch = part.next_batch()
            records += len(batch)
            empty += not batch
        return empty, records
    finally:
        part.close()


def test_an_idle_worker_wakes_at_the_flows_timers(sim: SimServer) -> None:
    # Every 100 ms: about 15 wakes in 1.5 s, each an empty batch (Bytewax then
    # runs the steps whose timers came due).
    woken, records = _empty_returns(sim, WakeTimes(100_000, (0,)))
    assert woken >= 10, (woken, records)
    # Without them the worker sleeps until a frame comes or the 3 s pass.
    asleep, records = _empty_returns(sim, None)
    assert asleep <= 3, (asleep, records)
