"""The book flow wiring, with Bytewax's testing source and sink, on 1 and 2 workers."""

from __future__ import annotations

from typing import Any

import pytest
from bytewax.testing import TestingSource, cluster_main, run_main

from bpx_flows.connectors.backpack.booksync import BookSnapshot
from bpx_flows.connectors.backpack.wire import Depth, Frame, Trade
from bpx_flows.flows.book import book_streams
from bpx_flows.operators.book_state import (
    BookConfig,
    BookIntegrity,
    BookStats,
    IntegrityKind,
)
from tests.wired import book_settings, wired


def snapshot(symbol: str, uid: int) -> BookSnapshot:
    return BookSnapshot(f"depth.{symbol}", symbol, uid, [("10", "1")], [("11", "1")], 1)


def diff(symbol: str, uid: int, bid: str) -> Frame[Depth]:
    data = Depth(E=uid, s=symbol, a=[], b=[("10", bid)], U=uid, u=uid, T=uid)
    return Frame(f"depth.{symbol}", data, recv_us=uid + 5)


def records() -> list[Any]:
    out: list[Any] = []
    for symbol in ("AAA_USDC", "BBB_USDC", "CCC_USDC"):
        out.append(snapshot(symbol, 100))
        out.extend(diff(symbol, 100 + i, str(i)) for i in range(1, 21))
    trade = Trade(E=1, s="AAA_USDC", p="1", q="1", b="1", a="2", t=1, T=1, m=False)
    out.append(Frame("trade.AAA_USDC", trade))  # not a book record: ignored
    out.append(diff("DDD_USDC", 5, "1"))  # a diff before any snapshot
    return out


@pytest.mark.parametrize("workers", [1, 2])
def test_each_symbol_gets_its_own_book_on_any_worker(workers: int) -> None:
    out: list[Any] = []
    section = book_settings(BookConfig())
    flow = wired("book", TestingSource(records()), out, sections=[section])
    if workers == 1:
        run_main(flow)
    else:
        cluster_main(flow, [], 0, worker_count_per_proc=workers)
    stats = [r for r in out if isinstance(r, BookStats)]
    integrity = [r for r in out if isinstance(r, BookIntegrity)]
    last = {s.symbol: s for s in sorted(stats, key=lambda s: s.update_id)}
    assert set(last) == {"AAA_USDC", "BBB_USDC", "CCC_USDC"}
    for symbol_stats in last.values():
        assert symbol_stats.update_id == 120
        assert str(symbol_stats.bid_qty) == "20"
        assert symbol_stats.emit_us > 0
    assert len(stats) == 3 * 21
    assert [e.kind for e in integrity] == [IntegrityKind.DIFF_BEFORE_SNAPSHOT]


def test_book_streams() -> None:
    assert book_streams(["A_B"], "200ms.") == ["depth.200ms.A_B", "bookTicker.A_B"]
