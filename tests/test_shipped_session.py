"""The recorded session shipped in data/ replays cleanly into typed records."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from bpx_flows.connectors.backpack.booksync import BookSnapshot
from bpx_flows.connectors.backpack.decode import BadFrame
from bpx_flows.connectors.backpack.replayer import Replayer
from bpx_flows.connectors.backpack.wire import Frame, ServerError
from bpx_flows.connectors.recording import iter_lines

SESSION = (
    Path(__file__).resolve().parents[1] / "data" / "sessions" / "sim-session.jsonl.gz"
)


def test_shipped_session_replays_without_dead_letters() -> None:
    assert SESSION.stat().st_size < 5_000_000
    replayer = Replayer()
    kinds: Counter[str] = Counter()
    snapshots = set()
    for line in iter_lines(SESSION):
        for record in replayer.feed(line):
            assert not isinstance(record, BadFrame | ServerError), record
            if isinstance(record, BookSnapshot):
                snapshots.add(record.stream)
            if isinstance(record, Frame):
                kinds[type(record.data).__name__] += 1
    assert {"Trade", "Depth", "BookTicker", "OrderUpdate", "MarkPrice"} <= set(kinds)
    assert snapshots == {
        "depth.SOL_USDC",
        "depth.200ms.SOL_USDC_PERP",
        "depth.BTC_USDC_PERP",
    }
    assert all(sync.live for sync in replayer.books.syncs.values())
