"""Every REST exchange as data: a ``Fetch`` to make, its ``Answer``, its records.

The sans-I/O parts (``FetchPlanner``: book sync, trade gaps, kline paging, seeds)
emit ``Fetch`` records the way the session emits frames to send; the connection's
fetch loop makes the request and hands the body back. ``answers`` turns one body into
the ``Answer`` lines a recording keeps (a seeding answer splits into a row per
stream), and ``records_of`` turns an ``Answer`` into the records a flow sees. The
replayer feeds recorded answers to the same ``records_of``, so live and replay
cannot drift apart. Pure: bytes and times in, records out.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ..errors import ConfigError, ProtocolError
from .backfill import (
    HISTORY_PATH,
    Request,
    backfilled_frames,
    id_ranges,
    in_ranges,
)
from .books import BookRouter
from .booksync import SyncRecord
from .kline_history import KLINES_PATH, historical_klines
from .seeds import (
    MARK_PRICES_PATH,
    OPEN_INTEREST_PATH,
    mark_price_frames,
    mark_price_rows,
    open_interest_frames,
    open_interest_rows,
)
from .streams import StreamName, parse_stream
from .wire import DepthSnapshot, Frame

__all__ = [
    "DEPTH_PATH",
    "Answer",
    "Fetch",
    "FetchKind",
    "answers",
    "records_of",
]

DEPTH_PATH = "/api/v1/depth"
_SNAPSHOT = msgspec.json.Decoder(DepthSnapshot, strict=False)
_S = 1_000_000
# The CDN may hold a mark-price answer a second before its Date: date it no later.
_MARK_AGE_US = 1_000_000


class FetchKind(enum.StrEnum):
    """The REST exchanges a connection makes, named by their path."""

    DEPTH = DEPTH_PATH  # a book's snapshot, for its sync
    TRADES = HISTORY_PATH  # a page of trades a gap lost
    KLINES = KLINES_PATH  # a page of one kline stream's history, once a run
    MARK_PRICES = MARK_PRICES_PATH  # every perp's mark price, at connect
    OPEN_INTEREST = OPEN_INTEREST_PATH  # every market's open interest, at connect


# Kinds that draw on the exchange's history budget (30 requests a minute).
_HISTORY = frozenset({FetchKind.TRADES, FetchKind.KLINES})


@dataclass(frozen=True, slots=True)
class Fetch:
    """One REST request a sans-I/O part wants made.

    Attributes:
        kind: what it asks for (its path).
        params: the query.
        streams: the streams the answer is for (several for a seeding request).
        delay_s: wait this long before asking (a retried snapshot), seconds.
        before_us: for ``KLINES``: the run's start, microseconds.
        request: for ``TRADES``: the gap's request (its ids decide the frames).
    """

    kind: FetchKind
    params: Mapping[str, str]
    streams: tuple[str, ...]
    delay_s: float = 0.0
    before_us: int = 0
    request: Request | None = field(default=None, compare=False)

    @property
    def path(self) -> str:
        """The request's path."""
        return self.kind.value

    @property
    def history(self) -> bool:
        """Whether it draws on the history budget too."""
        return self.kind in _HISTORY

    @property
    def dated(self) -> bool:
        """Whether the answer needs the server's time (its rows have none)."""
        return self.kind is FetchKind.MARK_PRICES

    @property
    def stream(self) -> str:
        """The (first) stream it is for, for log lines."""
        return self.streams[0] if self.streams else ""


@dataclass(frozen=True, slots=True)
class Answer:
    """One REST answer as a recording keeps it: what ``records_of`` reads.

    Attributes:
        stream: the stream it was fetched for.
        path: the request's path.
        params: the query, plus what the records depend on (``ids`` of a trade
            page, ``before_us`` of a kline page, ``at_us`` of a mark price).
        body: the body as received (one row of a seeding answer).
        recv_us: when it arrived, microseconds.
    """

    stream: str
    path: str
    params: Mapping[str, str]
    body: bytes
    recv_us: int


def answers(
    fetch: Fetch, body: bytes, recv_us: int, server_us: int | None = None
) -> list[Answer]:
    """The answers one body stands for: one per stream it serves.

    ``server_us`` is the server's time of the answer (``Date`` less ``Age``), used
    to date mark prices; ``recv_us`` stands in without it.
    """
    kind, params = fetch.kind, dict(fetch.params)
    if kind is FetchKind.TRADES:
        # The ids still wanted decide which rows become frames, live and replayed.
        wanted = fetch.request.gap.missing if fetch.request is not None else set()
        params["ids"] = id_ranges(wanted)
    elif kind is FetchKind.KLINES:
        params["before_us"] = str(fetch.before_us)
    elif kind in (FetchKind.MARK_PRICES, FetchKind.OPEN_INTEREST):
        return _seed_answers(fetch, body, recv_us, server_us)
    return [Answer(fetch.stream, fetch.path, params, body, recv_us)]


def _seed_answers(
    fetch: Fetch, body: bytes, recv_us: int, server_us: int | None
) -> list[Answer]:
    """A seeding answer split by stream: each stream keeps its market's row."""
    streams = [(s, _symbol(s)) for s in fetch.streams]
    extra: dict[str, str] = {}
    if fetch.kind is FetchKind.MARK_PRICES:
        at_us = (recv_us if server_us is None else server_us) - _MARK_AGE_US
        extra["at_us"] = str(at_us)
        rows: Mapping[str, tuple[bytes, Any]] = mark_price_rows(
            streams, body, at_us, recv_us
        )
    else:
        rows = open_interest_rows(streams, body, recv_us)
    return [
        Answer(
            stream, fetch.path, {"symbol": symbol, **extra}, rows[stream][0], recv_us
        )
        for stream, symbol in streams
        if stream in rows
    ]


def _symbol(stream: str) -> str:
    return parse_stream(stream).symbol or ""


Record = SyncRecord | Frame[Any]
_Reader = Callable[[Answer, StreamName, BookRouter], list[Any]]


def records_of(answer: Answer, books: BookRouter) -> list[Record]:
    """The records one answer gives, live or replayed alike.

    A depth snapshot goes to its book's sync in ``books`` (which may answer with a
    ``Snapshot`` or a ``Resync``); every other answer becomes stream frames.

    Raises:
        ProtocolError: the answer cannot be read as what its path returns (a body
            that is not a depth snapshot, a stream name or parameter that does not
            parse, an unknown path).
    """
    reader = _READERS.get(answer.path)
    if reader is None:
        msg = f"no reader for answers of {answer.path!r}"
        raise ProtocolError(msg)
    try:
        stream = parse_stream(answer.stream)
    except ConfigError as exc:
        msg = f"an answer for {answer.stream!r}, which is not a stream: {exc}"
        raise ProtocolError(msg) from exc
    return reader(answer, stream, books)


def _depth(answer: Answer, stream: StreamName, books: BookRouter) -> list[Any]:
    try:
        snapshot = _SNAPSHOT.decode(answer.body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        msg = f"a depth answer that is not a snapshot: {exc}"
        raise ProtocolError(msg) from exc
    return books.on_snapshot(answer.stream, snapshot, answer.recv_us)


def _trades(answer: Answer, stream: StreamName, books: BookRouter) -> list[Any]:
    ids = in_ranges(answer.params.get("ids", ""))
    if ids is None:
        msg = f"a trade page with unreadable ids {answer.params.get('ids')!r}"
        raise ProtocolError(msg)
    if not ids or stream.symbol is None:
        return []
    symbol, body = stream.symbol, answer.body
    first, last = min(ids), max(ids)
    return backfilled_frames(
        answer.stream, symbol, body, ids, first, last, answer.recv_us
    )


def _klines(answer: Answer, stream: StreamName, books: BookRouter) -> list[Any]:
    before_us = _int_param(answer, "before_us")
    params = answer.params
    return historical_klines(stream, answer.body, params, before_us, answer.recv_us)


def _marks(answer: Answer, stream: StreamName, books: BookRouter) -> list[Any]:
    at_us = _int_param(answer, "at_us")
    symbol = stream.symbol or ""
    return mark_price_frames(answer.stream, symbol, answer.body, at_us, answer.recv_us)


def _open_interest(answer: Answer, stream: StreamName, books: BookRouter) -> list[Any]:
    symbol = stream.symbol or ""
    return open_interest_frames(answer.stream, symbol, answer.body, answer.recv_us)


def _int_param(answer: Answer, key: str) -> int:
    try:
        return int(answer.params.get(key, ""))
    except ValueError:
        msg = f"{answer.path} answer without a whole {key}: {answer.params.get(key)!r}"
        raise ProtocolError(msg) from None


_READERS: dict[str, _Reader] = {
    FetchKind.DEPTH.value: _depth,
    FetchKind.TRADES.value: _trades,
    FetchKind.KLINES.value: _klines,
    FetchKind.MARK_PRICES.value: _marks,
    FetchKind.OPEN_INTEREST.value: _open_interest,
}
