"""Open interest and mark prices seeded from REST at connect, live and replayed."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bpx_flows.connectors.backpack import parse_streams
from bpx_flows.connectors.backpack.seeds import SeededMarkPrice
from bpx_flows.connectors.backpack.wire import Frame, MarkPrice, OpenInterest
from bpx_flows.connectors.recording import Recorder
from bpx_flows.connectors.sim import SimThread
from bpx_flows.connectors.sources import BackpackSource, ReplaySource
from tests.e2e.test_source import run_tape, source_config

pytestmark = pytest.mark.e2e

STREAMS = ["openInterest.SOL_USDC_PERP", "openInterest.BTC_USDC_PERP"]


def _open_interest(records: list[Any]) -> dict[str, tuple[str, int]]:
    return {
        r.data.s: (r.data.o, r.data.E)
        for r in records
        if isinstance(r, Frame) and isinstance(r.data, OpenInterest)
    }


def _recorded_run(
    sim: SimThread, path: Path, streams: list[str], seconds: float
) -> list[Any]:
    """Every record of a live run of ``streams``, recorded to ``path``."""
    with Recorder(path, streams) as recorder:
        source = BackpackSource(
            parse_streams(streams), source_config(sim, seconds, 10), tap=recorder
        )
        return run_tape(source)


def test_open_interest_is_known_at_once_and_replays_the_same(
    fresh_sim: SimThread, tmp_path: Path
) -> None:
    # The stream sends once a minute; within 3 s only the REST seed can have come.
    path = tmp_path / "oi.jsonl"
    live = _open_interest(_recorded_run(fresh_sim, path, STREAMS, 3.0))
    assert set(live) == {"SOL_USDC_PERP", "BTC_USDC_PERP"}
    assert all(Decimal(o) > 0 for o, _ in live.values())
    assert '"rest":"/api/v1/openInterest"' in path.read_text()
    assert _open_interest(run_tape(ReplaySource([path]))) == live


MARK_STREAMS = ["markPrice.SOL_USDC_PERP", "markPrice.ETH_USDC_PERP"]


def _seeds(records: list[Any]) -> dict[str, tuple[str, int]]:
    return {
        r.data.s: (r.data.p, r.data.E)
        for r in records
        if isinstance(r, Frame) and type(r.data) is SeededMarkPrice
    }


def test_mark_prices_are_seeded_dated_by_the_server_and_replay_the_same(
    fresh_sim: SimThread, tmp_path: Path
) -> None:
    path = tmp_path / "marks.jsonl"
    records = _recorded_run(fresh_sim, path, MARK_STREAMS, 2.5)
    live = _seeds(records)
    assert set(live) == {"SOL_USDC_PERP", "ETH_USDC_PERP"}
    # Dated by the simulator's Date header (whole seconds) less a second: before
    # every frame the stream sent, so the first stream frame supersedes it.
    streamed = [
        r.data.E for r in records if isinstance(r, Frame) and type(r.data) is MarkPrice
    ]
    assert streamed, "the stream sends every second"
    assert all(at % 1_000_000 == 0 for _, at in live.values())
    assert max(at for _, at in live.values()) < min(streamed)
    assert all(Decimal(p) > 0 for p, _ in live.values())
    assert '"rest":"/api/v1/markPrices"' in path.read_text()
    assert _seeds(run_tape(ReplaySource([path]))) == live
