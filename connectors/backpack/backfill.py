"""Trades a disconnect lost, fetched back from ``GET /api/v1/trades/history``, sans I/O.

Trade ids are sequential per market, so a jump in a ``trade.<symbol>`` stream (after
a reconnect, or a frame the exchange never sent) names exactly the trades missing.
``TradeGaps`` keeps, per market, the highest id received and the gaps still open, and
plans the requests that fetch them:

- The history endpoint pages back from the newest trade (``offset`` newest trades
  skipped, then ``limit`` older ones, at most 1,000). A request aims at the highest
  missing id from the newest id we know (``offset = newest - highest missing``);
  trades printed since shift the page up; what it brings fills the gap from the
  top, and the next request aims again from the newest id then.
- The exchange allows 30 history requests a minute, so gaps wait their turn: the
  gap with the fewest requests spent goes first (then the oldest), so one long gap
  does not starve the others after a mass reconnect.
- A gap ends ``filled``, or ``unfillable`` with the trades still missing: the
  answer ran out before the gap (older than the exchange keeps, ``history``), the
  gap needs more than ``max_requests`` pages (``too_large``), it waited longer
  than ``max_wait_us`` (``budget``), or the requests kept failing (``failed``).

Fetched trades are ``BackfilledTrade`` events in ordinary ``Frame``s of the trade
stream: flows that do not ask for them (by type) never see them, and the candle
flow folds them and corrects the candles they change. ``TradeBackfill`` records
report each gap's end. Pure: ids and bytes in, records out; the connection does the
requests and the recorder keeps every answer, so a replay gives the same records.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec

from .limits import sane
from .wire import Frame, Trade, TradeRow

__all__ = [
    "HISTORY_PATH",
    "BackfillOutcome",
    "BackfilledTrade",
    "Gap",
    "Request",
    "TradeBackfill",
    "TradeGaps",
    "backfilled_frames",
    "id_ranges",
    "in_ranges",
]

HISTORY_PATH = "/api/v1/trades/history"
PAGE = 1_000  # the most trades one history request returns
_ROWS = msgspec.json.Decoder(list[TradeRow])
_MS = 1_000


class BackfilledTrade(Trade, frozen=True, kw_only=True, tag="backfilledTrade"):
    """A trade fetched from REST after it was missed on the stream.

    The row has millisecond time only: ``T`` and ``E`` are that millisecond in
    microseconds (the trade's second, minute... are exact), and the order ids ``a``
    and ``b`` are empty. Trade ids order trades within a window.
    """


class BackfillOutcome(enum.StrEnum):
    """How a gap ended."""

    FILLED = "filled"
    UNFILLABLE = "unfillable"


class TradeBackfill(msgspec.Struct, frozen=True, kw_only=True):
    """The end of the backfill of ids ``first..last`` of ``symbol``.

    ``fetched`` trades came back; ``missing`` are still missing (0 when filled);
    ``reason`` says why a gap stays unfilled: ``history`` (older than the exchange
    keeps), ``too_large``, ``budget`` (waited too long for the 30 requests a minute),
    ``failed`` (the requests failed), ``closed`` (the connection closed first).
    """

    stream: str
    symbol: str
    first: int
    last: int
    outcome: BackfillOutcome
    fetched: int
    missing: int
    requests: int
    reason: str | None
    recv_us: int


@dataclass(slots=True)
class Gap:
    """Ids ``first..last`` of ``symbol`` not received; ``missing``: not fetched yet."""

    stream: str
    symbol: str
    first: int
    last: int
    detected_us: int  # receive time of the trade that revealed it
    missing: set[int] = field(default_factory=set)
    requests: int = 0
    failures: int = 0
    fetched: int = 0


@dataclass(frozen=True, slots=True)
class Request:
    """One history request for ``gap``."""

    gap: Gap
    params: dict[str, str]


class TradeGaps:
    """Per market: the highest trade id received and the gaps being fetched.

    Args:
        max_requests: pages one gap may take (1,000 trades each).
        max_wait_us: how long a gap may wait to be filled, microseconds.
        max_failures: failed requests before a gap is given up.
        max_gaps: open gaps kept in all (more are reported unfillable at once).
    """

    def __init__(
        self,
        max_requests: int = 20,
        max_wait_us: int = 300_000_000,
        max_failures: int = 3,
        max_gaps: int = 1_000,
    ) -> None:
        self._newest: dict[str, int] = {}  # symbol -> highest id received
        self._gaps: list[Gap] = []
        self._max_requests = max_requests
        self._max_wait_us = max_wait_us
        self._max_failures = max_failures
        self._max_gaps = max_gaps
        self.filled = 0
        self.unfillable = 0

    @property
    def open(self) -> int:
        """Gaps not ended yet."""
        return len(self._gaps)

    def missing(self) -> int:
        """Trades known missing and not fetched yet."""
        return sum(len(g.missing) for g in list(self._gaps))

    def see(
        self, stream: str, symbol: str, trade_id: int, recv_us: int
    ) -> TradeBackfill | Gap | None:
        """A trade arrived: a new ``Gap`` when its id jumps, else ``None``.

        With too many gaps open, the new one is reported unfillable at once (its
        ``TradeBackfill``).
        """
        newest = self._newest.get(symbol)
        if newest is None or trade_id > newest:
            self._newest[symbol] = trade_id
        if newest is None or trade_id <= newest + 1:
            return None
        gap = Gap(stream, symbol, newest + 1, trade_id - 1, recv_us)
        gap.missing = set(range(gap.first, gap.last + 1))
        if len(self._gaps) >= self._max_gaps:
            self.unfillable += 1
            return _report(gap, "too_many_gaps", recv_us)
        self._gaps.append(gap)
        return gap

    def next_request(self, now_us: int) -> tuple[Request | None, list[TradeBackfill]]:
        """The next request to make (``None``: nothing to do), and ended gaps.

        Gaps end here when they waited too long (``budget``) or took their most
        requests (``too_large``).
        """
        ended: list[TradeBackfill] = []
        for gap in list(self._gaps):
            reason = None
            if now_us - gap.detected_us > self._max_wait_us:
                reason = "budget"
            elif gap.requests >= self._max_requests:
                reason = "too_large"
            if reason is not None:
                ended.append(self._end(gap, reason, now_us))
        if not self._gaps:
            return None, ended
        gap = min(self._gaps, key=lambda g: (g.requests, g.detected_us))
        top = max(gap.missing)
        newest = self._newest.get(gap.symbol, top)
        # The page ends at the top if nothing printed since the newest trade we
        # received; trades printed since shift it up, and the next request aims
        # again from the newest then.
        offset = max(0, newest - top)
        params = {"symbol": gap.symbol, "limit": str(PAGE), "offset": str(offset)}
        gap.requests += 1
        return Request(gap, params), ended

    def answered(
        self, request: Request, body: bytes, recv_us: int
    ) -> tuple[list[Frame[BackfilledTrade]], TradeBackfill | None]:
        """A request's answer: the frames it filled, and the gap's end if it ended."""
        gap = request.gap
        frames = backfilled_frames(
            gap.stream, gap.symbol, body, gap.missing, gap.first, gap.last, recv_us
        )
        return frames, self.took(request, frames, body, recv_us)

    def took(
        self,
        request: Request,
        frames: list[Frame[BackfilledTrade]],
        body: bytes,
        recv_us: int,
    ) -> TradeBackfill | None:
        """The frames ``body`` filled of ``request``'s gap: the gap's end if it ended.

        ``frames`` are ``backfilled_frames`` of the gap's missing ids (what
        ``answered`` computes; the connection gets them from ``records_of``).
        """
        gap = request.gap
        for frame in frames:
            gap.missing.discard(frame.data.t)
        gap.fetched += len(frames)
        if gap not in self._gaps:
            return None  # ended meanwhile (waited too long): reported then
        if not gap.missing:
            return self._end(gap, None, recv_us)
        ids = [row.id for row in _decode(body) if row.id is not None]
        if ids and len(ids) < int(request.params["limit"]) and min(ids) > gap.first:
            # The answer ran out before the gap began: the exchange keeps no older.
            older = [i for i in gap.missing if i < min(ids)]
            if older and len(older) == len(gap.missing):
                return self._end(gap, "history", recv_us)
        if not ids and request.params["offset"] != "0":
            return self._end(gap, "history", recv_us)
        return None

    def failed(self, request: Request, recv_us: int) -> TradeBackfill | None:
        """A request failed (after the client's own retries)."""
        gap = request.gap
        gap.failures += 1
        if gap.failures >= self._max_failures:
            return self._end(gap, "failed", recv_us)
        return None

    def close(self, recv_us: int) -> list[TradeBackfill]:
        """The connection closes for good: every open gap ends unfilled."""
        return [self._end(gap, "closed", recv_us) for gap in list(self._gaps)]

    def _end(self, gap: Gap, reason: str | None, recv_us: int) -> TradeBackfill:
        if gap in self._gaps:
            self._gaps.remove(gap)
        if reason is None:
            self.filled += 1
        else:
            self.unfillable += 1
        return _report(gap, reason, recv_us)


def _report(gap: Gap, reason: str | None, recv_us: int) -> TradeBackfill:
    return TradeBackfill(
        stream=gap.stream,
        symbol=gap.symbol,
        first=gap.first,
        last=gap.last,
        outcome=BackfillOutcome.FILLED
        if reason is None
        else BackfillOutcome.UNFILLABLE,
        fetched=gap.fetched,
        missing=len(gap.missing),
        requests=gap.requests,
        reason=reason,
        recv_us=recv_us,
    )


def _decode(body: bytes) -> list[TradeRow]:
    try:
        return _ROWS.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return []


def backfilled_frames(
    stream: str,
    symbol: str,
    body: bytes,
    wanted: set[int] | None,
    first: int,
    last: int,
    recv_us: int,
) -> list[Frame[BackfilledTrade]]:
    """The trades of ``body`` with ids in ``first..last`` (and ``wanted``), as frames.

    In id order, each once. Rows without an id, outside the range policy or that
    do not decode are left out (and stay missing).
    """
    trades: dict[int, BackfilledTrade] = {}
    for row in _decode(body):
        trade_id = row.id
        if trade_id is None or not first <= trade_id <= last or trade_id in trades:
            continue
        if wanted is not None and trade_id not in wanted:
            continue
        at = row.timestamp * _MS
        trade = BackfilledTrade(
            E=at,
            T=at,
            a="",
            b="",
            m=row.isBuyerMaker,
            p=row.price,
            q=row.quantity,
            s=symbol,
            t=trade_id,
        )
        if sane(trade):  # the stream's own range policy (a subclass of Trade)
            trades[trade_id] = trade
    return [Frame(stream, trades[i], recv_us) for i in sorted(trades)]


def id_ranges(ids: Iterable[int]) -> str:
    """Ids as compact ranges: ``"101-109,120-120"`` (recording lines keep these)."""
    ordered = sorted(set(ids))
    parts: list[str] = []
    start = previous = None
    for i in ordered:
        if previous is not None and i == previous + 1:
            previous = i
            continue
        if start is not None:
            parts.append(f"{start}-{previous}")
        start = previous = i
    if start is not None:
        parts.append(f"{start}-{previous}")
    return ",".join(parts)


def in_ranges(text: str) -> set[int] | None:
    """The ids of ``id_ranges`` text; ``None`` if it is not such text (or too many)."""
    out: set[int] = set()
    for part in filter(None, text.split(",")):
        low, sep, high = part.partition("-")
        if not sep or not low.isdigit() or not high.isdigit():
            return None
        first, last = int(low), int(high)
        if last < first or last - first + len(out) > 1_000_000:
            return None
        out.update(range(first, last + 1))
    return out
