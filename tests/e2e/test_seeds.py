"""Open interest seeded from REST at connect, live on the simulator and replayed."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bpx_flows.connectors.backpack import parse_streams
from bpx_flows.connectors.backpack.wire import Frame, OpenInterest
from bpx_flows.connectors.recording import Recorder
from bpx_flows.connectors.sim import SimThread
from bpx_flows.connectors.source import BackpackSource, ReplaySource
from tests.e2e.test_source import run_tape, source_config

pytestmark = pytest.mark.e2e

STREAMS = ["openInterest.SOL_USDC_PERP", "openInterest.BTC_USDC_PERP"]


def _open_interest(records: list[Any]) -> dict[str, tuple[str, int]]:
    return {
        r.data.s: (r.data.o, r.data.E)
        for r in records
        if isinstance(r, Frame) and isinstance(r.data, OpenInterest)
    }


def test_open_interest_is_known_at_once_and_replays_the_same(
    fresh_sim: SimThread, tmp_path: Path
) -> None:
    # The stream sends once a minute; within 3 s only the REST seed can have come.
    path = tmp_path / "oi.jsonl"
    with Recorder(path, STREAMS) as recorder:
        source = BackpackSource(
            parse_streams(STREAMS), source_config(fresh_sim, 3.0, 10), tap=recorder
        )
        live = _open_interest(run_tape(source))
    assert set(live) == {"SOL_USDC_PERP", "BTC_USDC_PERP"}
    assert all(Decimal(o) > 0 for o, _ in live.values())
    assert '"rest":"/api/v1/openInterest"' in path.read_text()
    assert _open_interest(run_tape(ReplaySource([path]))) == live
