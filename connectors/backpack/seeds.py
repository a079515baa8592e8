"""Open interest seeded from REST: ``GET /api/v1/openInterest`` rows as stream frames.

The ``openInterest.<symbol>`` stream sends once a minute, so a flow that just started
knows no open interest for up to 60 s. The connection asks REST once per connect and
turns the row into the frame the stream would have sent (event time: the row's own
timestamp), so every step downstream treats it like any other; a later stream frame
supersedes it (steps keep the newest by event time). Recordings keep the REST answer,
and a replay turns it into the same frame. Pure: bytes in, frames out.
"""

from __future__ import annotations

import msgspec

from bpx_flows.connectors.backpack.limits import sane
from bpx_flows.connectors.backpack.wire import Frame, OpenInterest, OpenInterestRow

__all__ = ["OPEN_INTEREST_PATH", "open_interest_frames", "open_interest_rows"]

OPEN_INTEREST_PATH = "/api/v1/openInterest"
_ROWS = msgspec.json.Decoder(list[OpenInterestRow])
_ROW = msgspec.json.Encoder()
_MS = 1_000


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
