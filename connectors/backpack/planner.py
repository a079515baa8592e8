"""Which REST requests one connection makes, and when: the sans-I/O side of its fetches.

One ``FetchPlanner`` per connection holds the parts that need REST (the book syncs,
the trade gaps, the kline history pages, the seeds) and turns their wants into
``Fetch`` records, within these bounds:

- depth snapshots: at most ``max_snapshots`` in flight; a book whose snapshot
  failed or was stale waits ``0.05 * 2**attempts`` seconds (at most 5) first;
- trade pages and kline pages: one of each in flight (each also draws on the
  exchange's history budget, which the REST client enforces);
- seeds (open interest, mark prices): one request of each per connect.

The caller makes the requests and feeds back each body (``answered``) or failure
(``failed``); both give records. No clock is read: times come in as arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from .backfill import (
    BackfilledTrade,
    Gap,
    TradeBackfill,
    TradeGaps,
)
from .books import BookRouter
from .booksync import ResyncReason, SyncRecord
from .fetches import (
    Answer,
    Fetch,
    FetchKind,
    answers,
    records_of,
)
from .kline_history import kline_pages
from .streams import Channel, StreamName
from .wire import Frame

__all__ = ["FetchPlanner", "KlineProgress", "PlannerConfig"]

_S = 1_000_000


@dataclass(frozen=True, slots=True)
class PlannerConfig:
    """What one connection fetches.

    Attributes:
        snapshot_limit: levels per side asked of ``GET /api/v1/depth``.
        max_snapshots: depth snapshots in flight at once.
        trade_gaps: fetch back trades that a jump in trade ids lost.
        trade_gap_max_wait_us: a gap not filled within this long is given up,
            microseconds.
        kline_backfill_us: at the first connect, fetch this much history of every
            kline stream, microseconds; 0: none.
    """

    snapshot_limit: int = 1000
    max_snapshots: int = 8
    trade_gaps: bool = False
    trade_gap_max_wait_us: int = 300 * _S
    kline_backfill_us: int = 0


@dataclass(frozen=True, slots=True)
class KlineProgress:
    """One kline stream's history is complete (or ended by a failure)."""

    stream: str
    klines: int
    requests: int
    failed: bool


Record = Frame[Any] | SyncRecord | TradeBackfill


class FetchPlanner:
    """The REST wants of one connection's streams, as ``Fetch`` records.

    Args:
        streams: the connection's streams.
        config: what to fetch, and the bounds.
    """

    def __init__(self, streams: Sequence[StreamName], config: PlannerConfig) -> None:
        self.config = config
        self.books = BookRouter(str(s) for s in streams if s.channel is Channel.DEPTH)
        self.gaps: TradeGaps | None = None
        if config.trade_gaps and any(s.channel is Channel.TRADE for s in streams):
            self.gaps = TradeGaps(max_wait_us=config.trade_gap_max_wait_us)
        self._seeded = {
            FetchKind.OPEN_INTEREST: tuple(
                str(s) for s in streams if s.channel is Channel.OPEN_INTEREST
            ),
            FetchKind.MARK_PRICES: tuple(
                str(s) for s in streams if s.channel is Channel.MARK_PRICE
            ),
        }
        self._kline_streams = [
            s for s in streams if s.channel is Channel.KLINE and s.interval is not None
        ]
        self._kline_pages: list[Fetch] = []
        self._kline_started = False
        self._kline_got: dict[str, int] = {}  # klines so far, per stream
        self._kline_planned: dict[str, int] = {}  # pages, per stream
        self._waiting: list[Fetch] = []  # made by ``connected``, not handed out yet
        self._snapshots = 0  # in flight
        self._attempts: dict[str, int] = {}  # per book: snapshots since it was live
        self._trade_page = False  # one in flight
        self._kline_page = False  # one in flight
        self._kline_flying: str | None = None  # the stream of that page
        self.kline_progress: list[KlineProgress] = []  # since last read

    # Events from the connection.

    def connected(self, now_us: int) -> None:
        """A connection opened: seed what the streams send only later.

        At the first connect only, plan the kline history up to ``now_us`` (a
        reconnect does not repeat it: trade backfill covers what it lost).
        """
        for kind, streams in self._seeded.items():
            if streams:
                self._waiting.append(Fetch(kind, {}, streams))
        backfill_us = self.config.kline_backfill_us
        if self._kline_started or backfill_us <= 0:
            return
        self._kline_started = True
        for stream in self._kline_streams:
            assert stream.symbol is not None
            assert stream.interval is not None
            pages = kline_pages(
                stream.symbol, stream.interval, now_us - backfill_us, now_us
            )
            self._kline_pages += [
                Fetch(FetchKind.KLINES, page, (str(stream),), before_us=now_us)
                for page in pages
            ]
            self._kline_got[str(stream)] = 0
            self._kline_planned[str(stream)] = len(pages)
            if not pages:
                self.kline_progress.append(KlineProgress(str(stream), 0, 0, False))

    def trade_seen(
        self, stream: str, symbol: str, trade_id: int, recv_us: int
    ) -> TradeBackfill | Gap | None:
        """A trade arrived: a new ``Gap`` to fetch, a report, or ``None``."""
        assert self.gaps is not None
        return self.gaps.see(stream, symbol, trade_id, recv_us)

    def disconnected(self, now_us: int) -> list[SyncRecord]:
        """The connection was lost: every book is invalid until a new snapshot."""
        return self.books.reset_all(ResyncReason.RECONNECT, now_us)

    def close(self, now_us: int) -> list[TradeBackfill]:
        """The connection closes for good: open gaps end unfilled."""
        return [] if self.gaps is None else self.gaps.close(now_us)

    def history_left(self) -> dict[str, tuple[int, int]]:
        """Kline history not fetched yet: ``{stream: (pages left, pages planned)}``.

        A page in flight counts as left (its answer will not be used).
        """
        left: dict[str, int] = {}
        for fetch in self._kline_pages:
            left[fetch.stream] = left.get(fetch.stream, 0) + 1
        if self._kline_flying is not None:
            left[self._kline_flying] = left.get(self._kline_flying, 0) + 1
        return {
            stream: (count, self._kline_planned.get(stream, count))
            for stream, count in left.items()
            if count
        }

    # Fetches.

    def due(self, now_us: int) -> tuple[list[Fetch], list[TradeBackfill]]:
        """The fetches to start now, and the trade gaps that ended waiting."""
        fetches, self._waiting = self._waiting, []
        fetches += self._snapshot_fetches()
        ended: list[TradeBackfill] = []
        if self.gaps is not None and not self._trade_page and self.gaps.open:
            request, ended = self.gaps.next_request(now_us)
            if request is not None:
                self._trade_page = True
                stream = request.gap.stream
                fetches.append(
                    Fetch(FetchKind.TRADES, request.params, (stream,), request=request)
                )
        if self._kline_pages and not self._kline_page:
            self._kline_page = True
            page = self._kline_pages.pop(0)
            self._kline_flying = page.stream
            fetches.append(page)
        return fetches, ended

    def _snapshot_fetches(self) -> list[Fetch]:
        room = self.config.max_snapshots - self._snapshots
        if room <= 0 or not self.books.wanting:
            return []
        fetches = []
        for sync in self.books.start_fetches(room):
            self._snapshots += 1
            attempts = self._attempts.get(sync.stream, 0)
            self._attempts[sync.stream] = attempts + 1
            params = {"symbol": sync.symbol, "limit": str(self.config.snapshot_limit)}
            delay_s = min(5.0, 0.05 * 2**attempts) if attempts else 0.0
            fetches.append(Fetch(FetchKind.DEPTH, params, (sync.stream,), delay_s))
        return fetches

    def answered(
        self, fetch: Fetch, body: bytes, recv_us: int, server_us: int | None = None
    ) -> tuple[list[Answer], list[Record]]:
        """A fetch's body arrived: the answers to record, and the records they give.

        Raises:
            ProtocolError: the body is not what the path returns (the fetch is
                then over: call ``failed`` next, as for any failure).
        """
        got = answers(fetch, body, recv_us, server_us)
        records: list[Record] = []
        for answer in got:
            records += records_of(answer, self.books)
        self._finished(fetch)
        if fetch.kind is FetchKind.DEPTH:
            stream = fetch.stream
            sync = self.books.syncs.get(stream)
            if sync is not None and sync.live:
                self._attempts.pop(stream, None)
        elif fetch.kind is FetchKind.TRADES:
            assert self.gaps is not None
            assert fetch.request is not None
            # A trade page's records are its frames (``records_of``).
            frames = cast("list[Frame[BackfilledTrade]]", records)
            done = self.gaps.took(fetch.request, frames, body, recv_us)
            if done is not None:
                records.append(done)
        elif fetch.kind is FetchKind.KLINES:
            self._kline_answered(fetch, len(records))
        return got, records

    def failed(self, fetch: Fetch, now_us: int) -> list[Record]:
        """A fetch failed for good (after the client's own retries)."""
        self._finished(fetch)
        if fetch.kind is FetchKind.DEPTH and fetch.stream in self.books.syncs:
            self.books.snapshot_failed(fetch.stream)
        elif fetch.kind is FetchKind.TRADES:
            assert self.gaps is not None
            assert fetch.request is not None
            given_up = self.gaps.failed(fetch.request, now_us)
            return [] if given_up is None else [given_up]
        elif fetch.kind is FetchKind.KLINES:
            # The stream's history ends here; the live candles go on without it.
            stream = fetch.stream
            rest = [f for f in self._kline_pages if f.stream == stream]
            self._kline_pages = [f for f in self._kline_pages if f.stream != stream]
            got = self._kline_got.pop(stream, 0)
            requests = self._kline_planned.get(stream, 0) - len(rest)
            self.kline_progress.append(KlineProgress(stream, got, requests, True))
        return []

    def _finished(self, fetch: Fetch) -> None:
        if fetch.kind is FetchKind.DEPTH:
            self._snapshots -= 1
        elif fetch.kind is FetchKind.TRADES:
            self._trade_page = False
        elif fetch.kind is FetchKind.KLINES:
            self._kline_page = False
            self._kline_flying = None

    def _kline_answered(self, fetch: Fetch, klines: int) -> None:
        stream = fetch.stream
        self._kline_got[stream] = self._kline_got.get(stream, 0) + klines
        if not any(f.stream == stream for f in self._kline_pages):
            got = self._kline_got.pop(stream)
            planned = self._kline_planned.get(stream, 0)
            progress = KlineProgress(stream, got, planned, False)
            self.kline_progress.append(progress)
