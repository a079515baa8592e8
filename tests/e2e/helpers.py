"""Helpers for end-to-end tests: drive a Connection and keep books from its records."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bpx_flows.connectors.backpack.booksync import BookSnapshot, Resync
from bpx_flows.connectors.backpack.decode import BadFrame
from bpx_flows.connectors.backpack.wire import Depth, DepthSnapshot, Frame, ServerError
from bpx_flows.connectors.connection import Connection
from bpx_flows.connectors.sim import SimServer, SimThread
from bpx_flows.operators.book import L2Book


@dataclass
class Collected:
    """Everything a connection emitted, and the books built from it."""

    records: list[Any] = field(default_factory=list)
    books: dict[str, L2Book] = field(default_factory=dict)
    live: set[str] = field(default_factory=set)

    def add(self, record: Any) -> None:
        self.records.append(record)
        if isinstance(record, BookSnapshot):
            book = self.books.setdefault(record.stream, L2Book())
            book.reset(record.bids, record.asks, record.lastUpdateId)
            self.live.add(record.stream)
        elif isinstance(record, Resync):
            self.live.discard(record.stream)
        elif isinstance(record, Frame) and isinstance(record.data, Depth):
            assert record.stream in self.live, (
                f"diff before snapshot on {record.stream}"
            )
            book = self.books[record.stream]
            assert book.update_id + 1 >= record.data.U, "gap passed through"
            book.apply(record.data.b, record.data.a, record.data.u)

    def count(self, kind: type) -> int:
        return sum(1 for r in self.records if isinstance(r, kind))

    def frames(self, data_kind: type | None = None) -> list[Frame[Any]]:
        return [
            r
            for r in self.records
            if isinstance(r, Frame)
            and (data_kind is None or isinstance(r.data, data_kind))
        ]

    def bad(self) -> list[BadFrame | ServerError]:
        return [r for r in self.records if isinstance(r, BadFrame | ServerError)]


async def pump(
    conn: Connection,
    got: Collected,
    until: Callable[[Collected], bool],
    timeout_s: float,
) -> None:
    """Take records until ``until(got)`` holds; fails after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not until(got):
        if time.monotonic() > deadline:
            kinds = sorted({type(r).__name__ for r in got.records})
            n = len(got.records)
            msg = f"condition not met in {timeout_s} s; got {n} records {kinds}"
            raise AssertionError(msg)
        for record in await conn.take(0.05):
            got.add(record)


async def drain_for(conn: Connection, got: Collected, seconds: float) -> None:
    """Take records for ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for record in await conn.take(0.05):
            got.add(record)


def engine_book(thread: SimThread, server: SimServer, symbol: str) -> DepthSnapshot:
    assert server.exchange is not None
    exchange = server.exchange
    return thread.call(lambda: exchange.depth_snapshot(symbol, 10**9))


async def assert_books_match_after_pause(
    conn: Connection,
    got: Collected,
    thread: SimThread,
    server: SimServer,
    symbols: list[str],
) -> None:
    """Freeze the simulator, drain, and compare every realtime book with the engine's.

    A gap is only visible when the next diff arrives, so a book can still be stale when
    the simulator freezes; then the simulator runs on briefly and the check repeats.
    """
    books = {f"depth.{s}" for s in symbols}
    for _attempt in range(5):
        await pump(conn, got, lambda g: books <= g.live, 15.0)  # re-synced after faults
        thread.call(server.pause)
        try:
            truth = {s: engine_book(thread, server, s) for s in symbols}
            caught_up = await _catch_up(conn, got, truth)
        finally:
            thread.call(server.resume)
        if caught_up:
            for symbol, snap in truth.items():
                expected = L2Book()
                expected.reset(snap.bids, snap.asks, snap.lastUpdateId)
                book = got.books[f"depth.{symbol}"]
                assert dict(book.bids) == dict(expected.bids), symbol
                assert dict(book.asks) == dict(expected.asks), symbol
            return
        await drain_for(conn, got, 0.5)  # let the next diffs reveal a hidden gap
    states = {
        s: (s in got.live, got.books[s].update_id if s in got.books else None)
        for s in books
    }
    msg = f"the books never caught up with a paused simulator: {states} {conn.stats}"
    raise AssertionError(msg)


async def _catch_up(
    conn: Connection, got: Collected, truth: dict[str, DepthSnapshot]
) -> bool:
    def caught_up(g: Collected) -> bool:
        return all(
            f"depth.{s}" in g.live
            and g.books[f"depth.{s}"].update_id == snap.lastUpdateId
            for s, snap in truth.items()
        )

    try:
        await pump(conn, got, caught_up, 3.0)
    except AssertionError:
        return False
    return True


def run(coro: Any) -> Any:
    return asyncio.run(coro)
