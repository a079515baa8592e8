"""Open interest and mark prices seeded from REST, as stream frames.

The ``openInterest.<symbol>`` stream sends once a minute, so a flow that just started
knows no open interest for up to 60 s. The connection asks ``GET /api/v1/openInterest``
once per connect and turns the row into the frame the stream would have sent (event
time: the row's own timestamp), so every step downstream treats it like any other; a
later stream frame supersedes it (steps keep the newest by event time).

``GET /api/v1/markPrices`` rows carry no time at all, so their frames are
``SeededMarkPrice`` (a ``MarkPrice``) dated by the answer itself: its ``Date``
header less its ``Age`` (the server's clock, not ours), or the receive time less a
second without one. A step that uses them takes one only while it holds no mark
price from the stream, and lets any stream frame replace it, whatever the times
(``operators.derivatives``).

Recordings keep the REST answers (with the date used), and a replay turns them into
the same frames. Pure: bytes in, frames out.
"""

from __future__ import annotations

import msgspec

from .limits import sane
from .wire import (
    Frame,
    MarkPrice,
    MarkPriceRow,
    OpenInterest,
    OpenInterestRow,
)

__all__ = [
    "MARK_PRICES_PATH",
    "OPEN_INTEREST_PATH",
    "SeededMarkPrice",
    "mark_price_frames",
    "mark_price_rows",
    "open_interest_frames",
    "open_interest_rows",
]

OPEN_INTEREST_PATH = "/api/v1/openInterest"
MARK_PRICES_PATH = "/api/v1/markPrices"
_ROWS = msgspec.json.Decoder(list[OpenInterestRow])
_MARK_ROWS = msgspec.json.Decoder(list[MarkPriceRow])
_ROW = msgspec.json.Encoder()
_MS = 1_000


class SeededMarkPrice(MarkPrice, frozen=True, kw_only=True, tag="seededMarkPrice"):
    """A mark price from ``GET /api/v1/markPrices`` at connect, not from the stream.

    ``E`` and ``T`` are the answer's date (see the module): a guess good to a few
    seconds, so it never outranks a stream frame.
    """


def _frame(
    stream: str, row: OpenInterestRow, recv_us: int
) -> Frame[OpenInterest] | None:
    """The stream's frame for one row; ``None`` without a value or out of range."""
    if row.openInterest is None:
        return None
    event = OpenInterest(E=row.timestamp * _MS, o=row.openInterest, s=row.symbol)
    return Frame(stream, event, recv_us) if sane(event) else None


def _decode(body: bytes) -> list[OpenInterestRow]:
    try:
        return _ROWS.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return []


def open_interest_frames(
    stream: str, symbol: str, body: bytes, recv_us: int
) -> list[Frame[OpenInterest]]:
    """The frame of ``stream`` that ``body`` (the REST answer) stands for.

    Nothing for an answer that does not decode, names another market, has no open
    interest, or carries values outside the range policy (``limits``).
    """
    rows = [row for row in _decode(body) if row.symbol == symbol]
    frame = _frame(stream, rows[-1], recv_us) if rows else None  # the last, if repeated
    return [] if frame is None else [frame]


def open_interest_rows(
    streams: list[tuple[str, str]], body: bytes, recv_us: int
) -> dict[str, tuple[bytes, list[Frame[OpenInterest]]]]:
    """An answer for every market, split by stream: ``{stream: (its row, frames)}``.

    ``streams`` are ``(stream name, symbol)``. Each stream gets the answer's row of
    its market, as a one-row answer (what the recording keeps), and its frame;
    streams whose market the answer lacks, or whose row fails the checks of
    ``open_interest_frames``, get nothing. The answer is decoded once.
    """
    by_symbol = {row.symbol: row for row in _decode(body)}
    out: dict[str, tuple[bytes, list[Frame[OpenInterest]]]] = {}
    for stream, symbol in streams:
        row = by_symbol.get(symbol)
        frame = None if row is None else _frame(stream, row, recv_us)
        if row is not None and frame is not None:
            out[stream] = (_ROW.encode([row]), [frame])
    return out


def _mark_frame(
    stream: str, row: MarkPriceRow, at_us: int, recv_us: int
) -> Frame[SeededMarkPrice] | None:
    event = SeededMarkPrice(
        E=at_us,
        T=at_us,
        f=row.fundingRate,
        i=row.indexPrice,
        n=row.nextFundingTimestamp,
        p=row.markPrice,
        s=row.symbol,
    )
    return Frame(stream, event, recv_us) if sane(event) else None


def _decode_marks(body: bytes) -> list[MarkPriceRow]:
    try:
        return _MARK_ROWS.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return []


def mark_price_frames(
    stream: str, symbol: str, body: bytes, at_us: int, recv_us: int
) -> list[Frame[SeededMarkPrice]]:
    """The seed of ``stream`` that ``body`` (the REST answer, dated ``at_us``) gives.

    Nothing for an answer that does not decode, lacks the market, or carries values
    outside the range policy.
    """
    rows = [row for row in _decode_marks(body) if row.symbol == symbol]
    frame = _mark_frame(stream, rows[-1], at_us, recv_us) if rows else None
    return [] if frame is None else [frame]


def mark_price_rows(
    streams: list[tuple[str, str]], body: bytes, at_us: int, recv_us: int
) -> dict[str, tuple[bytes, list[Frame[SeededMarkPrice]]]]:
    """Each stream's row and seed in a ``GET /api/v1/markPrices`` answer.

    As ``open_interest_rows``; ``at_us`` dates every row (they have no time).
    """
    by_symbol = {row.symbol: row for row in _decode_marks(body)}
    out: dict[str, tuple[bytes, list[Frame[SeededMarkPrice]]]] = {}
    for stream, symbol in streams:
        row = by_symbol.get(symbol)
        frame = None if row is None else _mark_frame(stream, row, at_us, recv_us)
        if row is not None and frame is not None:
            out[stream] = (_ROW.encode([row]), [frame])
    return out
